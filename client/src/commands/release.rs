//! `tapgate deprecate NAME@VERSION MESSAGE` and `tapgate unpublish NAME@VERSION | NAME --all`

use anyhow::{Result, bail};
use reqwest::Method;
use serde_json::{Value, json};
use tapgate_shared::gate_intent::{Change, Deprecation};

use super::{encode_name, with_otp};
use crate::cli::Global;
use crate::gated::{self, Expected};
use crate::output::emit;

pub async fn deprecate(g: &Global, spec: &str, message: &str) -> Result<()> {
    let (package, version) = super::verify::split_spec(spec)?;
    let client = super::authed_client(g)?;
    let path = format!("/api/v1/packages/{}/versions/{version}/deprecation", encode_name(&package));
    let expected = Expected::new(
        &package,
        Change::Deprecate {
            versions: vec![Deprecation { version: version.clone(), message: message.to_string() }],
        },
    );
    let body = json!({ "message": message });
    let resp = gated::send(g, &client, Some(&expected), |otp| {
        with_otp(client.request(Method::PUT, &path).json(&body), otp)
    })
    .await?;
    let result: Value = resp.json().await?;
    emit(g.json, &result, || {
        if message.is_empty() {
            format!("Lifted the deprecation of {package}@{version}.")
        } else {
            format!("Deprecated {package}@{version}: {message}")
        }
    });
    Ok(())
}

pub async fn unpublish(g: &Global, spec: &str, all: bool) -> Result<()> {
    let client = super::authed_client(g)?;
    let (package, path, change) = if all {
        if spec.get(1..).is_some_and(|rest| rest.contains('@')) {
            bail!(
                "--all unpublishes every version: give the package name alone, e.g. `tapgate unpublish {spec} --all`"
            );
        }
        let path = format!("/api/v1/packages/{}", encode_name(spec));
        (spec.to_string(), path, Change::UnpublishPackage { versions: Vec::new() })
    } else {
        let (package, version) = super::verify::split_spec(spec)?;
        let path = format!("/api/v1/packages/{}/versions/{version}", encode_name(&package));
        (package, path, Change::Unpublish { version, integrity: String::new() })
    };
    let expected = Expected::new(&package, change);
    let resp =
        gated::send(g, &client, Some(&expected), |otp| with_otp(client.request(Method::DELETE, &path), otp))
            .await?;
    let result: Value = resp.json().await?;
    emit(g.json, &result, || {
        let versions: Vec<&str> = result["unpublished"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        format!(
            "Unpublished {package}@{}; these version numbers can never be published again.",
            versions.join(", ")
        )
    });
    Ok(())
}
