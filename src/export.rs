//! Export: the whole site as static files, for nginx or a CDN, with a `.gz` beside each
//! (nginx `gzip_static on`): every topic in every format (`topics/{id}.{rss,atom,json}`), the
//! reading pages (`index.html`, `topics/{id}.html`, `stories/{id}.html` for every published
//! story, `embed/{id}.html`, `sources.html`), the stylesheet under `assets/` and
//! `sources.opml`. The pages link `/topics/{id}` and `/stories/{id}` without `.html`, as the
//! daemon serves them: nginx needs `try_files $uri $uri.html $uri/ =404;`. Each file is written to
//! a temporary name and renamed, so a web server never serves half a file; pages of stories
//! no longer published are removed.

use std::path::{Path, PathBuf};

use crate::store::db::Connection;
use anyhow::Context;

use std::collections::HashSet;

use crate::config::{Config, TopicConfig};
use crate::render::{self, html, Format};
use crate::store::{queries, sources};

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    /// Files written (without the `.gz` companions).
    pub files: Vec<PathBuf>,
    /// Stories per topic id.
    pub stories: Vec<(String, usize)>,
    /// Story pages written.
    pub story_pages: usize,
}

/// Writes the static site for `config` into `dir` (created if needed).
pub fn export(conn: &Connection, config: &Config, dir: &Path, now: i64) -> anyhow::Result<Exported> {
    let topics_dir = dir.join("topics");
    let stories_dir = dir.join("stories");
    let embed_dir = dir.join("embed");
    let assets_dir = dir.join("assets");
    for d in [&topics_dir, &stories_dir, &embed_dir, &assets_dir] {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut out = Exported::default();
    let mut write = |path: PathBuf, body: &[u8]| -> anyhow::Result<()> {
        write_with_gzip(&path, body)?;
        out.files.push(path);
        Ok(())
    };
    let mut selected = Vec::with_capacity(config.topics.len());
    let mut front = None;
    let hubs = config.hub_urls();
    for topic in &config.topics {
        let stories = crate::select::select(conn, config, topic, now)
            .with_context(|| format!("selecting the stories of topic {:?}", topic.id))?;
        for f in Format::ALL {
            let body = render::render(f, topic, &stories, &config.daemon.base_url, &hubs);
            write(topics_dir.join(format!("{}.{}", topic.id, f.ext())), &body)?;
        }
        write(
            topics_dir.join(format!("{}.html", topic.id)),
            html::topic_page(config, topic, &stories, now, false).as_bytes(),
        )?;
        let rail = html::embed(config, topic, &stories, html::EMBED_DEFAULT, now);
        write(embed_dir.join(format!("{}.html", topic.id)), rail.as_bytes())?;
        if config.web.front.as_deref() == Some(topic.id.as_str()) {
            front = Some(html::topic_page(config, topic, &stories, now, true));
        }
        selected.push((topic, stories));
    }
    let front = front.unwrap_or_else(|| {
        html::message_page(config, "No topics yet", "Add a [[topic]] to feeds.toml (see README.md).", now)
    });
    write(dir.join("index.html"), front.as_bytes())?;
    // Every published story's page, with the topics it is in.
    let mut ids: Vec<i64> = selected.iter().flat_map(|(_, s)| s.iter().map(|s| s.id)).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut pages = HashSet::new();
    for &id in &ids {
        let Some(coverage) = crate::select::coverage(conn, config, id, now).context("reading a story")? else {
            continue;
        };
        let topics: Vec<&TopicConfig> =
            selected.iter().filter(|(_, s)| s.iter().any(|s| s.id == id)).map(|(t, _)| *t).collect();
        let name = format!("{id}.html");
        write(stories_dir.join(&name), html::story_page(config, &coverage, &topics, now).as_bytes())?;
        pages.insert(name);
    }
    out.story_pages = pages.len();
    prune_story_pages(&stories_dir, &pages)?;
    let states = sources::all(conn).context("reading sources")?;
    write(dir.join("sources.html"), html::sources_page(config, &states, now).as_bytes())?;
    let events = sources::events(conn, crate::serve::HEALTH_ENTRIES).context("reading source health events")?;
    let health_dir = dir.join("sources");
    std::fs::create_dir_all(&health_dir).with_context(|| format!("creating {}", health_dir.display()))?;
    for f in Format::ALL {
        let body = render::render_health(f, &events, &config.daemon.base_url);
        write(health_dir.join(format!("health.{}", f.ext())), &body)?;
    }
    write(dir.join(html::style_path()), html::STYLE.as_bytes())?;
    let infos = queries::source_info(conn).context("reading sources")?;
    write(dir.join("sources.opml"), crate::opml::export(config, &infos).as_bytes())?;
    out.stories = selected.iter().map(|(t, s)| (t.id.clone(), s.len())).collect();
    Ok(out)
}

/// Removes the pages of stories no topic publishes any more (`{id}.html` and its `.gz`;
/// nothing else in the folder is touched).
fn prune_story_pages(dir: &Path, keep: &HashSet<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let page = name.strip_suffix(".gz").unwrap_or(&name);
        let ours =
            page.strip_suffix(".html").is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()));
        if ours && !keep.contains(page) {
            std::fs::remove_file(entry.path()).with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

fn write_with_gzip(path: &Path, body: &[u8]) -> anyhow::Result<()> {
    write_atomic(path, body)?;
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    write_atomic(Path::new(&gz), &crate::serve::gzip(body))
}

fn write_atomic(path: &Path, body: &[u8]) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, body).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}
