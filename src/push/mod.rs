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

/// A topic was rebuilt and its bytes changed (or it was built for the first time).
#[derive(Clone)]
pub struct TopicChange {
    /// The topic's id.
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
    /// These are the topic's digest feeds (`/topics/{id}/digest.{ext}`: a digest was
    /// stored), not its topic feeds; `stories` is empty then.
    pub digest: bool,
}

impl TopicChange {
    /// The bytes in `format`.
    pub fn bytes(&self, format: Format) -> &Bytes {
        &self.bytes[format.index()]
    }

    /// Where the changed feed is served in `format`.
    pub fn feed_url(&self, base_url: &url::Url, format: Format) -> String {
        if self.digest {
            crate::render::digest::feed_url(base_url, &self.topic, format)
        } else {
            crate::render::feed_url(base_url, &self.topic, format)
        }
    }
}
