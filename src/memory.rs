//! How the C allocator treats large buffers, for the base-backup pipeline.
//!
//! glibc's `malloc` serves a request of 128 KiB or more with its own `mmap`
//! and unmaps it on `free`, but it raises that threshold to the size of the
//! largest block freed so far (up to 32 MiB). After the first 5 MiB upload
//! part or 1 MiB gzip block is freed, every later buffer of that kind comes
//! from the arenas instead, and a freed buffer stays resident in the arena of
//! the thread that allocated it: each compression worker, blocking thread and
//! runtime thread keeps its own. A 1 GiB base backup then peaked at 48 to 56
//! MiB of RSS.
//!
//! Fixing the threshold (which also stops its growth) keeps every buffer of
//! 128 KiB or more in its own mapping, returned to the system when freed.
//! The backup pipeline reuses its large buffers (the gzip workers their zlib
//! state and input blocks), so few of them pay for fresh pages. Measured on
//! the 1 GiB pgbench database of `scripts/compare-backup.sh`, interleaved,
//! three rounds each: peak RSS 48.8 to 54.9 MiB → 29.8 to 31.1 MiB, wall time
//! 7.15 to 7.59 s → 6.65 to 7.15 s.
//!
//! Only the `backup` command sets it. The base restore, WAL pushes and the
//! sidecar (also its scheduled backups) run without it: measured with the
//! same setting from the environment (`MALLOC_MMAP_THRESHOLD_=131072`), their
//! peak did not move beyond noise, and the restore, whose chunks and blocks
//! then fault in fresh pages, was slower in three interleaved rounds.

/// The largest request still served from the arenas.
const MMAP_THRESHOLD: i32 = 128 * 1024;

/// Serves every buffer of [`MMAP_THRESHOLD`] or more from its own mapping,
/// unmapped when freed (see the module header). Call it before the pipeline
/// allocates. A no-op where the C library is not glibc.
pub fn unmap_large_buffers_when_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes allocator parameters; glibc applies
        // them under its own lock, so concurrent allocations are fine.
        let applied = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) };
        if applied != 1 {
            tracing::debug!("mallopt(M_MMAP_THRESHOLD) was refused; large buffers stay in arenas");
        }
    }
}
