//! A streaming, parallel, single-member gzip writer for tar parts.
//!
//! Input is cut into blocks of `block_size` bytes. Each full block is handed
//! to a pool of worker threads, which deflate it as
//! [`parallel_gzip::deflate_block`] does (primed with the 32 KiB of input
//! before it, sync-flushed), each with one zlib state reused block after
//! block, and compute its CRC-32. The input blocks come back with the result
//! and are filled again, so a backup allocates a handful of them, not one per
//! MiB (see [`crate::memory`]). The caller's thread writes the
//! finished blocks to the inner writer strictly in order and combines their
//! CRCs; `finish` compresses the remainder as the stream's last block and
//! writes the trailer. The result is ONE gzip member, as Barman's streaming
//! readers (`tarfile` in `r|gz` mode) require.
//!
//! Memory is bounded: at most `2 × threads` blocks are in flight (dispatched
//! and not yet written); a write that would exceed that waits for the oldest.
//! The output bytes depend only on the level and the block size, never on the
//! number of threads.
//!
//! The header is the one Python's `tarfile` writes in `w|gz` mode:
//! `1f 8b 08 08 <mtime> 02 ff 00` (FNAME set, empty name, XFL 2, OS 255).

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::codec::parallel_gzip::{Deflater, WINDOW, trailer};

/// The gzip header Python's `tarfile` writes for `w|gz` streams.
pub fn tarfile_gzip_header(mtime: u32) -> [u8; 11] {
    let t = mtime.to_le_bytes();
    [
        0x1f, 0x8b, 0x08, 0x08, t[0], t[1], t[2], t[3], 0x02, 0xff, 0x00,
    ]
}

struct Job {
    seq: u64,
    dict: Vec<u8>,
    data: Vec<u8>,
    last: bool,
}

struct Done {
    seq: u64,
    held: usize,
    result: io::Result<(Vec<u8>, crc32fast::Hasher)>,
    /// The job's input block, to be filled again.
    spare: Vec<u8>,
}

fn run_job(deflater: &mut Deflater, job: Job) -> Done {
    Done {
        seq: job.seq,
        held: job.data.len() + job.dict.len(),
        result: deflater.block(&job.dict, &job.data, job.last),
        spare: job.data,
    }
}

struct Pool {
    jobs: Option<Sender<Job>>,
    results: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize, level: u32) -> io::Result<Pool> {
        let (job_tx, job_rx) = mpsc::channel::<Job>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut workers = Vec::with_capacity(threads);
        for i in 0..threads {
            let job_rx = Arc::clone(&job_rx);
            let done_tx = done_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("gzip-{i}"))
                .spawn(move || {
                    let mut deflater = Deflater::new(level);
                    loop {
                        let job = match job_rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        if done_tx.send(run_job(&mut deflater, job)).is_err() {
                            return;
                        }
                    }
                })?;
            workers.push(handle);
        }
        Ok(Pool {
            jobs: Some(job_tx),
            results: done_rx,
            workers,
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Closing the job channel ends every worker after its current block.
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// See the module documentation.
pub struct ParallelGzipWriter<W: Write> {
    inner: W,
    block_size: usize,
    buf: Vec<u8>,
    /// Input blocks back from the workers, to be filled again.
    spares: Vec<Vec<u8>>,
    /// The caller's thread's deflater, when there is no pool.
    local: Option<Box<Deflater>>,
    dict: Vec<u8>,
    crc: crc32fast::Hasher,
    total_in: u64,
    written: u64,
    next_seq: u64,
    next_write: u64,
    pending: BTreeMap<u64, (Vec<u8>, crc32fast::Hasher)>,
    pool: Option<Pool>,
    max_in_flight: u64,
    held: usize,
    peak_held: usize,
    peak_in_flight: u64,
}

impl<W: Write> ParallelGzipWriter<W> {
    /// Starts a member on `inner` (the header is written at once).
    /// `threads` ≤ 1 compresses on the caller's thread.
    pub fn new(
        mut inner: W,
        level: u32,
        threads: usize,
        block_size: usize,
        mtime: u32,
    ) -> io::Result<Self> {
        let level = level.clamp(1, 9);
        let block_size = block_size.max(WINDOW);
        let header = tarfile_gzip_header(mtime);
        inner.write_all(&header)?;
        let (pool, local) = if threads > 1 {
            (Some(Pool::new(threads, level)?), None)
        } else {
            (None, Some(Box::new(Deflater::new(level))))
        };
        Ok(ParallelGzipWriter {
            inner,
            block_size,
            buf: Vec::with_capacity(block_size),
            spares: Vec::new(),
            local,
            dict: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            written: header.len() as u64,
            next_seq: 0,
            next_write: 0,
            pending: BTreeMap::new(),
            pool,
            max_in_flight: 2 * threads.max(1) as u64,
            held: 0,
            peak_held: 0,
            peak_in_flight: 0,
        })
    }

    /// Compressed bytes written to the inner writer so far (header included).
    /// Blocks still being compressed are not counted yet.
    pub fn compressed_len(&self) -> u64 {
        self.written
    }

    /// Uncompressed bytes accepted so far.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    /// The most input plus pending output this writer ever held in memory
    /// for blocks in flight, beyond the block being filled (debug counter).
    pub fn peak_held_bytes(&self) -> usize {
        self.peak_held
    }

    /// The most blocks ever in flight at once (at most `2 × threads`).
    pub fn peak_in_flight(&self) -> u64 {
        self.peak_in_flight
    }

    /// The inner writer.
    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Ends the member: compresses the rest, writes the trailer, stops the
    /// workers and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.dispatch(true)?;
        while self.next_write < self.next_seq {
            self.wait_one()?;
        }
        let t = trailer(self.crc.clone().finalize(), self.total_in);
        self.inner.write_all(&t)?;
        self.written += t.len() as u64;
        self.pool = None;
        Ok(self.inner)
    }

    /// Hands the current block to a worker (or compresses it here).
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let fresh = match self.spares.pop() {
            Some(mut spare) => {
                spare.clear();
                spare
            }
            None => Vec::with_capacity(self.block_size),
        };
        let data = std::mem::replace(&mut self.buf, fresh);
        // The next block's dictionary: the last 32 KiB of input so far (the
        // end of this block's own dictionary when the block is shorter).
        let from_dict = WINDOW.saturating_sub(data.len()).min(self.dict.len());
        let mut next_dict = self.dict[self.dict.len() - from_dict..].to_vec();
        next_dict.extend_from_slice(&data[data.len().saturating_sub(WINDOW)..]);
        let dict = std::mem::replace(&mut self.dict, next_dict);
        let job = Job {
            seq: self.next_seq,
            dict,
            data,
            last,
        };
        self.next_seq += 1;
        if let Some(deflater) = self.local.as_mut() {
            let done = run_job(deflater, job);
            let (out, crc) = done.result?;
            self.spares.push(done.spare);
            self.next_write += 1;
            return self.emit(&out, &crc);
        }
        while self.next_seq - self.next_write > self.max_in_flight {
            self.wait_one()?;
        }
        self.note_held(job.data.len() + job.dict.len());
        self.pool
            .as_ref()
            .and_then(|pool| pool.jobs.as_ref())
            .ok_or_else(|| io::Error::other("gzip workers stopped"))?
            .send(job)
            .map_err(|_| io::Error::other("gzip workers stopped"))?;
        self.peak_in_flight = self.peak_in_flight.max(self.next_seq - self.next_write);
        self.drain_ready()
    }

    fn note_held(&mut self, n: usize) {
        self.held += n;
        self.peak_held = self.peak_held.max(self.held);
    }

    fn emit(&mut self, out: &[u8], crc: &crc32fast::Hasher) -> io::Result<()> {
        self.inner.write_all(out)?;
        self.written += out.len() as u64;
        self.crc.combine(crc);
        Ok(())
    }

    /// Accepts one finished block and writes every block now in order.
    fn accept(&mut self, done: Done) -> io::Result<()> {
        let (out, crc) = done.result?;
        self.spares.push(done.spare);
        self.held -= done.held;
        self.note_held(out.len());
        self.pending.insert(done.seq, (out, crc));
        while let Some((out, crc)) = self.pending.remove(&self.next_write) {
            self.emit(&out, &crc)?;
            self.held -= out.len();
            self.next_write += 1;
        }
        Ok(())
    }

    /// Blocks until one more block is finished.
    fn wait_one(&mut self) -> io::Result<()> {
        let done = match &self.pool {
            Some(pool) => pool
                .results
                .recv()
                .map_err(|_| io::Error::other("a gzip worker died"))?,
            None => return Ok(()),
        };
        self.accept(done)
    }

    /// Writes whatever blocks are already finished, without waiting.
    fn drain_ready(&mut self) -> io::Result<()> {
        loop {
            let done = match &self.pool {
                Some(pool) => match pool.results.try_recv() {
                    Ok(done) => done,
                    Err(TryRecvError::Empty) => return Ok(()),
                    Err(TryRecvError::Disconnected) => {
                        return Err(io::Error::other("a gzip worker died"));
                    }
                },
                None => return Ok(()),
            };
            self.accept(done)?;
        }
    }
}

impl<W: Write> Write for ParallelGzipWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = self.block_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        self.total_in += n as u64;
        if self.buf.len() == self.block_size {
            self.dispatch(false)?;
        }
        Ok(n)
    }

    /// Writes the blocks already compressed and flushes the inner writer.
    /// It does not cut a block: the member stays exactly as `finish` makes it.
    fn flush(&mut self) -> io::Result<()> {
        self.drain_ready()?;
        self.inner.flush()
    }
}
