//! tapgate's end-to-end and integration tests, in one binary (one link).
//!
//! - `store`: the storage conformance suite, run against SQLite and PostgreSQL;
//! - `api`: the HTTP application in-process (real router, real database, manual clock);
//! - `server_process`: the real `tapgate-server` binary: start-up failures, admin CLI while
//!   serving, graceful shutdown, several instances on one PostgreSQL database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod api;
mod audit;
mod browser;
mod browser_audit;
mod cli_client;
mod cli_keys;
mod cli_publish;
mod client_distrust;
mod crash;
mod critical;
mod critical_support;
mod deploy_keys;
mod deploy_keys_npm;
mod deploy_keys_support;
mod gate_attacks;
mod gate_support;
mod keys;
mod keys_attacks;
mod keys_support;
mod limits;
mod limits_connections;
mod lockout;
mod n_of_m;
mod notify;
mod notify_crash;
mod notify_support;
mod npm_client;
mod npm_critical;
mod npm_writes;
mod observe;
mod oidc;
mod oidc_keys;
mod oidc_npm;
mod oidc_support;
mod oidc_world;
mod other_clients;
mod packument_memory;
mod publish;
mod publish_attacks;
mod publish_details;
mod publish_support;
mod races;
mod read_path;
mod remote_support;
mod secret_scan;
mod server_admin;
mod server_process;
mod stage;
mod stage_attacks;
mod stage_browser;
mod stage_npm;
mod stage_oidc;
mod stage_support;
mod state_support;
mod store;
mod store_gate;
mod tar_builder;
mod tarball_differential;
mod trust_anchors;
mod trust_support;
mod upstream;
mod upstream_support;
mod vectors;
mod verify_keyring;
