//! Writing the data of one restored regular file.
//!
//! Files of [`DIRECT_MIN`] or more (relation segments, WAL segments: nearly
//! all of a restore's bytes) are written with `O_DIRECT`, past the page cache,
//! in aligned blocks of [`DIRECT_CHUNK`]. A base restore writes the whole
//! database once and nobody reads it back until PostgreSQL starts; through the
//! page cache every byte first costs a fresh page of memory (charged to the
//! pod's memory cgroup under Kubernetes, and on the benchmark VM up to ten
//! times dearer than the disk write itself: `docs/benchmarks.md`, "Base
//! restore and the page cache"), then dirty-page writeback. PostgreSQL syncs
//! the data directory when it starts from a backup, so the data would reach
//! the disk before use either way.
//!
//! Whatever refuses direct I/O falls back to ordinary writes on the same
//! descriptor, never to an error: a file system without `O_DIRECT` (tmpfs,
//! some FUSE) fails the `open`, a device with a larger logical block fails a
//! write with `EINVAL`, and the unaligned tail of a file (PostgreSQL's files
//! are multiples of 8 KiB, others need not be) is written after `O_DIRECT`
//! is cleared. `BARNACLE_DIRECT_IO=0` in the environment turns direct writes
//! off altogether.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::sync::{Mutex, OnceLock, mpsc};

/// Files at least this large are written with `O_DIRECT`.
pub const DIRECT_MIN: u64 = 1 << 20;

/// The size of one direct write (1 MiB: 256 KiB writes took 1.3 times as
/// long with `dd oflag=direct` on the benchmark VM, 4 MiB no less).
pub const DIRECT_CHUNK: usize = 1 << 20;

/// Buffer address, length and file offset alignment of a direct write: the
/// largest logical block size in common use (4Kn disks); 512-byte devices
/// accept it too.
const ALIGN: usize = 4096;

/// Whether direct writes are on (`BARNACLE_DIRECT_IO=0` turns them off).
fn direct_io_enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var_os("BARNACLE_DIRECT_IO").is_none_or(|v| v != "0"))
}

/// Direct writes in flight at once, each from its own thread: with one, the
/// disk of the benchmark VM sat idle between 1 MiB writes (0.9 ms each, 1.1
/// GB/s). Writes inside a file's preallocated size overwrite unwritten
/// extents, which ext4 lets run concurrently.
const WRITERS: usize = 2;

/// A [`DIRECT_CHUNK`]-byte block at an [`ALIGN`]ed address.
struct AlignedBlock {
    storage: Vec<u8>,
    offset: usize,
}

impl AlignedBlock {
    /// A zeroed block, or `None` where the allocator cannot tell the
    /// alignment (`align_offset` may answer "unknown").
    fn new() -> Option<Self> {
        let storage = vec![0; DIRECT_CHUNK + ALIGN];
        let offset = storage.as_ptr().align_offset(ALIGN);
        (offset.checked_add(DIRECT_CHUNK)? <= storage.len())
            .then_some(AlignedBlock { storage, offset })
    }

    fn bytes(&self) -> &[u8] {
        &self.storage[self.offset..self.offset + DIRECT_CHUNK]
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.offset..self.offset + DIRECT_CHUNK]
    }
}

/// The aligned blocks of direct writes, kept from one file to the next and
/// allocated on first use (a restore without large files never pays for
/// them): one per writer and one being filled.
#[derive(Default)]
pub struct DirectBlocks {
    free: Vec<AlignedBlock>,
    allocated: usize,
}

impl DirectBlocks {
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

/// A direct write handed to a writer thread: `len` bytes of `block` at `offset`.
struct WriteJob {
    offset: u64,
    block: AlignedBlock,
    len: usize,
}

type WriteDone = (WriteJob, io::Result<()>);

/// The direct writes sent and not yet answered.
struct InFlight<'a> {
    count: usize,
    done: &'a mpsc::Receiver<WriteDone>,
    /// Writes the device refused (`EINVAL`: alignment), to redo through the
    /// page cache.
    refused: Vec<WriteJob>,
}

impl InFlight<'_> {
    /// Waits for one answer and puts its block back.
    fn wait_one(&mut self, blocks: &mut DirectBlocks) -> io::Result<()> {
        let Ok((job, result)) = self.done.recv() else {
            self.count = 0;
            return Err(io::Error::other("the direct writers stopped"));
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
    fn wait_all(&mut self, blocks: &mut DirectBlocks) -> io::Result<()> {
        let mut first = Ok(());
        while self.count > 0 {
            if let Err(e) = self.wait_one(blocks) {
                first = first.and(Err(e));
            }
        }
        first
    }
}

/// How the direct part of a copy ended.
struct DirectCopy {
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
    direct: bool,
}

impl RestoredFile {
    /// Creates `path` (which must not exist) for `size` bytes, mode 0600,
    /// and preallocates it: the direct writers then overwrite unwritten
    /// extents inside the file's size, which ext4 runs concurrently.
    pub fn create(path: &Path, size: u64) -> io::Result<Self> {
        let restored = Self::open(path, size)?;
        preallocate(&restored.file, preallocation(size));
        Ok(restored)
    }

    fn open(path: &Path, size: u64) -> io::Result<Self> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true).mode(0o600);
        if size >= DIRECT_MIN && direct_io_enabled() {
            let mut direct = options.clone();
            direct.custom_flags(libc::O_DIRECT);
            match direct.open(path) {
                Ok(file) => return Ok(RestoredFile { file, direct: true }),
                // Linux creates the file before it checks O_DIRECT: open what
                // was created, never following a link.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    options = OpenOptions::new();
                    options.write(true).custom_flags(libc::O_NOFOLLOW);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(RestoredFile {
            file: options.open(path)?,
            direct: false,
        })
    }

    /// Whether writes still go past the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// The file, for its times and mode.
    pub fn into_file(self) -> File {
        self.file
    }

    /// Copies everything `from` yields into the file; returns the byte count.
    /// `buf` serves ordinary writes, `blocks` direct ones. Every write is
    /// positional, so ordinary writes carry on wherever direct ones stopped.
    pub fn copy_from(
        &mut self,
        from: &mut dyn Read,
        buf: &mut [u8],
        blocks: &mut DirectBlocks,
    ) -> io::Result<u64> {
        let mut total = 0;
        if self.direct {
            let copy = self.copy_direct(from, blocks)?;
            if !(copy.ended && copy.tail.is_empty() && copy.refused.is_empty()) {
                self.stop_direct()?;
            }
            for job in copy.refused {
                self.file
                    .write_all_at(&job.block.bytes()[..job.len], job.offset)?;
                blocks.free.push(job.block);
            }
            let tail_at = copy.read - copy.tail.len() as u64;
            self.file.write_all_at(&copy.tail, tail_at)?;
            if copy.ended {
                return Ok(copy.read);
            }
            total = copy.read;
        }
        loop {
            let n = match from.read(buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.file.write_all_at(&buf[..n], total)?;
            total += n as u64;
        }
    }

    /// The direct part of [`Self::copy_from`]: blocks are filled here and
    /// written at their offsets by [`WRITERS`] threads.
    fn copy_direct(
        &mut self,
        from: &mut dyn Read,
        blocks: &mut DirectBlocks,
    ) -> io::Result<DirectCopy> {
        let file = &self.file;
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
            let filled = fill_and_send(from, blocks, &job_tx, &mut in_flight);
            // The writers end once the channel is closed and drained.
            drop(job_tx);
            let waited = in_flight.wait_all(blocks);
            let copy = filled?;
            waited?;
            Ok(DirectCopy {
                refused: in_flight.refused,
                ..copy
            })
        })
    }

    /// Clears `O_DIRECT` on the descriptor: later writes are ordinary ones.
    fn stop_direct(&mut self) -> io::Result<()> {
        if !self.direct {
            return Ok(());
        }
        let fd = self.file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this File owns; F_GETFL/F_SETFL take
        // and return plain integers.
        let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
        if flags < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        if unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
            return Err(io::Error::last_os_error());
        }
        self.direct = false;
        Ok(())
    }
}

/// Fills aligned blocks from `from` and sends their aligned bytes to the
/// writers; the refused writes are left in `in_flight`.
fn fill_and_send(
    from: &mut dyn Read,
    blocks: &mut DirectBlocks,
    jobs: &mpsc::SyncSender<WriteJob>,
    in_flight: &mut InFlight<'_>,
) -> io::Result<DirectCopy> {
    let copy = |read, ended, tail| DirectCopy {
        read,
        ended,
        tail,
        refused: Vec::new(),
    };
    let mut offset = 0u64;
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
                .map_err(|_| io::Error::other("the direct writers stopped"))?;
            in_flight.count += 1;
        } else {
            blocks.free.push(block);
        }
        offset += n as u64;
        if n < DIRECT_CHUNK {
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

    fn restore(dir: &Path, name: &str, data: &[u8]) -> (Vec<u8>, bool) {
        let path = dir.join(name);
        let mut file = RestoredFile::create(&path, data.len() as u64).unwrap();
        let direct = file.is_direct();
        let mut buf = vec![0; 64 * 1024];
        let n = file
            .copy_from(&mut &data[..], &mut buf, &mut DirectBlocks::default())
            .unwrap();
        assert_eq!(n, data.len() as u64);
        drop(file);
        (std::fs::read(&path).unwrap(), direct)
    }

    #[test]
    fn every_size_reads_back_whole_direct_or_not() {
        // The crate's directory is on a real file system in CI (ext4):
        // large files there are written directly; under tmpfs the fallback
        // is taken and the data must still be right.
        let dir = crate::backup::tests::TempDir::new("restored-file");
        for (i, len) in [
            0,
            1,
            4095,
            8192,
            (1 << 20) - 1,
            1 << 20,
            (1 << 20) + 1,
            3 * DIRECT_CHUNK + 8192,
            3 * DIRECT_CHUNK + 12345,
        ]
        .into_iter()
        .enumerate()
        {
            let data = sample(len);
            let (back, direct) = restore(dir.path(), &format!("f{i}"), &data);
            assert_eq!(back.len(), data.len(), "length {len}");
            assert!(back == data, "content of {len} bytes");
            if len < DIRECT_MIN as usize {
                assert!(!direct, "{len} bytes must not go direct");
            } else if direct_io_enabled() && supports_direct(dir.path()) {
                assert!(direct, "{len} bytes must go direct");
            }
        }
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
    fn clearing_direct_mid_file_keeps_writing_in_place() {
        let dir = crate::backup::tests::TempDir::new("restored-file");
        let path = dir.path().join("y");
        // Opened without preallocation: the file holds only what is written.
        let mut file = RestoredFile::open(&path, 4 << 20).unwrap();
        let mut block = AlignedBlock::new().unwrap();
        let first = sample(2 * ALIGN);
        block.bytes_mut()[..first.len()].copy_from_slice(&first);
        file.file
            .write_all_at(&block.bytes()[..first.len()], 0)
            .unwrap();
        file.stop_direct().unwrap();
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
        let mut blocks = DirectBlocks::default();
        for (i, len) in [5 * DIRECT_CHUNK + 100, 2 * DIRECT_CHUNK]
            .into_iter()
            .enumerate()
        {
            let data = sample(len);
            let path = dir.path().join(format!("t{i}"));
            let mut file = RestoredFile::create(&path, len as u64).unwrap();
            let mut buf = vec![0; 4096];
            let n = file
                .copy_from(&mut Trickle(&data), &mut buf, &mut blocks)
                .unwrap();
            assert_eq!(n, len as u64);
            drop(file);
            assert!(
                std::fs::read(&path).unwrap() == data,
                "content of {len} bytes"
            );
        }
        assert!(
            blocks.allocated <= WRITERS + 1,
            "{} blocks",
            blocks.allocated
        );
    }
}
