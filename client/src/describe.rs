//! What a change is, shown before a tap: for a publish, the tags, the integrity as npm prints
//! it, who asked from where (as the registry recorded it), and what the tarball holds and
//! changes against the previous version. `tapgate publish` computes that last part here, from
//! the tarball it packed; `tapgate approve` shows the registry's description.
//!
//! Informational only: the key signs the intent (checked in [`crate::gated::check`]), never
//! this. It is there so that a person notices a change they did not mean, above all a new
//! install script.

use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use reqwest::Method;
use serde_json::Value;
use tapgate_shared::api::ApprovalDetails;
use tapgate_shared::gate_intent::{Change, GateIntent};
use tapgate_shared::intent::sri_sha512;
use tapgate_shared::publish_diff::{
    Contents, Listed, PublishDiff, compare, npm_short_integrity, previous_version,
};

use crate::api::Client;
use crate::commands::encode_name;

/// File changes printed before "and N more".
const MAX_PRINTED_FILES: usize = 40;
/// Dependency changes printed before "and N more".
const MAX_PRINTED_DEPENDENCIES: usize = 100;

/// Describes `tarball` (packed here) against the previous served version of `name`, which is
/// downloaded from the registry. When the previous version cannot be had, the description says
/// so and compares with nothing.
pub async fn local_publish_diff(
    client: &Client,
    name: &str,
    version: &str,
    tarball: &[u8],
) -> Result<PublishDiff> {
    let (manifest, files) = crate::pack::contents(tarball)?;
    let new = Contents { files: &files, manifest: &manifest };
    let size = u64::try_from(tarball.len()).unwrap_or(u64::MAX);
    let previous = match previous_tarball(client, name, version).await {
        Ok(previous) => previous,
        Err(e) => {
            return Ok(PublishDiff {
                note: Some(format!("not compared with the previous version: {e:#}")),
                ..compare(size, new, None)
            });
        }
    };
    let Some((old_version, old_tarball)) = previous else {
        return Ok(compare(size, new, None));
    };
    match crate::pack::contents(&old_tarball) {
        Ok((old_manifest, old_files)) => Ok(compare(
            size,
            new,
            Some((&old_version, Contents { files: &old_files, manifest: &old_manifest })),
        )),
        Err(e) => Ok(PublishDiff {
            note: Some(format!("not compared with {old_version}: its tarball cannot be read ({e:#})")),
            ..compare(size, new, None)
        }),
    }
}

/// The previous served version of `name` and its tarball (checked against the integrity the
/// registry publishes for it); none for a first publish.
async fn previous_tarball(client: &Client, name: &str, version: &str) -> Result<Option<(String, Vec<u8>)>> {
    let resp = client
        .request(Method::GET, &format!("/{}", encode_name(name)))
        .header("accept", "application/vnd.npm.install-v1+json")
        .send()
        .await
        .with_context(|| format!("cannot reach the registry at {}", client.base))?;
    if resp.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        bail!("the registry answered {} for {name}", resp.status());
    }
    let packument: Value = resp.json().await.context("the registry sent an unreadable packument")?;
    let versions = packument["versions"].as_object().context("the packument lists no versions")?;
    let Some(previous) = previous_version(versions.keys().map(String::as_str), version) else {
        return Ok(None);
    };
    let dist = &versions[previous]["dist"];
    let url = dist["tarball"].as_str().context("the registry publishes no tarball URL")?;
    let path = url.strip_prefix(&client.base).context("the previous tarball is not on this registry")?;
    let bytes = client.execute(client.request(Method::GET, path)).await?.bytes().await?.to_vec();
    if dist["integrity"].as_str() != Some(sri_sha512(&bytes).as_str()) {
        bail!("the tarball of {previous} does not match the integrity the registry publishes for it");
    }
    Ok(Some((previous.to_string(), bytes)))
}

/// The lines shown before a tap, after the change in words.
pub fn lines(intent: &GateIntent, details: Option<&ApprovalDetails>, local: Option<&PublishDiff>) -> String {
    let mut out = String::new();
    if let Change::Publish { integrity, tags, .. } = &intent.change {
        let _ = writeln!(
            out,
            "  sets tags: {}",
            if tags.is_empty() { "none".into() } else { plain(&tags.join(", ")) }
        );
        let _ = writeln!(out, "  integrity: {} (as npm prints it)", plain(&npm_short_integrity(integrity)));
    }
    if let Change::TrustCreate { issuer, claims, permissions, .. } = &intent.change {
        let _ = writeln!(out, "  issuer: {} (its tokens' iss, exactly)", plain(issuer));
        if let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(claims) {
            for (name, value) in &map {
                let _ = writeln!(out, "  the ID token's {}: {}", plain(name), plain(&value.to_string()));
            }
        }
        let _ = writeln!(out, "  permissions: {} (no tap at release time)", plain(&permissions.join(", ")));
    }
    if let Some(d) = details {
        let from =
            [d.ip.as_deref(), d.user_agent.as_deref()].into_iter().flatten().map(plain).collect::<Vec<_>>();
        if !from.is_empty() || !d.requested_at.is_empty() {
            let _ = writeln!(
                out,
                "  asked from {} at {} (as {} recorded it)",
                if from.is_empty() { "an unrecorded address".to_string() } else { from.join(" with ") },
                plain(&d.requested_at),
                plain(&d.registry)
            );
        }
    }
    match (local, details.and_then(|d| d.publish.as_ref())) {
        (Some(diff), _) => publish(&mut out, diff, "computed here from the tarball you packed"),
        (None, Some(diff)) => {
            publish(&mut out, diff, "as the registry describes it; your key signs the integrity above")
        }
        (None, None) => {}
    }
    out
}

fn publish(out: &mut String, diff: &PublishDiff, source: &str) {
    let count = diff.files.total();
    let _ = write!(
        out,
        "  tarball: {}, {count} files, {} unpacked",
        size(diff.tarball_size),
        size(diff.unpacked_size)
    );
    match &diff.previous_version {
        Some(v) => {
            let _ = writeln!(out, "; changes since {} ({source}):", plain(v));
        }
        None => {
            let why = diff.note.as_deref().map_or("first version".to_string(), plain);
            let _ = writeln!(out, " ({why}; {source}):");
        }
    }
    for s in &diff.scripts.items {
        let (mark, kind) = if s.install { ("!!", "install script") } else { ("  ", "script") };
        let what = match (&s.from, &s.to) {
            (None, Some(to)) => format!("added: {}", plain(to)),
            (Some(from), Some(to)) => format!("changed: {} -> {}", plain(from), plain(to)),
            (Some(from), None) => format!("removed (was: {})", plain(from)),
            (None, None) => "unchanged".into(),
        };
        let _ = writeln!(out, "  {mark} {kind} {} {what}", plain(&s.name));
    }
    more(out, diff.scripts.more, "script changes");
    for d in diff.dependencies.items.iter().take(MAX_PRINTED_DEPENDENCIES) {
        let kind = if d.kind == "dependencies" { String::new() } else { format!(" ({})", d.kind) };
        let line = match (&d.from, &d.to) {
            (None, Some(to)) => format!("+ dependency {} {}{kind}", plain(&d.name), plain(to)),
            (Some(from), Some(to)) => {
                format!("~ dependency {} {} -> {}{kind}", plain(&d.name), plain(from), plain(to))
            }
            (Some(from), None) => format!("- dependency {} {}{kind}", plain(&d.name), plain(from)),
            (None, None) => continue,
        };
        let _ = writeln!(out, "     {line}");
    }
    let unprinted = diff.dependencies.items.len().saturating_sub(MAX_PRINTED_DEPENDENCIES);
    more(out, diff.dependencies.more + unprinted as u64, "dependency changes");
    let mut budget = MAX_PRINTED_FILES;
    let mut files = |out: &mut String, lines: Vec<String>, listed: u64| {
        let shown = lines.len().min(budget);
        for line in &lines[..shown] {
            let _ = writeln!(out, "     {line}");
        }
        budget -= shown;
        listed - shown as u64
    };
    let file_lines = |l: &Listed<tapgate_shared::publish_diff::ListedFile>, mark: &str| {
        l.items
            .iter()
            .map(|f| format!("{mark} file {} ({})", plain(&f.path), size(f.size)))
            .collect::<Vec<_>>()
    };
    let mut left = files(out, file_lines(&diff.added, "+"), diff.added.total());
    let changed = diff
        .changed
        .items
        .iter()
        .map(|f| format!("~ file {} ({} -> {})", plain(&f.path), size(f.old_size), size(f.size)))
        .collect();
    left += files(out, changed, diff.changed.total());
    left += files(out, file_lines(&diff.removed, "-"), diff.removed.total());
    more(out, left, "file changes");
}

fn more(out: &mut String, n: u64, what: &str) {
    if n > 0 {
        let _ = writeln!(out, "     … and {n} more {what}");
    }
}

/// Sizes as npm prints them (1 kB = 1000 B).
fn size(n: u64) -> String {
    match n {
        0..1000 => format!("{n} B"),
        1000..1_000_000 => format!("{:.1} kB", n as f64 / 1000.0),
        _ => format!("{:.1} MB", n as f64 / 1_000_000.0),
    }
}

/// Text from a package or the registry, safe on a terminal: control characters escaped.
fn plain(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn install_scripts_and_escapes_are_shown() {
        let diff: PublishDiff = serde_json::from_value(json!({
            "tarball_size": 1500, "unpacked_size": 10, "previous_version": "1.0.0",
            "files": { "items": [{ "path": "index.js", "size": 10 }] },
            "removed": { "items": [{ "path": "old.js", "size": 4 }], "more": 0 },
            "dependencies": { "items": [{ "kind": "dependencies", "name": "left-pad", "from": null, "to": "^1.3.0" }] },
            "scripts": { "items": [{ "name": "postinstall", "from": null, "to": "curl x | sh\u{1b}[2K", "install": true }] },
        }))
        .unwrap();
        let intent = GateIntent {
            subject: "x".into(),
            requested_by: "alice".into(),
            change: Change::Publish {
                version: "1.1.0".into(),
                integrity: format!("sha512-{}", "A".repeat(88)),
                tags: vec!["latest".into()],
            },
        };
        let text = lines(&intent, None, Some(&diff));
        assert!(text.contains("!! install script postinstall added: curl x | sh\\u{1b}[2K"), "{text}");
        assert!(!text.contains('\u{1b}'), "{text}");
        assert!(text.contains("+ dependency left-pad ^1.3.0"), "{text}");
        assert!(text.contains("- file old.js (4 B)"), "{text}");
        assert!(text.contains("changes since 1.0.0"), "{text}");
        assert!(text.contains("sets tags: latest"), "{text}");
        assert!(
            text.contains(&format!("integrity: sha512-{}[...]{}", "A".repeat(13), "A".repeat(15))),
            "{text}"
        );
    }
}
