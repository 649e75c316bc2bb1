//! Export: every topic in every format as static files, for nginx or a CDN, with a `.gz`
//! beside each (nginx `gzip_static on`), `index.html` and `sources.opml`. Each file is
//! written to a temporary name and renamed, so a web server never serves half a file.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rusqlite::Connection;

use crate::config::Config;
use crate::render::{self, Format};
use crate::store::{queries, sources};

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exported {
    /// Files written (without the `.gz` companions).
    pub files: Vec<PathBuf>,
    /// Stories per topic id.
    pub stories: Vec<(String, usize)>,
}

/// Writes the static site for `config` into `dir` (created if needed).
pub fn export(conn: &Connection, config: &Config, dir: &Path, now: i64) -> anyhow::Result<Exported> {
    let topics_dir = dir.join("topics");
    std::fs::create_dir_all(&topics_dir).with_context(|| format!("creating {}", topics_dir.display()))?;
    let mut out = Exported::default();
    for topic in &config.topics {
        let stories = crate::select::select(conn, config, topic, now)
            .with_context(|| format!("selecting the stories of topic {:?}", topic.id))?;
        for f in Format::ALL {
            let body = render::render(f, topic, &stories, &config.daemon.base_url);
            let path = topics_dir.join(format!("{}.{}", topic.id, f.ext()));
            write_with_gzip(&path, &body)?;
            out.files.push(path);
        }
        out.stories.push((topic.id.clone(), stories.len()));
    }
    let states = sources::all(conn).context("reading sources")?;
    let index = dir.join("index.html");
    write_with_gzip(&index, render::html::index(config, Some(&states), now).as_bytes())?;
    out.files.push(index);
    let opml = dir.join("sources.opml");
    let infos = queries::source_info(conn).context("reading sources")?;
    write_with_gzip(&opml, crate::opml::export(config, &infos).as_bytes())?;
    out.files.push(opml);
    Ok(out)
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
