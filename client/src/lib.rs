//! tapgate CLI library: the pieces behind the `tapgate` binary.
#![forbid(unsafe_code)]

pub mod api;
pub mod authenticator;
pub mod ceremony;
pub mod cli;
pub mod commands;
pub mod credentials;
pub mod describe;
pub mod gated;
pub mod keyring;
pub mod output;
pub mod pack;
pub mod verify;
pub mod verify_chain;
pub mod verify_oidc;
