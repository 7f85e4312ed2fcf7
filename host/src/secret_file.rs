//! Files and directories that hold secrets or evidence (private keys,
//! signing keys, the audit log): created owner-only whatever the umask, and
//! never left half-written under the real name.

use std::io::Write;
use std::path::Path;

/// Writes `contents` to `path` with mode 0600, via a temporary file renamed
/// into place, so a crash never leaves a torn key behind. The temporary name
/// is unguessable and created exclusively (`O_EXCL`, which also refuses a
/// symlink planted there), and the directory is synced after the rename so
/// the new name survives a crash.
pub(crate) fn write(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4().simple()));
    write_via(path, &tmp, contents)
}

fn write_via(path: &Path, tmp: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(tmp)?;
    let written = file
        .write_all(contents)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(tmp, path));
    if let Err(err) = written {
        let _ = std::fs::remove_file(tmp);
        return Err(err);
    }
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Makes a directory's entries (a rename, a new file) durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)?.sync_all()
}

/// Creates `dir` and any missing parents with mode 0700, whatever the umask.
/// An existing directory keeps its mode (an operator may have opened it to a
/// log shipper on purpose), with a warning when others can reach it.
pub(crate) fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    let existed = dir.is_dir();
    builder.create(dir)?;
    #[cfg(unix)]
    if existed {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            tracing::warn!(
                dir = %dir.display(),
                "directory is open to other users (mode {mode:o}); `chmod 700` it unless that is intended"
            );
        }
    }
    Ok(())
}

/// Sets the process umask to the common default 022, so mode tests show
/// that modes are set explicitly rather than inherited from a strict umask.
#[cfg(all(test, unix))]
pub(crate) fn test_umask_022() {
    #[allow(unsafe_code)]
    // SAFETY: umask only swaps the process's creation mask; it touches no memory.
    unsafe {
        libc::umask(0o022);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn owner_only() {
        let dir = std::env::temp_dir().join(format!("toolhost-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("key");
        super::write(&path, b"old").expect("write");
        super::write(&path, b"secret").expect("overwrite");
        assert_eq!(std::fs::read(&path).expect("read"), b"secret");
        let names: Vec<_> = std::fs::read_dir(&dir)
            .expect("list")
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("key")],
            "no temporary left"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Someone who can write to the directory plants a symlink where the
    /// old code put its temporary file (`NAME.tmpPID`): the secret must not
    /// be written through it, and the link's target must stay untouched.
    #[cfg(unix)]
    #[test]
    fn a_planted_symlink_never_receives_the_secret() {
        let dir = std::env::temp_dir().join(format!("toolhost-secret-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("dir");
        let victim = dir.join("victim");
        std::fs::write(&victim, b"precious").expect("victim");
        let path = dir.join("key");
        let planted = path.with_extension(format!("tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).expect("plant");
        let _ = super::write(&path, b"secret");
        assert_eq!(std::fs::read(&victim).expect("read victim"), b"precious");
        // And a symlink at the very temporary name is refused, not followed.
        let tmp = dir.join("key.tmp-planted");
        std::os::unix::fs::symlink(&victim, &tmp).expect("plant");
        let err = super::write_via(&path, &tmp, b"secret").expect_err("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).expect("read victim"), b"precious");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn directories_are_private_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        super::test_umask_022();
        let root = std::env::temp_dir().join(format!("toolhost-secret-{}", uuid::Uuid::new_v4()));
        let dir = root.join("data/auth");
        super::create_dir(&dir).expect("create");
        super::create_dir(&dir).expect("an existing directory is fine");
        for path in [&root, &root.join("data"), &dir] {
            let mode = std::fs::metadata(path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", path.display());
        }
        let _ = std::fs::remove_dir_all(&root);
    }
}
