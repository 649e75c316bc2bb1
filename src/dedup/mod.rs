//! Dedup, two layers:
//! - [`identity`]: the same item again (per source by GUID, else canonical link, else content
//!   hash) and the same article reached through another source or URL variant (one item,
//!   several appearances);
//! - [`story`]: items from different outlets about the same event join one story with a
//!   stable id (incremental clustering, bounded memory), with near-duplicate copies marked;
//!   [`lang`] knows the function words that never count as evidence.

pub mod eval;
pub mod identity;
pub mod lang;
pub mod story;
