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
    #[arg(long, env = "TAPGATE_SERVER", global = true, default_value = "http://localhost:8080")]
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
    /// Sign in with a tap on your security key and save the token (mode 0600).
    Login(LoginArgs),
    /// Revoke the saved token on the registry and forget it here.
    Logout,
    /// Show who the saved (or TAPGATE_TOKEN) token belongs to.
    Whoami,
    /// Manage your security keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Publish a package: pack it, approve this exact tarball with a tap, upload it.
    Publish(PublishArgs),
    /// Approve a pending change (e.g. one `npm publish` or `npm dist-tag` started elsewhere), or
    /// finish an `npm login`, with a tap. The change is shown, and checked against what the key
    /// signs, first.
    Approve {
        /// The URL npm printed (…/approve/apr_… or …/login/npl_…), or the approval id.
        approval: String,
    },
    /// List the changes to your packages waiting for maintainers' approval (approve one with
    /// `tapgate approve URL`).
    Pending,
    /// Reject a pending change to one of your packages with a tap: it will not be made, whoever
    /// else approves it.
    Reject {
        /// The approval URL (…/approve/apr_…) or id.
        approval: String,
    },
    /// Administrators: set package policies (each change approved with your tap, and lowering
    /// a critical package's policy also by its maintainers).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Re-verify a published version's key approval offline: intent, tarball, and every tap,
    /// each checked with a key you trust (your keyring), never with the key the registry serves.
    Verify {
        /// NAME@VERSION, e.g. left-pad@1.3.0 or @scope/pkg@2.0.0
        spec: String,
        /// A keyring file to trust besides your own (e.g. one committed with the code; see
        /// `tapgate keyring export`). May be given several times.
        #[arg(long, value_name = "FILE")]
        keyring: Vec<std::path::PathBuf>,
        /// The registry's signing keys you pinned (a saved copy of its
        /// `/.well-known/tapgate-keys`), to check versions CI published with a deploy key. May be
        /// given several times.
        #[arg(long, value_name = "FILE")]
        server_key: Vec<std::path::PathBuf>,
        /// An OIDC issuer's keys you pinned (a saved copy of its JWKS), to check that the issuer
        /// itself signed the ID token of a version CI published with trusted publishing. May be
        /// given several times; without it the issuer key is reported as the registry recorded it.
        #[arg(long, value_name = "FILE")]
        issuer_keys: Vec<std::path::PathBuf>,
    },
    /// Trusted publishing: let CI ID tokens from an issuer this registry trusts publish a
    /// package without a tap at release time (creating a trust takes your tap).
    #[command(subcommand)]
    Trust(TrustCommand),
    /// CI without codes: credentials a maintainer authorizes once with a tap, traded by CI for a
    /// single-use deploy key per release.
    #[command(subcommand)]
    Ci(CiCommand),
    /// The security keys `tapgate verify` trusts: your keyring, one `USER CREDENTIAL_ID
    /// spki:KEY` line per key.
    #[command(subcommand)]
    Keyring(KeyringCommand),
    /// Manage a package's maintainers (each change approved with a tap where the policy asks).
    #[command(subcommand)]
    Owner(OwnerCommand),
    /// List, point or remove a package's dist-tags (each move approved with a tap where the
    /// policy asks).
    #[command(subcommand, name = "dist-tag")]
    DistTag(DistTagCommand),
    /// Deprecate a version: installers see MESSAGE. An empty message lifts the deprecation.
    Deprecate {
        /// NAME@VERSION
        spec: String,
        message: String,
    },
    /// Lift a version's deprecation.
    Undeprecate {
        /// NAME@VERSION
        spec: String,
    },
    /// Stop serving a version (its number can never be published again), or with --all every
    /// version of a package (the name stays yours).
    Unpublish {
        /// NAME@VERSION, or NAME with --all
        spec: String,
        #[arg(long)]
        all: bool,
    },
    /// Unlock a package that repeated failed second-factor attempts locked, with a tap (under
    /// an N-of-M policy, N maintainers tap). Check the alert first: the attempts were not yours?
    Unlock {
        /// The package name.
        package: String,
    },
    /// Where your alerts go: your address (confirmed by a link) and the events you want besides
    /// lock alerts (always sent).
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// A package's webhooks: signed JSON POSTs of its alerts and changes (setting them takes a
    /// tap).
    #[command(subcommand)]
    Webhook(WebhookCommand),
    /// Staged releases (CI's `npm stage publish`, `tapgate ci stage`): review, then approve
    /// (publish exactly what was staged) or reject, each with a tap; or wait for the decision.
    #[command(subcommand)]
    Stage(crate::commands::stage::StageCommand),
    /// A package's audit log (`tapgate audit NAME`), or check it (`tapgate audit verify NAME`):
    /// every entry chained to the one before, the registry's signed head, and the head you saw
    /// last time.
    Audit(AuditArgs),
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: Option<AuditCommand>,
    /// The package whose log to show.
    pub package: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the package's audit log; fails on any edited, deleted or reordered entry, or a
    /// history rewritten since you last verified it.
    Verify { package: String },
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Show your alert address and chosen events.
    Show,
    /// Send alerts to ADDRESS once you open the confirmation link sent to it.
    Email { address: String },
    /// The events you want besides lock alerts: `all`, or e.g. publish maintainer-add key-add.
    Events {
        #[arg(required = true)]
        events: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// List a package's webhook URLs (maintainers only).
    Ls { package: String },
    /// Replace a package's webhook URLs (none: remove them all); new ones print their secret once.
    Set { package: String, urls: Vec<String> },
}

#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust ID tokens from ISSUER (a name `trust issuers` lists, or github, gitlab, circleci)
    /// whose claims are exactly the given ones; approved with your tap. For a package nobody
    /// holds yet, creates a pending trusted publisher.
    Add {
        package: String,
        #[arg(long)]
        issuer: String,
        /// A claim the ID token must carry: NAME=VALUE (repeat), e.g. repository=acme/app,
        /// environment=release, ref=refs/heads/main.
        #[arg(long = "claim", value_name = "NAME=VALUE")]
        claims: Vec<String>,
        /// The workflow (GitHub) or pipeline (GitLab) file that must have asked for the token,
        /// e.g. release.yml; needs --claim repository=… (GitHub) or project_path=… (GitLab).
        #[arg(long)]
        file: Option<String>,
        /// Also let it stage releases (a maintainer approves them), besides publishing.
        #[arg(long)]
        stage: bool,
        /// Only let it stage releases, not publish.
        #[arg(long, conflicts_with = "stage")]
        stage_only: bool,
    },
    /// A package's trusts in force.
    List { package: String },
    /// Remove a trust (your token suffices: it only takes power away); CI tokens it gave stop
    /// working at once.
    Remove { package: String, id: String },
    /// The issuers this registry's operator trusts.
    Issuers,
}

#[derive(Debug, Subcommand)]
pub enum CiCommand {
    /// Create a CI credential for a package, approved with a tap over its scope; prints the
    /// credential (tg_ci_…) once: store it as CI's TAPGATE_CI_TOKEN secret.
    Create {
        #[arg(long)]
        package: String,
        /// The versions CI may publish, as an npm range (`^2.0.0`, `2.x`, `>=2.1.0 <3.0.0`).
        #[arg(long, default_value = "*")]
        versions: String,
        /// The dist-tags CI may set (repeat or comma-separate).
        #[arg(long, value_delimiter = ',', default_value = "latest")]
        tags: Vec<String>,
        /// Lifetime: days (`90d`) or hours (`12h`), at most 366 days.
        #[arg(long, default_value = "90d")]
        expires: String,
        /// A network CI asks from (`203.0.113.0/24`, or one address); repeat for several. Any
        /// address when none is given.
        #[arg(long)]
        cidr: Vec<String>,
        /// A label, e.g. "release workflow".
        #[arg(long, default_value = "ci")]
        name: String,
    },
    /// List a package's CI credentials.
    List { package: String },
    /// Revoke a CI credential: it and its unspent deploy keys stop working at once.
    Revoke {
        /// The credential id (ci_…).
        id: String,
    },
    /// Trade TAPGATE_CI_TOKEN for a deploy key that publishes exactly this tarball; prints only
    /// the deploy key (use it as `npm publish --otp`).
    #[command(disable_version_flag = true)]
    DeployKey {
        #[arg(long)]
        package: String,
        #[arg(long)]
        version: String,
        /// The tarball's SHA-512 SRI (`sha512-…`, as `npm pack --json` prints it).
        #[arg(long)]
        integrity: String,
        /// A dist-tag the publish sets (repeat for several).
        #[arg(long, default_value = "latest")]
        tag: Vec<String>,
    },
    /// Pack, get a deploy key with TAPGATE_CI_TOKEN, and publish, in one command.
    Publish(PublishArgs),
    /// Pack and stage with TAPGATE_CI_TOKEN: nothing is served until a maintainer approves it
    /// with a tap (`tapgate stage approve ID`). Prints the stage id.
    Stage(PublishArgs),
}

#[derive(Debug, Subcommand)]
pub enum KeyringCommand {
    /// Trust a key as USER's. Only add a key you got from its owner (or through a channel you
    /// trust): from then on `tapgate verify` credits USER with what it signed.
    Add {
        /// The registry user the key approves as.
        user: String,
        /// The key's credential id (base64url; it may start with `-`).
        #[arg(allow_hyphen_values = true)]
        credential_id: String,
        /// spki:<DER SubjectPublicKeyInfo, base64> or cose:<COSE_Key, base64url>
        key: String,
    },
    /// List the keys your keyring trusts.
    List,
    /// Stop trusting a key.
    Remove {
        /// The key's credential id (base64url; it may start with `-`).
        #[arg(allow_hyphen_values = true)]
        credential_id: String,
    },
    /// Print keyring lines for a user's keys, or for every maintainer of a package, as this
    /// registry publishes them. Whoever runs this trusts the registry's answer once: commit the
    /// result and check it with the key owners.
    Export {
        /// A user name or a package name.
        target: String,
        /// TARGET is a user.
        #[arg(long, conflicts_with = "package")]
        user: bool,
        /// TARGET is a package.
        #[arg(long)]
        package: bool,
        /// Write the lines to FILE instead of printing them.
        #[arg(long, short, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        /// Replace FILE when it exists.
        #[arg(long, requires = "output")]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum DistTagCommand {
    /// List a package's dist-tags.
    Ls { package: String },
    /// Point TAG at NAME@VERSION.
    Add {
        /// NAME@VERSION
        spec: String,
        tag: String,
    },
    /// Remove TAG (never `latest`).
    Rm { package: String, tag: String },
}

#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// A package directory (packed with `npm pack`) or a .tgz tarball [default: .]
    #[arg(default_value = ".")]
    pub path: std::path::PathBuf,
    /// The dist-tag to point at this version.
    #[arg(long, default_value = "latest")]
    pub tag: String,
}

#[derive(Debug, Subcommand)]
pub enum OwnerCommand {
    /// List a package's maintainers.
    Ls { package: String },
    /// Add a maintainer.
    Add { user: String, package: String },
    /// Remove a maintainer (the last one stays).
    Rm { user: String, package: String },
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Your username [default: the one saved for this registry]
    #[arg(long, short)]
    pub username: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Enroll a security key: your first one with the invite URL an administrator gave you, or
    /// another one while signed in.
    Add {
        /// The invite URL (or just its tg_inv_… token).
        #[arg(long)]
        invite: Option<String>,
        /// A name to tell this key apart, e.g. "YubiKey 5C (keyring)".
        #[arg(long)]
        name: String,
        /// Without an invite, one of your enrolled keys approves the new one: the authenticator
        /// that holds it, when it is not the one given with --authenticator (`usb` finds it
        /// among the connected keys).
        #[arg(long)]
        approve_with: Option<AuthenticatorChoice>,
    },
    /// List your security keys.
    List,
    /// Rename a key.
    Rename {
        /// Key id (see `tapgate key list`).
        id: String,
        name: String,
    },
    /// Remove a key; it will no longer approve anything. Your last key cannot be removed.
    Remove {
        /// Key id (see `tapgate key list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// A package's policy.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show a package's policy, and maintainers who do not meet it.
    Show { package: String },
    /// Replace a package's policy with the one given by the flags (requirements not given are
    /// dropped). Critical packages: `--attested-keys --user-verification --approvals 2
    /// --all-maintainers-enrolled`.
    Set(PolicySetArgs),
}

#[derive(Debug, Clone, Args)]
pub struct PolicySetArgs {
    pub package: String,
    /// `security-key` (changes need a maintainer's tap) or `none`.
    #[arg(long, default_value = "security-key")]
    pub second_factor: String,
    /// Only attested hardware keys (whose maker the registry trusts) approve changes.
    #[arg(long)]
    pub attested_keys: bool,
    /// Each approval must verify its user (the key's PIN or fingerprint).
    #[arg(long)]
    pub user_verification: bool,
    /// Distinct maintainers who must approve each change.
    #[arg(long, default_value_t = 1)]
    pub approvals: u32,
    /// Every maintainer must hold a key meeting the policy.
    #[arg(long)]
    pub all_maintainers_enrolled: bool,
    /// Distinct maintainers who must approve a publish that adds or changes install scripts
    /// (preinstall, install, postinstall, prepare).
    #[arg(long, value_name = "N")]
    pub approvals_when_scripts_change: Option<u32>,
    /// The ways CI may publish: deploy-key, stage, oidc (comma-separated); none when absent.
    #[arg(long, value_delimiter = ',')]
    pub ci: Vec<String>,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command, KeyringCommand};

    #[test]
    fn credential_ids_starting_with_a_hyphen_are_values_not_flags() {
        let cli = Cli::try_parse_from(["tapgate", "keyring", "add", "alice", "-Lq3w", "spki:MFkw"])
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            cli.command,
            Command::Keyring(KeyringCommand::Add { ref credential_id, .. }) if credential_id == "-Lq3w"
        ));
        let cli =
            Cli::try_parse_from(["tapgate", "keyring", "remove", "-Lq3w"]).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            cli.command,
            Command::Keyring(KeyringCommand::Remove { ref credential_id }) if credential_id == "-Lq3w"
        ));
    }
}
