//! The project's own item model, independent of any feed format.

use chrono::{DateTime, Utc};

/// One item of a feed after parsing and normalisation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Item {
    /// The publisher's GUID / Atom id / JSON Feed id, when the feed gave one.
    pub guid: Option<String>,
    /// Absolute link to the article, as published.
    pub link: Option<String>,
    /// Canonical form of `link` (tracking parameters, AMP, `www.`, scheme removed), for identity.
    pub canonical_url: Option<String>,
    /// Plain-text title (entities decoded, tags stripped, NFKC, whitespace folded).
    pub title: String,
    /// Sanitised HTML summary.
    pub summary_html: Option<String>,
    /// Sanitised HTML full content.
    pub content_html: Option<String>,
    /// Publication time, if the feed gave a usable one.
    pub published: Option<DateTime<Utc>>,
    /// Last update time, if the feed gave a usable one.
    pub updated: Option<DateTime<Utc>>,
    /// Author names.
    pub authors: Vec<String>,
    /// Category terms.
    pub categories: Vec<String>,
    /// Hash of the publisher's raw fields: a change means the publisher edited the item.
    pub content_hash: u64,
}

/// A parsed feed: its own metadata plus items.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    /// The feed's own title.
    pub title: Option<String>,
    /// The feed's home page.
    pub home_page: Option<String>,
    /// RSS `<ttl>` in minutes, a hint the scheduler may honour.
    pub ttl_minutes: Option<u32>,
    /// RSS `<skipHours>`/`<skipDays>`: when the publisher asks not to be polled.
    pub skip: crate::schedule::Skip,
    /// Items in document order.
    pub items: Vec<Item>,
    /// How many items were dropped because the feed exceeded the per-feed item cap.
    pub items_dropped: usize,
    /// How many items were left out because they are older than `retention` (they would be
    /// pruned at once).
    pub past_retention: usize,
}
