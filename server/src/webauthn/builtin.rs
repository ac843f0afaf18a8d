//! The trust anchors shipped in `server/trust/` (see its README for where each comes from and how
//! to update it), compiled in so that a flag can enable them without a path.

/// A named set of vendor attestation roots, enabled with `--attestation-ca-builtin NAME`.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinCaSet {
    pub name: &'static str,
    /// (file name under `server/trust/fido-roots/`, PEM text)
    pub files: &'static [(&'static str, &'static str)],
}

pub const BUILTIN_CA_SETS: &[BuiltinCaSet] = &[BuiltinCaSet {
    name: "yubico",
    files: &[
        ("yubico-fido-ca-1.pem", include_str!("../../trust/fido-roots/yubico-fido-ca-1.pem")),
        ("yubico-fido-ca-2.pem", include_str!("../../trust/fido-roots/yubico-fido-ca-2.pem")),
    ],
}];

/// The roots a FIDO Metadata Service BLOB must chain to unless `--fido-mds-root` names others.
pub const FIDO_MDS_ROOTS: &[(&str, &str)] = &[
    ("globalsign-root-ca-r3.pem", include_str!("../../trust/fido-mds-roots/globalsign-root-ca-r3.pem")),
    ("globalsign-root-r46.pem", include_str!("../../trust/fido-mds-roots/globalsign-root-r46.pem")),
];

/// The domain the FIDO Metadata Service's signing certificate must be issued to (itself or a
/// name under it, e.g. `mds.fidoalliance.org`). Checked when the BLOB chains to the built-in
/// roots, which are public TLS roots that also certify other sites.
pub const FIDO_MDS_SIGNER_DOMAIN: &str = "fidoalliance.org";

/// The set called `name`, or a sentence listing the known ones.
pub fn ca_set(name: &str) -> Result<&'static BuiltinCaSet, String> {
    BUILTIN_CA_SETS.iter().find(|set| set.name == name.trim()).ok_or_else(|| {
        let known: Vec<_> = BUILTIN_CA_SETS.iter().map(|s| s.name).collect();
        format!("unknown --attestation-ca-builtin {name:?}: the built-in sets are {}", known.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crypto_glue::traits::DecodePem;
    use crypto_glue::x509::{Certificate, x509_digest_cert_sha256};

    /// The README's table rows: `| `FILE` | … | `FINGERPRINT` |`.
    fn readme_fingerprint(file: &str) -> String {
        let readme = include_str!("../../trust/README.md");
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{file}`")))
            .unwrap_or_else(|| panic!("no README row for {file}"));
        let cell = row.trim_end_matches('|').trim().rsplit('|').next().unwrap_or_default();
        cell.trim().trim_matches('`').replace(':', "").to_lowercase()
    }

    #[test]
    fn every_shipped_root_parses_and_matches_its_readme_fingerprint() {
        let all = BUILTIN_CA_SETS.iter().flat_map(|s| s.files.iter()).chain(FIDO_MDS_ROOTS.iter());
        let mut seen = 0;
        for (file, pem) in all {
            let cert = Certificate::from_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("{file}: {e}"));
            let digest = hex::encode(x509_digest_cert_sha256(&cert).unwrap_or_else(|e| panic!("{e}")));
            assert_eq!(digest, readme_fingerprint(file), "{file}");
            seen += 1;
        }
        assert_eq!(seen, 4);
    }

    #[test]
    fn sets_are_found_by_name_and_unknown_names_are_listed() {
        assert_eq!(ca_set("yubico").map(|s| s.files.len()), Ok(2));
        let err = ca_set("acme").err().unwrap_or_default();
        assert!(err.contains("\"acme\"") && err.contains("yubico"), "{err}");
    }
}
