//! Support for tapgate's end-to-end tests: a fresh database per test on SQLite or PostgreSQL,
//! and the real `tapgate-server` / `tapgate` binaries run as child processes.
//!
//! The tests themselves live in `tests/e2e/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bins;
pub mod browser;
pub mod db;
pub mod npm;
pub mod process;
pub mod tools;
