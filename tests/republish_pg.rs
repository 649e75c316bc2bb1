//! tests/republish.rs again, on PostgreSQL: `common::Desk` gives each test a throwaway cluster
//! when the crate name ends in `_pg`.

#[path = "republish.rs"]
mod republish;
