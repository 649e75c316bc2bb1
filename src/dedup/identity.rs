//! Identity keys: what makes two items of one source "the same item".
//!
//! Per source the key is, in order of preference:
//! - `g:<guid>`: the publisher's GUID / Atom id / JSON Feed id;
//! - `u:<canonical link>`: when the item has no GUID (see [`crate::normalize::url`]);
//! - `h:<hash of title and text>`: when it has neither.
//!
//! Broken publishers are handled by checking each document on its own:
//! - **one GUID for every item** (or any GUID repeated inside one document): a repeated GUID
//!   identifies nothing, so those items fall back to their link, then their content hash;
//! - **a fresh random GUID on every poll**: the store looks an unknown key up by canonical
//!   link before creating an item ([`crate::store::items`]), finds the article it already
//!   has, and re-keys that source's appearance instead of adding a new one, so rotating
//!   GUIDs neither duplicate items nor grow the appearance table;
//! - **every item linking to the same page** (a home page or a generic "read more"): a link
//!   shared by several items of one document is not an article link, so it is not used for
//!   identity or for matching across sources.
//!
//! Items with no GUID, no usable link and edited text cannot be told from new items; they are
//! stored again (nothing else identifies them).

use std::collections::HashMap;

use crate::model::Item;
use crate::parse::stable_hash;

/// How one item of a document is identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The per-source identity key.
    pub key: String,
    /// The canonical link, when it identifies this article (not shared within the document).
    pub canonical: Option<String>,
}

/// Identity of every item of one document, in order.
pub fn identities(items: &[Item], home_page: Option<&str>) -> Vec<Identity> {
    let mut guid_count: HashMap<&str, usize> = HashMap::new();
    let mut link_count: HashMap<&str, usize> = HashMap::new();
    for it in items {
        if let Some(g) = it.guid.as_deref() {
            *guid_count.entry(g).or_default() += 1;
        }
        if let Some(c) = it.canonical_url.as_deref() {
            *link_count.entry(c).or_default() += 1;
        }
    }
    let home = home_page.and_then(crate::normalize::url::canonicalize);
    items
        .iter()
        .map(|it| {
            let canonical = it
                .canonical_url
                .as_deref()
                .filter(|c| link_count.get(c).copied().unwrap_or(0) == 1)
                .filter(|c| home.as_deref() != Some(*c) && !c.ends_with(".invalid"))
                .map(str::to_string);
            let guid = it.guid.as_deref().filter(|g| guid_count.get(g).copied().unwrap_or(0) == 1);
            let key = match (guid, &canonical) {
                (Some(g), _) => format!("g:{g}"),
                (None, Some(c)) => format!("u:{c}"),
                (None, None) => {
                    let text = it.summary_html.as_deref().or(it.content_html.as_deref()).unwrap_or("");
                    format!("h:{:016x}", stable_hash(&[&it.title, text]))
                }
            };
            Identity { key, canonical }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(guid: Option<&str>, link: Option<&str>, title: &str) -> Item {
        Item {
            guid: guid.map(str::to_string),
            canonical_url: link.and_then(crate::normalize::url::canonicalize),
            link: link.map(str::to_string),
            title: title.to_string(),
            ..Item::default()
        }
    }

    #[test]
    fn keys_prefer_guid_then_link_then_hash() {
        let ids = identities(
            &[
                item(Some("a"), Some("https://x.com/1"), "one"),
                item(None, Some("https://x.com/2?utm_source=z"), "two"),
                item(None, None, "three"),
            ],
            None,
        );
        assert_eq!(ids[0].key, "g:a");
        assert_eq!(ids[1].key, "u:x.com/2");
        assert!(ids[2].key.starts_with("h:"));
        assert_eq!(ids[1].canonical.as_deref(), Some("x.com/2"));
    }

    #[test]
    fn shared_guid_and_shared_link_identify_nothing() {
        let ids = identities(
            &[
                item(Some("same"), Some("https://x.com/1"), "one"),
                item(Some("same"), Some("https://x.com/2"), "two"),
                item(Some("u1"), Some("https://x.com/"), "home 1"),
                item(Some("u2"), Some("https://x.com/"), "home 2"),
            ],
            Some("https://x.com/"),
        );
        assert_eq!(ids[0].key, "u:x.com/1");
        assert_eq!(ids[1].key, "u:x.com/2");
        assert_eq!(ids[2].canonical, None);
        assert_eq!(ids[2].key, "g:u1");
    }
}
