//! The attestation trust the settings name: CA files, built-in roots, a FIDO metadata BLOB.

use std::time::SystemTime;

use super::Settings;
use crate::webauthn::AttestationTrust;
use crate::webauthn::builtin::ca_set;
use crate::webauthn::mds::{MdsRoots, MdsTrust, load_blob};

impl Settings {
    /// Loads the attestation trust configuration: CA files and built-in roots. The FIDO
    /// metadata BLOB is loaded apart ([`Self::fido_mds`]): it needs the database.
    pub fn attestation_trust(&self) -> Result<AttestationTrust, String> {
        let aaguids = (!self.attestation_aaguids.is_empty())
            .then(|| self.attestation_aaguids.iter().copied().collect());
        let mut trust = AttestationTrust::none().with_aaguids(aaguids);
        if let Some(path) = &self.attestation_ca {
            trust = trust.with_ca_path(path)?;
        }
        for name in &self.attestation_ca_builtin {
            trust = trust.with_builtin(ca_set(name)?)?;
        }
        Ok(trust)
    }

    /// Reads and verifies the `--fido-mds` BLOB at `now`, if one is configured.
    pub fn fido_mds(&self, now: SystemTime) -> Result<Option<MdsTrust>, String> {
        let Some(blob) = &self.fido_mds else { return Ok(None) };
        let roots = match &self.fido_mds_root {
            Some(path) => MdsRoots::from_pem_file(path)?,
            None => MdsRoots::builtin()?,
        };
        load_blob(blob, &roots, now).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{GlobalArgs, ServeArgs};

    #[test]
    fn trust_anchor_settings_are_checked_before_start() {
        let serve = ServeArgs { attestation_ca_builtin: vec!["yubico".into()], ..Default::default() };
        let s = Settings::resolve(&GlobalArgs::default(), &serve).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.attestation_trust().map(|t| t.ca_count()), Ok(2));
        let serve = ServeArgs { attestation_ca_builtin: vec!["nope".into()], ..Default::default() };
        let err = Settings::resolve(&GlobalArgs::default(), &serve).err().unwrap_or_default();
        assert!(err.contains("unknown --attestation-ca-builtin \"nope\""), "{err}");
        let serve = ServeArgs { fido_mds_root: Some("/root.pem".into()), ..Default::default() };
        let err = Settings::resolve(&GlobalArgs::default(), &serve).err().unwrap_or_default();
        assert!(err.contains("without --fido-mds"), "{err}");
        // By default nothing is trusted and no BLOB is read.
        let s = Settings::resolve(&GlobalArgs::default(), &ServeArgs::default())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.attestation_trust().map(|t| t.ca_count()), Ok(0));
        assert!(matches!(s.fido_mds(SystemTime::now()), Ok(None)));
    }
}
