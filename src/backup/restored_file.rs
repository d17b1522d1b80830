//! Writing the data of one restored regular file.
//!
//! Files of [`LARGE_MIN`] or more (relation segments, WAL segments: nearly
//! all of a restore's bytes) go through the page cache, and how long they
//! stay there depends on what a page of it costs. A base restore writes the
//! whole database once and nobody reads it back until PostgreSQL starts,
//! which syncs the data directory. While new page cache is cheap (memory the
//! guest used recently), the restore leaves its pages for the kernel to
//! write back whenever it likes, and ends as soon as the data is in memory.
//! When it is dear (on the benchmark VM a buffered MiB took about 0.45 ms
//! into memory the guest had used recently and 3 to 4 ms into memory the
//! host had taken back, free page reporting; under Kubernetes, once the
//! pod's memory cgroup throttles its dirty pages), the restore writes
//! behind: every [`WRITE_BEHIND`] bytes of a large file are handed to
//! writeback as soon as they are written (`sync_file_range`), and the run
//! before them, once on disk, is dropped from the page cache
//! (`posix_fadvise(DONTNEED)`). The restore then keeps reusing the same few
//! MiB of page cache, runs at the disk's speed, and leaves nothing dirty
//! behind it.
//!
//! The restore measures the cost on its own writes ([`PageCacheCost`]):
//! large files start with ordinary writes, each timed, and as soon as one
//! window of [`COST_WINDOW`] bytes has cost more than
//! [`COST_LIMIT_NANOS_PER_MIB`], the file being written and every later one
//! are written behind. `BARNACLE_WRITE_BEHIND=0` never writes behind,
//! `BARNACLE_WRITE_BEHIND=1` always does for large files.
//!
//! Earlier versions went past the page cache instead, with `O_DIRECT`:
//! aligned 1 MiB blocks written at their offsets by two threads. Writing behind reaches the
//! same disk-bound speed without the blocks and the threads (3.4 MiB of peak
//! RSS) and without the fallbacks for file systems and devices that refuse
//! direct I/O (`docs/benchmarks.md`, "Base restore: writing behind").

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::{OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Files at least this large are timed, and written behind once the page
/// cache is dear.
const LARGE_MIN: u64 = 1 << 20;

/// The bytes of buffered writes over which their cost is judged.
const COST_WINDOW: u64 = 16 << 20;

/// What a MiB of buffered writes may cost before the restore writes behind:
/// about what writing a MiB to the benchmark VM's disk takes.
const COST_LIMIT_NANOS_PER_MIB: u64 = 1_000_000;

/// How many bytes of a large file are handed to writeback at once when
/// writing behind: large enough for the disk to get long requests, small
/// enough that the two runs in the page cache (one being written back, one
/// being written) are a few MiB.
const WRITE_BEHIND: u64 = 8 << 20;

/// When large files are written behind, from `BARNACLE_WRITE_BEHIND`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteBehindSetting {
    /// `0`: never.
    Never,
    /// `1`: always.
    Always,
    /// Unset (or anything else): once the page cache proves dear.
    Measured,
}

fn write_behind_setting() -> WriteBehindSetting {
    static SETTING: OnceLock<WriteBehindSetting> = OnceLock::new();
    *SETTING.get_or_init(
        || match std::env::var_os("BARNACLE_WRITE_BEHIND").as_deref() {
            Some(v) if v == "0" => WriteBehindSetting::Never,
            Some(v) if v == "1" => WriteBehindSetting::Always,
            _ => WriteBehindSetting::Measured,
        },
    )
}

/// The cost of buffered writes, measured window by window over one restore,
/// and whether it has proved dear.
struct PageCacheCost {
    /// Bytes and time of the buffered writes of the current window.
    window: (u64, Duration),
    /// Set once a window cost too much (or from the start under
    /// `BARNACLE_WRITE_BEHIND=1`): large files are written behind from then on.
    dear: bool,
    limit_nanos_per_mib: u64,
}

impl Default for PageCacheCost {
    fn default() -> Self {
        let dear = write_behind_setting() == WriteBehindSetting::Always;
        PageCacheCost::with_limit(COST_LIMIT_NANOS_PER_MIB, dear)
    }
}

impl PageCacheCost {
    fn with_limit(limit_nanos_per_mib: u64, dear: bool) -> Self {
        PageCacheCost {
            window: (0, Duration::ZERO),
            dear,
            limit_nanos_per_mib,
        }
    }

    /// Whether large files are now written behind.
    fn is_dear(&self) -> bool {
        self.dear
    }

    /// Counts one buffered write of `bytes` that took `took`; `true` when it
    /// closes a window that cost too much (from then on, write behind).
    fn record(&mut self, bytes: usize, took: Duration) -> bool {
        self.window.0 += bytes as u64;
        self.window.1 += took;
        if self.window.0 < COST_WINDOW {
            return false;
        }
        let (bytes, took) = std::mem::take(&mut self.window);
        let limit = u128::from(self.limit_nanos_per_mib) * u128::from(bytes) / (1 << 20);
        tracing::trace!(
            window_bytes = bytes,
            took_us = took.as_micros() as u64,
            "buffered write window"
        );
        if took.as_nanos() <= limit || self.dear {
            return false;
        }
        tracing::debug!(
            window_bytes = bytes,
            took_ms = took.as_millis() as u64,
            "the page cache costs more than the disk: writing behind"
        );
        self.dear = true;
        true
    }
}

/// What one restore's large files share: the measured cost of the page cache.
#[derive(Default)]
pub struct LargeWrites {
    page_cache: PageCacheCost,
}

/// Whether an error of `sync_file_range` or `posix_fadvise` only says the
/// file system or the file does not take the hint (tmpfs, some FUSE, a
/// pipe): the bytes are written all the same.
fn hint_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | libc::ESPIPE)
    )
}

/// `sync_file_range` over `[from, to)` of `file` with `flags`.
fn sync_range(file: &File, from: u64, to: u64, flags: libc::c_uint) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (
        libc::off64_t::try_from(from),
        libc::off64_t::try_from(to - from),
    ) else {
        return Ok(());
    };
    // SAFETY: a valid open descriptor; sync_file_range does not touch memory.
    if unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) } < 0 {
        let e = io::Error::last_os_error();
        if !hint_refused(&e) {
            return Err(e);
        }
    }
    Ok(())
}

/// Where a large file's writing behind stands: writeback has been started
/// for the bytes before `started`, and those before `dropped` are on disk
/// and out of the page cache.
#[derive(Default)]
struct WriteBehind {
    started: u64,
    dropped: u64,
}

impl WriteBehind {
    /// After the file's bytes up to `written`: once [`WRITE_BEHIND`] more
    /// have been written since writeback was last started, starts it for
    /// them, then waits for the run before and drops it.
    fn after_write(&mut self, file: &File, written: u64) -> io::Result<()> {
        if written - self.started < WRITE_BEHIND {
            return Ok(());
        }
        sync_range(file, self.started, written, libc::SYNC_FILE_RANGE_WRITE)?;
        let previous = self.started;
        self.started = written;
        self.drop_before(file, previous)
    }

    /// At the end of the file (`written` bytes): all of it on disk and out
    /// of the page cache. A write-back error shows here, as an error of the
    /// restore.
    fn finish(&mut self, file: &File, written: u64) -> io::Result<()> {
        sync_range(file, self.started, written, libc::SYNC_FILE_RANGE_WRITE)?;
        self.started = written;
        self.drop_before(file, written)
    }

    /// Waits for the writeback of the bytes from `dropped` to `to`, then
    /// drops them from the page cache.
    fn drop_before(&mut self, file: &File, to: u64) -> io::Result<()> {
        if to <= self.dropped {
            return Ok(());
        }
        let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER;
        sync_range(file, self.dropped, to, wait)?;
        if let (Ok(offset), Ok(len)) = (
            libc::off_t::try_from(self.dropped),
            libc::off_t::try_from(to - self.dropped),
        ) {
            // SAFETY: a valid open descriptor; the advice touches no memory
            // of ours. Only a hint: its result changes nothing written.
            unsafe {
                libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_DONTNEED);
            }
        }
        self.dropped = to;
        Ok(())
    }
}

/// The most [`preallocate`] reserves for one member: PostgreSQL's largest
/// file (a relation segment, `RELSEG_SIZE`; WAL segments are at most as large).
/// The size comes from the member's header, before any data: a corrupt or
/// hostile header claiming terabytes must not reserve them.
const MAX_PREALLOCATION: u64 = 1 << 30;

/// How much to preallocate for a member whose header says `size`.
fn preallocation(size: u64) -> u64 {
    size.min(MAX_PREALLOCATION)
}

/// Allocates a file's blocks up front (ext4 then skips delayed allocation,
/// a seventh of a restore's time in the profile); only a hint.
fn preallocate(file: &File, size: u64) {
    if size == 0 {
        return;
    }
    let Ok(len) = libc::off_t::try_from(size) else {
        return;
    };
    // SAFETY: a valid open file descriptor; posix_fallocate does not touch memory.
    unsafe {
        libc::posix_fallocate(file.as_raw_fd(), 0, len);
    }
}

/// A regular file being restored: created new, its data then written once.
pub struct RestoredFile {
    file: File,
    /// Timed, and written behind once the page cache is dear.
    large: bool,
}

impl RestoredFile {
    /// Creates `path` (which must not exist) for `size` bytes, mode 0600,
    /// and preallocates it.
    pub fn create(path: &Path, size: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        preallocate(&file, preallocation(size));
        Ok(RestoredFile {
            file,
            large: size >= LARGE_MIN && write_behind_setting() != WriteBehindSetting::Never,
        })
    }

    /// The file, for its times and mode.
    pub fn into_file(self) -> File {
        self.file
    }

    /// Writes everything `from` yields into the file, straight from its
    /// buffer; returns the byte count. A large file's writes are timed until
    /// the page cache proves dear; from then on (or from the start, when an
    /// earlier file proved it), the file is written behind.
    pub fn copy_from(
        &mut self,
        from: &mut dyn BufRead,
        writes: &mut LargeWrites,
    ) -> io::Result<u64> {
        if !self.large {
            return Ok(self.write_from(from, 0, |_, _, _| false)?.0);
        }
        let mut total = 0;
        if !writes.page_cache.is_dear() {
            let cost = &mut writes.page_cache;
            let (written, ended) = self.write_from(from, 0, |n, _, took| cost.record(n, took))?;
            if ended {
                return Ok(written);
            }
            total = written;
        }
        self.copy_behind(from, total)
    }

    /// Writes what `from` yields from offset `total` on, until it ends
    /// (`true`) or `stop`, told after each write its length, the offset
    /// reached and how long it took, says so (`false`). Returns the offset
    /// reached.
    fn write_from(
        &self,
        from: &mut dyn BufRead,
        mut total: u64,
        mut stop: impl FnMut(usize, u64, Duration) -> bool,
    ) -> io::Result<(u64, bool)> {
        loop {
            let piece = fill_some(from)?;
            if piece.is_empty() {
                return Ok((total, true));
            }
            let n = piece.len();
            let started = Instant::now();
            self.file.write_all_at(piece, total)?;
            from.consume(n);
            total += n as u64;
            if stop(n, total, started.elapsed()) {
                return Ok((total, false));
            }
        }
    }

    /// Writes the rest of the file from offset `total` on, while a second
    /// thread hands what is written to writeback [`WRITE_BEHIND`] bytes at a
    /// time (the file's first bytes included) and drops each run from the
    /// page cache once it is on disk: starting and waiting for writeback
    /// cost system time, which then overlaps with inflating the next run.
    /// At most two runs wait for that thread, so the page cache the restore
    /// holds stays bounded.
    fn copy_behind(&self, from: &mut dyn BufRead, total: u64) -> io::Result<u64> {
        let file = &self.file;
        let (written_tx, written_rx) = mpsc::sync_channel::<u64>(1);
        std::thread::scope(|scope| {
            let spawned = std::thread::Builder::new()
                .name("write-behind".into())
                .spawn_scoped(scope, move || -> io::Result<()> {
                    let mut behind = WriteBehind::default();
                    let mut last = 0;
                    for written in written_rx {
                        behind.after_write(file, written)?;
                        last = written;
                    }
                    behind.finish(file, last)
                });
            let behind = match spawned {
                Ok(behind) => behind,
                Err(e) => {
                    // Out of threads (a pid or memory limit): the rest of the
                    // file is written the ordinary way.
                    tracing::warn!(error = %e, "no thread to write behind: writing through the page cache");
                    return Ok(self.write_from(from, total, |_, _, _| false)?.0);
                }
            };
            let mut handed = 0;
            // A send fails only when the thread stopped on an error, which
            // its join below returns.
            let copied = self.write_from(from, total, |_, written, _| {
                if written - handed < WRITE_BEHIND {
                    return false;
                }
                handed = written;
                written_tx.send(written).is_err()
            });
            if let Ok((written, _)) = copied {
                let _ = written_tx.send(written);
            }
            drop(written_tx);
            let behind = behind
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("the write-behind thread panicked")));
            let (written, _) = copied?;
            behind.map(|()| written)
        })
    }
}

/// `fill_buf`, retried when interrupted.
fn fill_some(from: &mut dyn BufRead) -> io::Result<&[u8]> {
    // The retry cannot hold the borrow of a failed attempt (the borrow
    // checker's known limit with loops): ask again once it is known to work.
    loop {
        match from.fill_buf() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
            Ok(_) => break,
        }
    }
    from.fill_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4099) as u8).collect()
    }

    impl LargeWrites {
        /// Large writes judged against `limit_nanos_per_mib`, or written
        /// behind from the start.
        fn with_limit(limit_nanos_per_mib: u64, dear: bool) -> Self {
            LargeWrites {
                page_cache: PageCacheCost::with_limit(limit_nanos_per_mib, dear),
            }
        }
    }

    /// How many of `path`'s pages are in the page cache (`mincore`).
    fn resident_pages(path: &Path) -> usize {
        let file = File::open(path).unwrap();
        let len = file.metadata().unwrap().len() as usize;
        if len == 0 {
            return 0;
        }
        let page = 4096;
        // SAFETY: a read-only shared mapping of a file we hold open, of its
        // length, unmapped before returning; mincore writes one byte per page
        // into a vector of that many bytes.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            );
            assert_ne!(map, libc::MAP_FAILED);
            let mut pages = vec![0u8; len.div_ceil(page)];
            assert_eq!(libc::mincore(map, len, pages.as_mut_ptr()), 0);
            libc::munmap(map, len);
            pages.iter().filter(|&&p| p & 1 != 0).count()
        }
    }

    /// Restores `data` as `dir/name` from `from`: the bytes read back and
    /// how many of its pages stayed in the page cache.
    fn restore_from(
        dir: &Path,
        name: &str,
        data: &[u8],
        from: &mut dyn Read,
        writes: &mut LargeWrites,
    ) -> (Vec<u8>, usize) {
        let path = dir.join(name);
        let mut file = RestoredFile::create(&path, data.len() as u64).unwrap();
        let mut from = io::BufReader::with_capacity(64 * 1024, from);
        let n = file.copy_from(&mut from, writes).unwrap();
        assert_eq!(n, data.len() as u64);
        drop(file);
        let resident = resident_pages(&path);
        (std::fs::read(&path).unwrap(), resident)
    }

    fn restore(dir: &Path, name: &str, data: &[u8], writes: &mut LargeWrites) -> (Vec<u8>, usize) {
        restore_from(dir, name, data, &mut &data[..], writes)
    }

    fn writes_behind() -> bool {
        write_behind_setting() != WriteBehindSetting::Never
    }

    #[test]
    fn every_size_reads_back_whole_written_behind_or_left_in_the_page_cache() {
        // The crate's directory is on ext4 in CI, which takes both hints.
        let dir = crate::backup::tests::TempDir::new("restored-file");
        let mut behind = LargeWrites::with_limit(COST_LIMIT_NANOS_PER_MIB, true);
        let mut buffered = LargeWrites::with_limit(u64::MAX, false);
        let mib = 1 << 20;
        for (i, len) in [
            0,
            1,
            4095,
            8192,
            mib - 1,
            mib,
            mib + 1,
            WRITE_BEHIND as usize + 12345,
            3 * WRITE_BEHIND as usize + 8192,
        ]
        .into_iter()
        .enumerate()
        {
            let data = sample(len);
            let pages = len.div_ceil(4096);
            let (back, resident) = restore(dir.path(), &format!("d{i}"), &data, &mut behind);
            assert_eq!(back.len(), data.len(), "length {len}");
            assert!(back == data, "content of {len} bytes");
            if len < LARGE_MIN as usize || !writes_behind() {
                assert_eq!(resident, pages, "{len} bytes stay in the page cache");
            } else {
                assert_eq!(resident, 0, "{len} bytes written behind and dropped");
            }
            let (back, resident) = restore(dir.path(), &format!("b{i}"), &data, &mut buffered);
            assert!(back == data, "content of {len} bytes, buffered");
            assert_eq!(resident, pages, "{len} bytes buffered");
        }
        assert!(!buffered.page_cache.is_dear());
    }

    #[test]
    fn a_dear_page_cache_turns_the_file_being_written_and_later_ones_to_write_behind() {
        let dir = crate::backup::tests::TempDir::new("restored-file");
        // Every window is too dear: the write closing the first one (16
        // MiB) starts writing behind for the rest of the file, from its
        // first byte.
        let mut writes = LargeWrites::with_limit(0, false);
        let len = 2 * COST_WINDOW as usize + 3 * WRITE_BEHIND as usize / 2;
        let data = sample(len);
        let (back, resident) = restore(dir.path(), "s", &data, &mut writes);
        assert!(back == data, "content after the switch");
        if !writes_behind() {
            return;
        }
        assert!(writes.page_cache.is_dear(), "the restore writes behind");
        assert_eq!(resident, 0, "the whole file dropped after the switch");
        // A later large file is written behind from the start, here through
        // reads of 1 000 bytes, which never end on a page boundary.
        let data = sample(WRITE_BEHIND as usize * 2 + 100);
        let (back, resident) =
            restore_from(dir.path(), "t", &data, &mut Trickle(&data), &mut writes);
        assert!(back == data, "content, small reads");
        assert_eq!(resident, 0);
        // Cheap windows never switch: the pages stay.
        let mut cheap = LargeWrites::with_limit(u64::MAX, false);
        let data = sample(len);
        let (back, resident) = restore(dir.path(), "u", &data, &mut cheap);
        assert!(back == data);
        assert!(!cheap.page_cache.is_dear());
        assert_eq!(resident, len.div_ceil(4096));
    }

    #[test]
    fn preallocation_trusts_a_header_only_up_to_a_relation_segment() {
        assert_eq!(preallocation(0), 0);
        assert_eq!(preallocation(8192), 8192);
        assert_eq!(preallocation(1 << 30), 1 << 30);
        assert_eq!(preallocation(8 << 40), 1 << 30);
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = crate::backup::tests::TempDir::new("restored-file");
        let path = dir.path().join("x");
        std::fs::write(&path, b"kept").unwrap();
        assert!(RestoredFile::create(&path, 8 << 20).is_err());
        assert!(RestoredFile::create(&path, 1).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
    }

    #[test]
    fn hints_a_file_does_not_take_are_not_errors() {
        // A pipe takes neither hint (ESPIPE): writing behind must go on.
        let mut fds = [0; 2];
        // SAFETY: pipe fills two descriptors, which the Files then own.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        use std::os::unix::io::FromRawFd;
        // SAFETY: fresh descriptors from pipe, owned once each.
        let (read, write) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
        let mut behind = WriteBehind::default();
        behind.after_write(&write, WRITE_BEHIND).unwrap();
        behind.finish(&write, WRITE_BEHIND + 1).unwrap();
        drop((read, write));
        assert!(hint_refused(&io::Error::from_raw_os_error(libc::ESPIPE)));
        assert!(!hint_refused(&io::Error::from_raw_os_error(libc::EIO)));
    }

    /// A reader handing out at most 1 000 bytes a call, as a tar entry over
    /// small network chunks may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(1000);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
}
