//! Wire types shared by the tapgate server and its CLI.
//!
//! This crate holds data shapes only: request and response bodies, the error envelope with its
//! stable codes, and the canonical form of a publish intent. No HTTP framework, no database, no
//! device access.
#![forbid(unsafe_code)]

pub mod api;
pub mod error;
pub mod gate_intent;
pub mod intent;

pub use error::{ErrorBody, ErrorCode, ErrorEnvelope};
