//! Giving memory back to the system. A poll may parse a body of up to `max_body_bytes` into many
//! small allocations; freed, glibc would keep them: its mmap threshold grows to the largest block
//! freed (a 4 MiB body makes it 4 MiB and the trim threshold 8 MiB, so later bodies land on the
//! heap and stay there), and `malloc_trim` trims the top of the main arena only, not of the
//! arenas of the runtime's threads. So the thresholds are fixed at start (which also turns their
//! growth off) and every poll ends with a `malloc_trim`: the resident set returns to where it was.

/// Blocks from this size on are mapped on their own and unmapped when freed (glibc's initial
/// default, kept from growing).
const MMAP_THRESHOLD: i32 = 128 * 1024;
/// Free memory above this at the top of an arena's heap is returned on free.
const TRIM_THRESHOLD: i32 = 1024 * 1024;

/// Call once, before the threads start.
pub fn configure() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt changes allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}

/// Return the free pages of every arena (after a poll: well under a millisecond).
pub fn release() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
