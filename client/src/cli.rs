//! The command line. Doc comments are the help text.

use clap::{Args, Parser, Subcommand};

use crate::authenticator::AuthenticatorChoice;

/// tapgate: publish to a tapgate registry with a tap on your security key.
#[derive(Debug, Parser)]
#[command(name = "tapgate", version, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Registry URL, e.g. https://registry.example.com
    #[arg(
        long,
        env = "TAPGATE_SERVER",
        global = true,
        default_value = "http://localhost:8080"
    )]
    pub server: String,
    /// Machine-readable JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Which authenticator to use: `usb` (FIDO2 keys over USB HID) or `soft:PATH` (a software
    /// key in a file, for tests and development only).
    #[arg(long, env = "TAPGATE_AUTHENTICATOR", global = true, default_value = "usb")]
    pub authenticator: AuthenticatorChoice,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show who the saved (or TAPGATE_TOKEN) token belongs to.
    Whoami,
}
