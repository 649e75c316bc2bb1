//! Dedup: recognising the same item again ([`identity`]): per source by GUID, else canonical
//! link, else content hash; and the same article reached through another source or URL
//! variant (one item, several appearances).

pub mod identity;
