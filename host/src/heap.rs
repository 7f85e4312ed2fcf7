//! Giving freed heap memory back to the operating system.
//!
//! Compiling a plugin (Cranelift, on several threads) allocates tens of
//! megabytes that are freed when it finishes, but glibc's allocator keeps
//! freed memory in its arenas, so the process would hold its compile-time
//! peak for life: about 100 MiB after a first start that compiled the
//! bundled plugins, against 30 MiB after a start from the compile cache.
//! After a burst of such work, one `malloc_trim` returns the free pages.

/// Returns free heap pages to the system. Cheap when there is little to
/// return; a no-op where the allocator is not glibc's.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes the allocator's locks and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}
