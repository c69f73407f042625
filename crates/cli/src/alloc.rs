//! Process-wide allocator settings.
//!
//! glibc's malloc serves a large allocation with its own mapping, and when
//! that mapping is freed it raises its threshold to the freed size (up to
//! 32 MiB), so that later blocks of that size come from the heap arenas
//! instead. Backup, restore and check go through many short-lived
//! megabyte buffers (chunks, 16 MiB packs, 2 MiB pack reads) on several
//! threads: after the first few, those land in the per-thread arenas,
//! which keep the freed space and fragment. On the Linux source tree
//! that was 50 to 100 MiB of peak RSS above the live heap (heaptrack:
//! 72 MiB live, 166 MiB peak RSS for a first backup). A fixed threshold
//! keeps such buffers in mappings that go back to the system when freed.

/// Fix glibc's mmap threshold at its default starting value, which turns
/// off the dynamic raising described above. A no-op elsewhere.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub(crate) fn tune() {
    /// glibc's default starting threshold: blocks from 128 KiB up are
    /// mapped on their own.
    const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
    // SAFETY: mallopt only changes malloc's parameters; it is called
    // before any other thread exists, and a refusal (return 0) leaves the
    // defaults, which are correct, only larger.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}

/// Other platforms keep their allocator's defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn tune() {}
