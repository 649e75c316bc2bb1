//! Shared bench support. Each bench uses only part of it.
#![allow(dead_code)]

pub mod farm;
pub mod proc;
pub mod util;
