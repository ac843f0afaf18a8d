//! The embedded database's file: created readable and writable by its owner only.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::StoreError;

/// Whether `file` names SQLite's in-memory database rather than a file.
pub fn is_memory(file: &Path) -> bool {
    file.as_os_str() == ":memory:"
}

/// Creates `file` with mode 0600 if it does not exist, and takes group and other access away
/// from it and its `-wal` and `-shm` files if they exist with more.
pub fn create_private(file: &Path) -> Result<(), StoreError> {
    if is_memory(file) {
        return Ok(());
    }
    std::fs::OpenOptions::new().write(true).create(true).truncate(false).mode(0o600).open(file).map_err(
        |e| StoreError::Config(format!("cannot create the database file {}: {e}", file.display())),
    )?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let path = Path::new(&name);
        let Ok(meta) = std::fs::metadata(path) else { continue };
        if meta.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
                StoreError::Config(format!("cannot make {} private (chmod 600): {e}", path.display()))
            })?;
        }
    }
    Ok(())
}
