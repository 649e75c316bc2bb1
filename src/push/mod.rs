//! Push: what newsdesk sends to other servers when its output changes, instead of waiting to
//! be polled. [`deliver`] is the outbound client every kind of push shares (timeouts, no
//! redirects, the private-network guard, HMAC, backoff). The events come from the serving
//! side's rebuilds ([`TopicChange`], see `crate::serve::AppState::topic_changes`).
//! [`websub`] publishes to WebSub hubs and is newsdesk's own hub; [`webhook`] turns the
//! changes into POSTs to the configured `[[webhook]]`s.

pub mod deliver;
pub mod webhook;
pub mod websub;

use std::sync::Arc;

use axum::body::Bytes;

use crate::render::Format;
use crate::select::StoryView;

/// Which kind of feed a [`TopicChange`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedKind {
    /// A topic's feeds (`/topics/{id}.{ext}`).
    Topic,
    /// A topic's digest feeds (`/topics/{id}/digest.{ext}`: a digest was stored); `stories`
    /// is empty then.
    Digest,
    /// A watched search's feeds (`/search.{ext}?q=`); `topic` is the query as typed.
    Search,
}

/// A feed was rebuilt and its bytes changed (or it was built for the first time).
#[derive(Clone)]
pub struct TopicChange {
    /// The topic's id (for a search: the query as typed).
    pub topic: String,
    /// What it publishes now, best first.
    pub stories: Arc<Vec<StoryView>>,
    /// Its bytes in each format, indexed by [`Format::index`].
    pub bytes: [Bytes; 3],
    /// Which formats' bytes changed since the previous build (all of them on the first).
    pub changed: [bool; 3],
    /// The first build since the daemon started: nothing to compare with, so a consumer
    /// takes it as its baseline rather than as news.
    pub first: bool,
    /// Which feeds these are.
    pub feed: FeedKind,
}

impl FeedKind {
    /// Where the feed of this kind for `topic` (a topic id, or a query) is served in `format`.
    pub fn url(self, base_url: &url::Url, topic: &str, format: Format) -> String {
        match self {
            FeedKind::Topic => crate::render::feed_url(base_url, topic, format),
            FeedKind::Digest => crate::render::digest::feed_url(base_url, topic, format),
            FeedKind::Search => crate::render::search_feed_url(base_url, topic, format),
        }
    }
}

impl TopicChange {
    /// The bytes in `format`.
    pub fn bytes(&self, format: Format) -> &Bytes {
        &self.bytes[format.index()]
    }

    /// Where the changed feed is served in `format`.
    pub fn feed_url(&self, base_url: &url::Url, format: Format) -> String {
        self.feed.url(base_url, &self.topic, format)
    }
}
