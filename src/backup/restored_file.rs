//! Writing the data of one restored regular file.
//!
//! Files of [`LARGE_MIN`] or more (relation segments, WAL segments: nearly
//! all of a restore's bytes) go through the page cache or, with `O_DIRECT`,
//! past it. A base restore writes the whole database once and nobody reads
//! it back until PostgreSQL starts, which syncs the data directory: what
//! matters is what a page of page cache costs against a direct write. That
//! depends on the machine's state, so the restore measures it on its own
//! writes ([`PageCacheCost`]): large files start with ordinary writes, each
//! timed, and as soon as one window of [`COST_WINDOW`] bytes has cost more
//! than [`COST_LIMIT_NANOS_PER_MIB`], the file being written (from its next
//! aligned offset) and every later one go direct: aligned blocks of
//! [`BLOCK`] written at their offsets by [`WRITERS`] threads. On the
//! benchmark VM a buffered MiB took about 0.45 ms into memory the guest had
//! used recently and 3 to 4 ms into memory the host had taken back (free
//! page reporting), against 0.75 to 1 ms for a direct one
//! (`docs/benchmarks.md`, "Base restore: page cache or direct, measured").
//! Under Kubernetes the page cache is charged to the pod's memory cgroup:
//! once its dirty pages are throttled, buffered writes slow down past the
//! limit and the restore goes direct.
//!
//! Whatever refuses direct I/O falls back to ordinary writes on the same
//! descriptor, never to an error: a file system without `O_DIRECT` (tmpfs,
//! some FUSE) fails the `open` or the `fcntl`, a device with a larger
//! logical block fails a write with `EINVAL`, and the unaligned tail of a
//! file (PostgreSQL's files are multiples of 8 KiB, others need not be) is
//! written after `O_DIRECT` is cleared. `BARNACLE_DIRECT_IO=0` writes every
//! file through the page cache, `BARNACLE_DIRECT_IO=1` every large file
//! direct from the start.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

/// Files at least this large are timed through the page cache, then direct.
const LARGE_MIN: u64 = 1 << 20;

/// The size of one block write (1 MiB: 256 KiB direct writes took 1.3 times
/// as long with `dd oflag=direct` on the benchmark VM, 4 MiB no less).
const BLOCK: usize = 1 << 20;

/// Buffer address, length and file offset alignment of a direct write: the
/// largest logical block size in common use (4Kn disks); 512-byte devices
/// accept it too.
const ALIGN: usize = 4096;

/// The bytes of buffered writes over which their cost is judged.
const COST_WINDOW: u64 = 16 << 20;

/// What a MiB of buffered writes may cost before the restore goes direct:
/// about what a direct write of a MiB takes on the benchmark VM's disk.
const COST_LIMIT_NANOS_PER_MIB: u64 = 1_000_000;

/// How large files are written, from `BARNACLE_DIRECT_IO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DirectIo {
    /// `0`: always through the page cache.
    Never,
    /// `1`: always direct.
    Always,
    /// Unset (or anything else): measured, see the module docs.
    Measured,
}

fn direct_io_setting() -> DirectIo {
    static SETTING: OnceLock<DirectIo> = OnceLock::new();
    *SETTING.get_or_init(|| match std::env::var_os("BARNACLE_DIRECT_IO").as_deref() {
        Some(v) if v == "0" => DirectIo::Never,
        Some(v) if v == "1" => DirectIo::Always,
        _ => DirectIo::Measured,
    })
}

/// Direct writes in flight at once, each from its own thread: with one, the
/// disk of the benchmark VM sat idle between 1 MiB writes (0.9 ms each, 1.1
/// GB/s). Writes inside a file's preallocated size overwrite unwritten
/// extents, which ext4 lets run concurrently.
const WRITERS: usize = 2;

/// The cost of buffered writes, measured window by window over one restore,
/// and whether it has gone direct.
struct PageCacheCost {
    /// Bytes and time of the buffered writes of the current window.
    window: (u64, Duration),
    /// Set once a window cost too much (or from the start under
    /// `BARNACLE_DIRECT_IO=1`): large files go direct from then on.
    dear: bool,
    limit_nanos_per_mib: u64,
}

impl Default for PageCacheCost {
    fn default() -> Self {
        let direct = direct_io_setting() == DirectIo::Always;
        PageCacheCost::with_limit(COST_LIMIT_NANOS_PER_MIB, direct)
    }
}

impl PageCacheCost {
    fn with_limit(limit_nanos_per_mib: u64, direct: bool) -> Self {
        PageCacheCost {
            window: (0, Duration::ZERO),
            dear: direct,
            limit_nanos_per_mib,
        }
    }

    /// Whether large files now go direct.
    fn is_direct(&self) -> bool {
        self.dear
    }

    /// Counts one buffered write of `bytes` that took `took`; `true` when it
    /// closes a window that cost too much (from then on, direct).
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
            "buffered writes cost more than direct ones: restoring with O_DIRECT"
        );
        self.dear = true;
        true
    }
}

/// Turns `O_DIRECT` on or off for `file`'s open file description.
fn set_direct(file: &File, on: bool) -> io::Result<()> {
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` owns; F_GETFL/F_SETFL take and
    // return plain integers.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    let wanted = if on {
        flags | libc::O_DIRECT
    } else {
        flags & !libc::O_DIRECT
    };
    // SAFETY: as above.
    if wanted != flags && unsafe { libc::fcntl(fd, libc::F_SETFL, wanted) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether `O_DIRECT` is on for `file`.
fn is_direct(file: &File) -> bool {
    // SAFETY: as in `set_direct`.
    let flags = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETFL) };
    flags >= 0 && flags & libc::O_DIRECT != 0
}

/// A [`BLOCK`]-byte block at an [`ALIGN`]ed address.
struct AlignedBlock {
    storage: Vec<u8>,
    offset: usize,
}

impl AlignedBlock {
    /// A zeroed block, or `None` where the allocator cannot tell the
    /// alignment (`align_offset` may answer "unknown").
    fn new() -> Option<Self> {
        let storage = vec![0; BLOCK + ALIGN];
        let offset = storage.as_ptr().align_offset(ALIGN);
        (offset.checked_add(BLOCK)? <= storage.len()).then_some(AlignedBlock { storage, offset })
    }

    fn bytes(&self) -> &[u8] {
        &self.storage[self.offset..self.offset + BLOCK]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.offset..self.offset + BLOCK]
    }
}

/// The aligned blocks, kept from one file to the next and allocated on
/// first use (a restore without large files never pays for them): one per
/// writer and one being filled.
#[derive(Default)]
struct BlockPool {
    free: Vec<AlignedBlock>,
    allocated: usize,
}

impl BlockPool {
    fn take(&mut self) -> Option<AlignedBlock> {
        if let Some(block) = self.free.pop() {
            return Some(block);
        }
        if self.allocated > WRITERS {
            return None;
        }
        let block = AlignedBlock::new()?;
        self.allocated += 1;
        Some(block)
    }
}

/// What one restore's large files share: the blocks and the measured cost
/// of the page cache.
#[derive(Default)]
pub struct LargeWrites {
    blocks: BlockPool,
    page_cache: PageCacheCost,
}

/// A block write handed to a writer thread: `len` bytes of `block` at `offset`.
struct WriteJob {
    offset: u64,
    block: AlignedBlock,
    len: usize,
}

type WriteDone = (WriteJob, io::Result<()>);

/// The block writes sent and not yet answered.
struct InFlight<'a> {
    count: usize,
    done: &'a mpsc::Receiver<WriteDone>,
    /// Writes the device refused (`EINVAL`: alignment), to redo through the
    /// page cache.
    refused: Vec<WriteJob>,
}

impl InFlight<'_> {
    /// Waits for one answer and puts its block back.
    fn wait_one(&mut self, blocks: &mut BlockPool) -> io::Result<()> {
        let Ok((job, result)) = self.done.recv() else {
            self.count = 0;
            return Err(io::Error::other("the block writers stopped"));
        };
        self.count -= 1;
        match result {
            Ok(()) => {
                blocks.free.push(job.block);
                Ok(())
            }
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                self.refused.push(job);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Waits for every answer; the first error, if any.
    fn wait_all(&mut self, blocks: &mut BlockPool) -> io::Result<()> {
        let mut first = Ok(());
        while self.count > 0 {
            if let Err(e) = self.wait_one(blocks) {
                first = first.and(Err(e));
            }
        }
        first
    }
}

/// How the block part of a copy ended.
struct BlockCopy {
    /// Bytes read from the source (written, or in `tail`).
    read: u64,
    /// Whether the source ended (otherwise no aligned block could be had).
    ended: bool,
    /// The unaligned end of the data, not written yet.
    tail: Vec<u8>,
    refused: Vec<WriteJob>,
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
    /// Written in blocks by the writer threads.
    large: bool,
}

impl RestoredFile {
    /// Creates `path` (which must not exist) for `size` bytes, mode 0600,
    /// and preallocates it: block writes then overwrite unwritten extents
    /// inside the file's size, which ext4 runs concurrently when direct.
    /// A large file opens with `O_DIRECT` once `writes` has gone direct.
    pub fn create(path: &Path, size: u64, writes: &LargeWrites) -> io::Result<Self> {
        let restored = Self::open(path, size, writes)?;
        preallocate(&restored.file, preallocation(size));
        Ok(restored)
    }

    fn open(path: &Path, size: u64, writes: &LargeWrites) -> io::Result<Self> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(0o600);
        let large = size >= LARGE_MIN && direct_io_setting() != DirectIo::Never;
        if large && writes.page_cache.is_direct() {
            let mut direct = options.clone();
            direct.custom_flags(libc::O_DIRECT);
            match direct.open(path) {
                Ok(file) => return Ok(RestoredFile { file, large }),
                // Linux creates the file before it checks O_DIRECT: open what
                // was created, never following a link.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    options = OpenOptions::new();
                    options.write(true).custom_flags(libc::O_NOFOLLOW);
                    return Ok(RestoredFile {
                        file: options.open(path)?,
                        large: false,
                    });
                }
                Err(e) => return Err(e),
            }
        }
        Ok(RestoredFile {
            file: options.open(path)?,
            large,
        })
    }

    /// Whether writes now go past the page cache.
    pub fn is_direct(&self) -> bool {
        is_direct(&self.file)
    }

    /// The file, for its times and mode.
    pub fn into_file(self) -> File {
        self.file
    }

    /// Copies everything `from` yields into the file; returns the byte count.
    /// `buf` (at least [`ALIGN`] bytes) serves ordinary writes, `writes`
    /// direct ones. A large file opened buffered is written the ordinary way,
    /// each write timed, until the page cache proves dear; then, from the next
    /// aligned offset, direct. Every write is positional, so ordinary writes
    /// carry on wherever direct ones stopped.
    pub fn copy_from(
        &mut self,
        from: &mut dyn Read,
        buf: &mut [u8],
        writes: &mut LargeWrites,
    ) -> io::Result<u64> {
        let mut total = 0;
        if self.large && !is_direct(&self.file) {
            let (written, ended) =
                self.copy_ordinary(from, buf, 0, Some(&mut writes.page_cache))?;
            if ended {
                return Ok(written);
            }
            total = written;
            // Where the file system refuses O_DIRECT, the rest is ordinary.
            let _ = set_direct(&self.file, true);
        }
        if self.large && is_direct(&self.file) {
            let copy = self.copy_blocks(from, writes, total)?;
            if !(copy.ended && copy.tail.is_empty() && copy.refused.is_empty()) {
                set_direct(&self.file, false)?;
            }
            for job in copy.refused {
                self.file
                    .write_all_at(&job.block.bytes()[..job.len], job.offset)?;
                writes.blocks.free.push(job.block);
            }
            let tail_at = copy.read - copy.tail.len() as u64;
            self.file.write_all_at(&copy.tail, tail_at)?;
            if copy.ended {
                return Ok(copy.read);
            }
            total = copy.read;
        }
        Ok(self.copy_ordinary(from, buf, total, None)?.0)
    }

    /// Ordinary writes from offset `total` on, until `from` ends (`true`)
    /// or, when `cost` times them, a window proves the page cache dear
    /// (`false`; the bytes written then end at an [`ALIGN`]ed offset, ready
    /// for direct writes). Returns the offset reached.
    fn copy_ordinary(
        &self,
        from: &mut dyn Read,
        buf: &mut [u8],
        mut total: u64,
        mut cost: Option<&mut PageCacheCost>,
    ) -> io::Result<(u64, bool)> {
        let mut dear = false;
        loop {
            let unaligned = (total % ALIGN as u64) as usize;
            let want = match (dear, unaligned) {
                (true, 0) => return Ok((total, false)),
                (true, _) => (ALIGN - unaligned).min(buf.len()),
                (false, _) => buf.len(),
            };
            let n = read_some(from, &mut buf[..want])?;
            if n == 0 {
                return Ok((total, true));
            }
            let started = cost.is_some().then(Instant::now);
            self.file.write_all_at(&buf[..n], total)?;
            total += n as u64;
            if let (Some(cost), Some(started)) = (cost.as_deref_mut(), started) {
                dear |= cost.record(n, started.elapsed());
            }
        }
    }

    /// The block part of [`Self::copy_from`]: blocks are filled here and
    /// written at their offsets by [`WRITERS`] threads.
    fn copy_blocks(
        &mut self,
        from: &mut dyn Read,
        writes: &mut LargeWrites,
        start: u64,
    ) -> io::Result<BlockCopy> {
        let file = &self.file;
        let blocks = &mut writes.blocks;
        let (job_tx, job_rx) = mpsc::sync_channel::<WriteJob>(0);
        let job_rx = Mutex::new(job_rx);
        let (done_tx, done_rx) = mpsc::channel::<WriteDone>();
        std::thread::scope(|scope| {
            for _ in 0..WRITERS {
                let (job_rx, done_tx) = (&job_rx, done_tx.clone());
                scope.spawn(move || {
                    loop {
                        let job = match job_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let result = file.write_all_at(&job.block.bytes()[..job.len], job.offset);
                        if done_tx.send((job, result)).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(done_tx);
            let mut in_flight = InFlight {
                count: 0,
                done: &done_rx,
                refused: Vec::new(),
            };
            let filled = fill_and_send(from, blocks, &job_tx, &mut in_flight, start);
            // The writers end once the channel is closed and drained.
            drop(job_tx);
            let waited = in_flight.wait_all(blocks);
            let copy = filled?;
            waited?;
            Ok(BlockCopy {
                refused: in_flight.refused,
                ..copy
            })
        })
    }
}

/// One `read`, retried when interrupted.
fn read_some(from: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match from.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Fills aligned blocks from `from` and sends their aligned bytes to the
/// writers, the first at `start` (aligned); the refused writes are left in
/// `in_flight`.
fn fill_and_send(
    from: &mut dyn Read,
    blocks: &mut BlockPool,
    jobs: &mpsc::SyncSender<WriteJob>,
    in_flight: &mut InFlight<'_>,
    start: u64,
) -> io::Result<BlockCopy> {
    let copy = |read, ended, tail| BlockCopy {
        read,
        ended,
        tail,
        refused: Vec::new(),
    };
    let mut offset = start;
    loop {
        let mut block = loop {
            if let Some(block) = blocks.take() {
                break block;
            }
            if in_flight.count == 0 {
                return Ok(copy(offset, false, Vec::new()));
            }
            in_flight.wait_one(blocks)?;
        };
        let n = crate::codec::fill(from, block.bytes_mut())?;
        // Only the last fill can be short.
        let whole = n - n % ALIGN;
        let tail = block.bytes()[whole..n].to_vec();
        if whole > 0 {
            let job = WriteJob {
                offset,
                block,
                len: whole,
            };
            jobs.send(job)
                .map_err(|_| io::Error::other("the block writers stopped"))?;
            in_flight.count += 1;
        } else {
            blocks.free.push(block);
        }
        offset += n as u64;
        if n < BLOCK {
            return Ok(copy(offset, true, tail));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4099) as u8).collect()
    }

    /// Whether `dir`'s file system takes `O_DIRECT` opens.
    fn supports_direct(dir: &Path) -> bool {
        let probe = dir.join("probe");
        let ok = OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_DIRECT)
            .open(&probe)
            .is_ok();
        let _ = std::fs::remove_file(&probe);
        ok
    }

    impl LargeWrites {
        /// Large writes judged against `limit_nanos_per_mib`, or direct
        /// from the start.
        fn with_limit(limit_nanos_per_mib: u64, direct: bool) -> Self {
            LargeWrites {
                blocks: BlockPool::default(),
                page_cache: PageCacheCost::with_limit(limit_nanos_per_mib, direct),
            }
        }
    }

    /// Restores `data` as `dir/name`: the bytes read back, and whether the
    /// file was direct when opened and when its data was written.
    fn restore(
        dir: &Path,
        name: &str,
        data: &[u8],
        writes: &mut LargeWrites,
    ) -> (Vec<u8>, bool, bool) {
        let path = dir.join(name);
        let mut file = RestoredFile::create(&path, data.len() as u64, writes).unwrap();
        let opened_direct = file.is_direct();
        let mut buf = vec![0; 64 * 1024];
        let n = file.copy_from(&mut &data[..], &mut buf, writes).unwrap();
        assert_eq!(n, data.len() as u64);
        let ended_direct = file.is_direct();
        drop(file);
        (std::fs::read(&path).unwrap(), opened_direct, ended_direct)
    }

    fn blocks_on() -> bool {
        direct_io_setting() != DirectIo::Never
    }

    #[test]
    fn every_size_reads_back_whole_direct_buffered_or_switched() {
        // The crate's directory is on a real file system in CI (ext4):
        // large files there can be written directly; under tmpfs the
        // fallback is taken and the data must still be right.
        let dir = crate::backup::tests::TempDir::new("restored-file");
        let mut direct = LargeWrites::with_limit(COST_LIMIT_NANOS_PER_MIB, true);
        let mut buffered = LargeWrites::with_limit(u64::MAX, false);
        for (i, len) in [
            0,
            1,
            4095,
            8192,
            (1 << 20) - 1,
            1 << 20,
            (1 << 20) + 1,
            3 * BLOCK + 8192,
            3 * BLOCK + 12345,
        ]
        .into_iter()
        .enumerate()
        {
            let data = sample(len);
            let (back, opened_direct, _) =
                restore(dir.path(), &format!("d{i}"), &data, &mut direct);
            assert_eq!(back.len(), data.len(), "length {len}");
            assert!(back == data, "content of {len} bytes");
            if len < LARGE_MIN as usize {
                assert!(!opened_direct, "{len} bytes must not go direct");
            } else if blocks_on() && supports_direct(dir.path()) {
                assert!(opened_direct, "{len} bytes must go direct");
            }
            let (back, opened_direct, ended_direct) =
                restore(dir.path(), &format!("b{i}"), &data, &mut buffered);
            assert!(back == data, "content of {len} bytes, buffered");
            assert!(!opened_direct && !ended_direct, "{len} bytes buffered");
        }
        assert!(!buffered.page_cache.is_direct());
    }

    #[test]
    fn a_dear_page_cache_turns_the_file_being_written_and_later_ones_direct() {
        let dir = crate::backup::tests::TempDir::new("restored-file");
        // Every window is too dear: the write closing the first one (16
        // MiB) turns O_DIRECT on for the rest of the file.
        let mut writes = LargeWrites::with_limit(0, false);
        let len = 2 * COST_WINDOW as usize + 3 * BLOCK;
        let data = sample(len);
        let (back, opened_direct, ended_direct) = restore(dir.path(), "s", &data, &mut writes);
        assert!(back == data, "content after the switch");
        assert!(!opened_direct, "the first file opens buffered");
        if !blocks_on() {
            return;
        }
        assert!(writes.page_cache.is_direct(), "the restore went direct");
        let direct_here = supports_direct(dir.path());
        assert_eq!(ended_direct, direct_here, "the file went direct mid-way");
        // A later large file opens direct; its unaligned tail clears it.
        let data = sample(3 * BLOCK + 100);
        let (back, opened_direct, ended_direct) = restore(dir.path(), "t", &data, &mut writes);
        assert!(back == data);
        assert_eq!(opened_direct, direct_here);
        assert!(!ended_direct, "O_DIRECT is cleared for the tail");
        // Reads of 1 000 bytes: the window closes at an unaligned offset,
        // and ordinary writes carry on to the next aligned one first.
        let mut writes = LargeWrites::with_limit(0, false);
        let data = sample(COST_WINDOW as usize + 5 * BLOCK);
        let path = dir.path().join("v");
        let mut file = RestoredFile::create(&path, data.len() as u64, &writes).unwrap();
        let mut buf = vec![0; 64 * 1024];
        let n = file
            .copy_from(&mut Trickle(&data), &mut buf, &mut writes)
            .unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(file.is_direct(), direct_here);
        drop(file);
        assert!(
            std::fs::read(&path).unwrap() == data,
            "content, unaligned switch"
        );
        // Cheap windows never switch.
        let mut cheap = LargeWrites::with_limit(u64::MAX, false);
        let data = sample(len);
        let (back, _, ended_direct) = restore(dir.path(), "u", &data, &mut cheap);
        assert!(back == data);
        assert!(!ended_direct && !cheap.page_cache.is_direct());
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
        let writes = LargeWrites::with_limit(0, true);
        assert!(RestoredFile::create(&path, 8 << 20, &writes).is_err());
        assert!(RestoredFile::create(&path, 1, &writes).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
    }

    #[test]
    fn clearing_direct_mid_file_keeps_writing_in_place() {
        let dir = crate::backup::tests::TempDir::new("restored-file");
        let path = dir.path().join("y");
        // Opened without preallocation: the file holds only what is written.
        let writes = LargeWrites::with_limit(0, true);
        let file = RestoredFile::open(&path, 4 << 20, &writes).unwrap();
        let mut block = AlignedBlock::new().unwrap();
        let first = sample(2 * ALIGN);
        block.bytes_mut()[..first.len()].copy_from_slice(&first);
        file.file
            .write_all_at(&block.bytes()[..first.len()], 0)
            .unwrap();
        set_direct(&file.file, false).unwrap();
        assert!(!file.is_direct());
        file.file.write_all_at(b"tail", first.len() as u64).unwrap();
        drop(file);
        let mut expected = first;
        expected.extend_from_slice(b"tail");
        assert_eq!(std::fs::read(&path).unwrap(), expected);
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

    #[test]
    fn short_reads_fill_whole_blocks_and_blocks_are_reused() {
        let dir = crate::backup::tests::TempDir::new("restored-file");
        let mut writes = LargeWrites::with_limit(0, true);
        for (i, len) in [5 * BLOCK + 100, 2 * BLOCK].into_iter().enumerate() {
            let data = sample(len);
            let path = dir.path().join(format!("t{i}"));
            let mut file = RestoredFile::create(&path, len as u64, &writes).unwrap();
            let mut buf = vec![0; 4096];
            let n = file
                .copy_from(&mut Trickle(&data), &mut buf, &mut writes)
                .unwrap();
            assert_eq!(n, len as u64);
            drop(file);
            assert!(
                std::fs::read(&path).unwrap() == data,
                "content of {len} bytes"
            );
        }
        assert!(
            writes.blocks.allocated <= WRITERS + 1,
            "{} blocks",
            writes.blocks.allocated
        );
    }
}
