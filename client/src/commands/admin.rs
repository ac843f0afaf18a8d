//! `tapgate admin policy show|set`

use anyhow::{Result, bail};
use reqwest::Method;
use tapgate_shared::api::{PackageInfo, PackagePolicy, SecondFactor};
use tapgate_shared::gate_intent::Change;

use super::{encode_name, with_otp};
use crate::api::Client;
use crate::cli::{AdminCommand, Global, PolicyCommand, PolicySetArgs};
use crate::gated::{self, Expected};
use crate::output::emit;

pub async fn run(g: &Global, cmd: AdminCommand) -> Result<()> {
    match cmd {
        AdminCommand::Policy(PolicyCommand::Show { package }) => show(g, &package).await,
        AdminCommand::Policy(PolicyCommand::Set(args)) => set(g, &args).await,
    }
}

/// The policy the flags describe.
pub fn policy_of(args: &PolicySetArgs) -> Result<PackagePolicy> {
    let second_factor = match args.second_factor.as_str() {
        "security-key" => SecondFactor::SecurityKey,
        "none" => SecondFactor::None,
        other => bail!("unknown --second-factor {other:?}: use security-key or none"),
    };
    let ci = args
        .ci
        .iter()
        .map(|m| {
            serde_json::from_value::<tapgate_shared::api::CiMethod>(serde_json::Value::String(m.clone()))
                .map_err(|_| anyhow::anyhow!("unknown --ci {m:?}: use deploy-key, stage or oidc"))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PackagePolicy {
        second_factor,
        ci,
        attested_keys: args.attested_keys,
        user_verification: args.user_verification,
        approvals: args.approvals,
        all_maintainers_enrolled: args.all_maintainers_enrolled,
        approvals_when_scripts_change: args.approvals_when_scripts_change,
    })
}

fn canonical(policy: &PackagePolicy) -> String {
    serde_json::to_string(policy).unwrap_or_default()
}

async fn set(g: &Global, args: &PolicySetArgs) -> Result<()> {
    let policy = policy_of(args)?;
    let client = super::authed_client(g)?;
    let path = format!("/api/v1/packages/{}/policy", encode_name(&args.package));
    // The key approves exactly this new policy (the registry fills in the one it replaces, and
    // the change is shown before the tap).
    let expected =
        Expected::new(&args.package, Change::PolicySet { old: String::new(), new: canonical(&policy) });
    let resp = gated::send(g, &client, Some(&expected), |otp| {
        with_otp(client.request(Method::PUT, &path).json(&policy), otp)
    })
    .await?;
    let set: PackagePolicy = resp.json().await?;
    emit(g.json, &serde_json::json!({ "package": args.package, "policy": set }), || {
        format!("The policy of {} is now {}", args.package, canonical(&set))
    });
    Ok(())
}

async fn show(g: &Global, package: &str) -> Result<()> {
    let client = Client::new(&g.server, crate::credentials::token_for(&g.server)?)?;
    let info: PackageInfo = client.get(&format!("/api/v1/packages/{}", encode_name(package))).await?;
    emit(
        g.json,
        &serde_json::json!({
            "package": info.name, "policy": info.policy,
            "noncompliant_maintainers": info.noncompliant_maintainers,
        }),
        || {
            let mut out = format!("{}: {}", info.name, canonical(&info.policy));
            for m in &info.noncompliant_maintainers {
                out.push_str(&format!("\n  does not meet the policy: {} — {}", m.user, m.needs));
            }
            out
        },
    );
    Ok(())
}
