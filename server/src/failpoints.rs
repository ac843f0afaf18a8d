//! Failpoints: places between the statements of multi-statement writes where a test can make
//! the process die (`std::process::abort`, as a crash or power loss would), to prove that every
//! write commits whole or not at all.
//!
//! They exist only in builds with the `failpoints` cargo feature (the end-to-end tests enable
//! it); in every other build [`failpoint!`] expands to nothing. A test arms one by starting the
//! server with `TAPGATE_FAILPOINT=<name>`; `TAPGATE_FAILPOINT=list` makes the binary print the
//! names of every failpoint compiled in, one a line, and exit.

/// Every failpoint, by name: what the crash test walks. A unit test checks that this list and
/// the `failpoint!` calls in the sources are the same set.
pub const ALL: &[&str] = &[
    // The guard every gated write runs in its transaction (`store::gate`).
    "gate.checked",
    "gate.ticket_spent",
    "gate.deploy_key_spent",
    // The outbox and the audit chain, written in the change's transaction (`store::effects`,
    // `store::audit`).
    "outbox.event_inserted",
    "outbox.deliveries_queued",
    "audit.head_locked",
    "audit.entry_appended",
    // Publish (`store::packages`).
    "publish.package_claimed",
    "publish.version_inserted",
    "publish.tarball_inserted",
    "publish.tags_set",
    "publish.committed",
    // The other gated writes (`store::changes`).
    "dist_tag.set",
    "unpublish.version_marked",
    "unpublish.tarball_deleted",
    "unpublish.tags_removed",
    "unpublish.committed",
    "maintainer_add.inserted",
    "maintainer_remove.deleted",
    "policy.stored",
    // Taps recorded on an approval (`store::approvals`).
    "approval.signature_recorded",
    "approval.approved",
    // CI: a credential's creation and a deploy key's issue (`store::ci`).
    "ci_credential.inserted",
    "deploy_key.swept",
    "deploy_key.inserted",
    // Notification delivery (`store::outbox`, `notify::worker`).
    "outbox.claimed",
    "notify.sent",
];

/// Dies here when the server was started with `TAPGATE_FAILPOINT=<name>` (only in builds with
/// the `failpoints` feature; nothing otherwise).
#[macro_export]
macro_rules! failpoint {
    ($name:literal) => {
        #[cfg(feature = "failpoints")]
        $crate::failpoints::hit($name);
    };
}

/// The failpoint armed for this process, read once.
#[cfg(feature = "failpoints")]
fn armed() -> Option<&'static str> {
    static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ARMED.get_or_init(|| std::env::var("TAPGATE_FAILPOINT").ok()).as_deref()
}

/// Aborts the process if `name` is the armed failpoint.
#[cfg(feature = "failpoints")]
pub fn hit(name: &'static str) {
    if !ALL.contains(&name) {
        eprintln!("failpoint {name} is not listed in failpoints::ALL");
        std::process::abort();
    }
    if armed() == Some(name) {
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
}

/// With `TAPGATE_FAILPOINT=list`: prints every failpoint compiled in and answers true (the
/// binary then exits). Always false in builds without the `failpoints` feature.
pub fn list_requested() -> bool {
    #[cfg(feature = "failpoints")]
    if armed() == Some("list") {
        for name in ALL {
            println!("{name}");
        }
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn calls_in(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                calls_in(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("failpoints.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("failpoint!(\"").skip(1) {
                    found.push(piece.split('"').next().unwrap().to_string());
                }
            }
        }
    }

    #[test]
    fn every_failpoint_in_the_sources_is_listed_once_and_every_listed_one_is_placed() {
        let mut found = Vec::new();
        calls_in(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut found);
        let placed: BTreeSet<&str> = found.iter().map(String::as_str).collect();
        assert_eq!(placed.len(), found.len(), "a failpoint name is used twice: {found:?}");
        let listed: BTreeSet<&str> = super::ALL.iter().copied().collect();
        assert_eq!(listed.len(), super::ALL.len(), "a name is listed twice");
        assert_eq!(placed, listed, "failpoints placed in the sources vs failpoints::ALL");
    }
}
