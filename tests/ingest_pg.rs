//! tests/ingest.rs again, on PostgreSQL: `common::Desk` gives each test a throwaway cluster
//! when the crate name ends in `_pg`.

#[path = "ingest.rs"]
mod ingest;
