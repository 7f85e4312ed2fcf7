//! What a file-system event means to the watchers of the plugins directory
//! and of the TLS files. A leaf: both watchers sit above it.

use std::path::Path;

/// Whether an event changes a file's contents or presence. Metadata-only
/// reads are not changes: reloading reads every plugin file, and reacting to
/// that would reload forever.
pub(crate) fn is_change(kind: &notify::EventKind) -> bool {
    use notify::EventKind;
    use notify::event::{AccessKind, AccessMode, MetadataKind, ModifyKind};
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime)) => false,
        EventKind::Modify(_) => true,
        // A file written and closed: the end of a copy into place.
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Access(_) | EventKind::Any | EventKind::Other => false,
    }
}

/// Whether `path` is the link Kubernetes swaps to update a mounted Secret or
/// ConfigMap at once: the files are links through `..data` to a timestamped
/// directory, and an update writes a new directory and renames a new
/// `..data` over the old, so no event names the files themselves.
pub(crate) fn is_volume_swap(path: &Path) -> bool {
    path.file_name().is_some_and(|name| name == "..data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubelet_swaps_are_recognised() {
        assert!(is_volume_swap(Path::new("/etc/toolhost-tls/..data")));
        assert!(!is_volume_swap(Path::new("/etc/toolhost-tls/..data_tmp")));
        assert!(!is_volume_swap(Path::new("/etc/toolhost-tls/tls.crt")));
    }

    #[test]
    fn reads_are_not_changes() {
        use notify::EventKind;
        use notify::event::{AccessKind, AccessMode, CreateKind};
        assert!(is_change(&EventKind::Create(CreateKind::File)));
        assert!(!is_change(&EventKind::Access(AccessKind::Read)));
        assert!(is_change(&EventKind::Access(AccessKind::Close(
            AccessMode::Write
        ))));
    }
}
