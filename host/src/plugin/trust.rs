//! Trust in the plugins folder, checked the way sshd's `StrictModes` checks
//! a user's files: whoever can write a plugin file, or the folder it is in,
//! can run code in the daemon's sandbox and read the federation's tables.
//!
//! The folder, every folder above it and each plugin file must be owned by
//! root or by the user the daemon runs as, and must not be writable by
//! group or others. A folder above that others can write is accepted when
//! it has the sticky bit (as `/tmp` does), because then others cannot
//! rename or replace what they do not own. `allow_writable_plugins = true`
//! turns the check off.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Write permission for group or others.
const GROUP_OR_OTHER_WRITE: u32 = 0o022;
/// The sticky bit.
const STICKY: u32 = 0o1000;

/// Checks the plugins folder and every folder above it.
pub fn check_folder(dir: &Path) -> Result<(), String> {
    let dir = dir.canonicalize().map_err(|error| {
        if error.kind() == std::io::ErrorKind::NotFound {
            format!(
                "plugins folder {} not found; create it or set --plugins-dir",
                dir.display()
            )
        } else {
            format!("cannot open the plugins folder {}: {error}", dir.display())
        }
    })?;
    let metadata = std::fs::metadata(&dir)
        .map_err(|error| format!("cannot read {}: {error}", dir.display()))?;
    check_owner_and_mode(&dir, &metadata, false, "plugins folder")?;

    for ancestor in dir.ancestors().skip(1) {
        let metadata = std::fs::metadata(ancestor)
            .map_err(|error| format!("cannot read {}: {error}", ancestor.display()))?;
        check_owner_and_mode(ancestor, &metadata, true, "folder above the plugins folder")?;
    }
    Ok(())
}

/// Checks one plugin file.
pub fn check_file(path: &Path) -> Result<(), String> {
    let metadata = std::fs::metadata(path)
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    check_owner_and_mode(path, &metadata, false, "plugin file")
}

fn check_owner_and_mode(
    path: &Path,
    metadata: &std::fs::Metadata,
    sticky_allowed: bool,
    what: &str,
) -> Result<(), String> {
    let mode = metadata.mode();
    let owner = metadata.uid();
    let daemon_user = current_uid();
    if owner != 0 && owner != daemon_user {
        return Err(format!(
            "{what} {} is owned by uid {owner}, not by root or the daemon's user (uid \
             {daemon_user}); chown it, or set allow_writable_plugins = true in the \
             configuration file to load it anyway",
            path.display()
        ));
    }
    let writable = mode & GROUP_OR_OTHER_WRITE != 0;
    if writable && !(sticky_allowed && mode & STICKY != 0) {
        return Err(format!(
            "{what} {} is writable by group or others (mode {:o}); run `chmod go-w {}`, or \
             set allow_writable_plugins = true in the configuration file to load it anyway",
            path.display(),
            mode & 0o7777,
            path.display()
        ));
    }
    Ok(())
}

fn current_uid() -> u32 {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    #[allow(unsafe_code)]
    unsafe {
        libc::geteuid()
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn folder(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tpm-trust-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }

    #[test]
    fn private_folder_and_file_pass() {
        let dir = folder("private");
        let file = dir.join("a.wasm");
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        check_folder(&dir).unwrap();
        check_file(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn world_writable_folder_is_rejected_with_fix() {
        let dir = folder("shared");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let error = check_folder(&dir).unwrap_err();
        assert!(error.contains("chmod go-w"), "{error}");
        assert!(error.contains("allow_writable_plugins"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn group_writable_file_is_rejected() {
        let dir = folder("group");
        let file = dir.join("a.wasm");
        std::fs::write(&file, b"").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o664)).unwrap();
        let error = check_file(&file).unwrap_err();
        assert!(error.contains("mode 664"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sticky_world_writable_parent_is_accepted() {
        // The system temp folder is 1777 on Linux.
        let dir = folder("under-tmp");
        check_folder(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
