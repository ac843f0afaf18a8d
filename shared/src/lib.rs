//! Wire types shared by the tapgate server and its CLI.
//!
//! This crate holds data shapes only: request and response bodies, the error envelope with its
//! stable codes, the canonical form of a publish intent, and the standard encodings of a key's
//! public part. No HTTP framework, no database, no device access.
#![forbid(unsafe_code)]

pub mod api;
pub mod audit;
pub mod ci;
pub mod error;
pub mod gate_intent;
pub mod intent;
pub mod oidc;
pub mod public_key;
pub mod publish_diff;
pub mod stage;
pub mod version_range;

pub use error::{ErrorBody, ErrorCode, ErrorEnvelope};
