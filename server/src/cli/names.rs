//! `tapgate-server scope …` and `tapgate-server package reserve …`: the operator decides who
//! may claim which names. These act on the database directly, as the operator (who holds it).

use clap::Subcommand;
use tapgate_shared::api::SecondFactor;

use super::Fatal;
use crate::clock::{Clock, SystemClock};
use crate::names::validate_package_name;
use crate::policy::Policy;
use crate::store::Store;
use crate::store::users::User;

#[derive(Debug, Subcommand)]
pub enum ScopeCommand {
    /// Give a scope to a user (`@alice` always belongs to the user alice).
    Add {
        /// The scope, e.g. `@acme`.
        scope: String,
        /// The user who may publish new packages in it.
        #[arg(long)]
        owner: String,
    },
    /// Take a scope from a user.
    Remove {
        scope: String,
        #[arg(long)]
        owner: String,
    },
    /// List every scope given to users.
    List,
}

#[derive(Debug, Subcommand)]
pub enum PackageCommand {
    /// Reserve a name: create it with a policy and its first maintainers, so nobody else can
    /// claim it by publishing first.
    Reserve {
        name: String,
        /// A first maintainer; repeat for several.
        #[arg(long = "owner", required = true)]
        owners: Vec<String>,
        /// `security-key` (every change needs a tap) or `none`.
        #[arg(long, default_value = "security-key")]
        policy: String,
    },
}

fn validate_scope(scope: &str) -> Result<(), Fatal> {
    let ok =
        scope.len() > 1 && scope.starts_with('@') && validate_package_name(&format!("{scope}/x")).is_ok();
    if ok { Ok(()) } else { Err(Fatal(format!("{scope:?} is not a scope: write it like @acme"))) }
}

async fn user(store: &Store, name: &str) -> Result<User, Fatal> {
    store.user_by_name(name).await?.filter(|u| !u.disabled).ok_or_else(|| {
        Fatal(format!("no enabled user named {name:?}: create it with `tapgate-server user add {name}`"))
    })
}

pub async fn run_scope(cmd: ScopeCommand, store: &Store) -> Result<(), Fatal> {
    match cmd {
        ScopeCommand::Add { scope, owner } => {
            validate_scope(&scope)?;
            let user = user(store, &owner).await?;
            if store.add_scope_owner(&scope, &user.id, SystemClock.now()).await? {
                println!("{owner} now owns {scope}: they may publish new packages named {scope}/…");
            } else {
                println!("{owner} already owns {scope}");
            }
            Ok(())
        }
        ScopeCommand::Remove { scope, owner } => {
            let user = user(store, &owner).await?;
            if store.remove_scope_owner(&scope, &user.id).await? {
                println!("{owner} no longer owns {scope} (packages they maintain stay theirs)");
                Ok(())
            } else {
                Err(Fatal(format!("{owner} does not own {scope}")))
            }
        }
        ScopeCommand::List => {
            for (scope, owner) in store.all_scope_owners().await? {
                println!("{scope}\t{owner}");
            }
            Ok(())
        }
    }
}

pub async fn run_package(cmd: PackageCommand, store: &Store) -> Result<(), Fatal> {
    match cmd {
        PackageCommand::Reserve { name, owners, policy } => {
            validate_package_name(&name).map_err(Fatal)?;
            let second_factor = match policy.as_str() {
                "security-key" => SecondFactor::SecurityKey,
                "none" => SecondFactor::None,
                other => return Err(Fatal(format!("unknown policy {other:?}: use security-key or none"))),
            };
            let mut ids = Vec::new();
            for owner in &owners {
                ids.push(user(store, owner).await?.id);
            }
            store
                .reserve_package(&name, &Policy::new(second_factor).to_stored(), &ids, SystemClock.now())
                .await?;
            println!("reserved {name} for {} with policy {policy}", owners.join(", "));
            Ok(())
        }
    }
}
