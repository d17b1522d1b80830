//! A blocking `Read` over an object's chunks as they arrive from an async
//! download, for decoders that run on a blocking thread. At most
//! `PIECES_AHEAD` pieces of a chunk wait in between: memory stays bounded
//! whatever the object's size.

use std::io::{self, BufRead, Read};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::mpsc;

use super::{Result, StorageError};

/// Where a [`ChunkReader`] leaves the download error it met (it can only
/// return an `io::Error` itself).
pub type DownloadFailure = Arc<Mutex<Option<StorageError>>>;

/// The most a piece copied from a downloaded chunk holds (see [`ChunkReader::spawn`]).
const PIECE: usize = 64 * 1024;

/// Pieces that may wait for the reader: WAL restore's and the base restore's
/// decoders are the slower side, and 256 KiB ahead keeps them fed.
const PIECES_AHEAD: usize = 4;

/// `chunk` copied into pieces of at most [`PIECE`] bytes.
fn pieces_of(chunk: &[u8]) -> Vec<Bytes> {
    chunk.chunks(PIECE).map(Bytes::copy_from_slice).collect()
}

pub struct ChunkReader {
    rx: mpsc::Receiver<Result<Bytes>>,
    current: Bytes,
    /// How much of `current` has been read.
    pos: usize,
    failure: DownloadFailure,
    /// Where chunks go once read, for their sender to fill again.
    recycle: Option<std::sync::mpsc::Sender<Bytes>>,
}

impl ChunkReader {
    /// Reads the chunks sent on `rx`; the sender's end is the end of the data.
    pub fn new(rx: mpsc::Receiver<Result<Bytes>>) -> ChunkReader {
        ChunkReader {
            rx,
            current: Bytes::new(),
            pos: 0,
            failure: DownloadFailure::default(),
            recycle: None,
        }
    }

    /// Sends every chunk, once read, back on `recycle` (see
    /// `Bytes::try_into_mut`): the sender reuses its buffers instead of
    /// faulting in fresh pages for each chunk.
    pub fn recycling(mut self, recycle: std::sync::mpsc::Sender<Bytes>) -> ChunkReader {
        self.recycle = Some(recycle);
        self
    }

    /// Forwards `chunks` from a task on the current runtime, `PIECES_AHEAD`
    /// pieces of `PIECE` bytes ahead of the reader. The task ends at the first
    /// error (passed on) or when the reader is dropped.
    ///
    /// Each chunk is copied into pieces as it arrives and dropped at once. A
    /// chunk from the HTTP client is a slice of its connection's read buffer
    /// (up to 64 KiB, `http_client`; 408 KiB under reqwest, behind a TLS or SOCKS proxy),
    /// and the slice keeps the whole buffer alive until its last byte is
    /// read: every chunk waiting here made the connection allocate another
    /// buffer. Copied, the connection refills its own buffer, and each piece
    /// is freed once read. `restore -p 4` of poorly compressible WAL over
    /// HTTPS (four downloads at once): peak RSS 16.1 → 13.9 MiB, median of 12
    /// interleaved calls (docs/benchmarks.md, "Downloads copied out of the
    /// HTTP client's buffers"). Copying lazily, a piece only when the channel
    /// has room, peaked no lower (13.2 against 12.9 MiB, with reqwest's
    /// buffers): the chunk held meanwhile has the same effect.
    pub fn spawn(mut chunks: BoxStream<'static, Result<Bytes>>) -> ChunkReader {
        let (tx, rx) = mpsc::channel(PIECES_AHEAD);
        tokio::spawn(async move {
            while let Some(chunk) = chunks.next().await {
                let pieces = match chunk {
                    Ok(chunk) => pieces_of(&chunk),
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                for piece in pieces {
                    if tx.send(Ok(piece)).await.is_err() {
                        return;
                    }
                }
            }
        });
        ChunkReader::new(rx)
    }

    /// The download error this reader met, once it has returned it.
    pub fn failure(&self) -> DownloadFailure {
        self.failure.clone()
    }
}

impl BufRead for ChunkReader {
    /// The rest of the current chunk, or the next one once it is read.
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.pos == self.current.len() {
            let read = std::mem::take(&mut self.current);
            if let Some(recycle) = &self.recycle
                && !read.is_empty()
            {
                let _ = recycle.send(read);
            }
            self.pos = 0;
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => {
                    let message = e.to_string();
                    if let Ok(mut slot) = self.failure.lock() {
                        *slot = Some(e);
                    }
                    return Err(io::Error::other(message));
                }
                None => return Ok(&[]),
            }
        }
        Ok(&self.current[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.current.len());
    }
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = buf.len().min(available.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_every_chunk_then_reports_the_download_error() {
        let chunks: Vec<Result<Bytes>> = vec![
            Ok(Bytes::from_static(b"abc")),
            Ok(Bytes::from_static(b"defg")),
            Err(StorageError::NotFound { key: "k".into() }),
        ];
        let reader = ChunkReader::spawn(futures::stream::iter(chunks).boxed());
        let failure = reader.failure();
        let (data, err) = tokio::task::spawn_blocking(move || {
            let mut reader = reader;
            let mut data = Vec::new();
            let err = reader.read_to_end(&mut data).unwrap_err();
            (data, err)
        })
        .await
        .unwrap();
        assert_eq!(data, b"abcdefg");
        assert!(err.to_string().contains("k"), "{err}");
        let failure = failure.lock().unwrap().take();
        assert!(matches!(failure, Some(StorageError::NotFound { .. })));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn chunks_are_copied_out_and_released_before_they_are_read() {
        let big: Bytes = (0..PIECE * 2 + 100)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>()
            .into();
        let small = Bytes::from_static(b"tail");
        let held = big.clone();
        let chunks: Vec<Result<Bytes>> = vec![Ok(big.clone()), Ok(small)];
        drop(big);
        let mut reader = ChunkReader::spawn(futures::stream::iter(chunks).boxed());
        let (first, held, released, rest) = tokio::task::spawn_blocking(move || {
            let mut first = [0u8; 10];
            reader.read_exact(&mut first).unwrap();
            // The reader has one piece; the chunk was dropped when it was copied.
            let released = held.is_unique();
            let mut rest = Vec::new();
            reader.read_to_end(&mut rest).unwrap();
            (first, held, released, rest)
        })
        .await
        .unwrap();
        assert!(released, "the download's chunk is still referenced");
        let mut data = first.to_vec();
        data.extend_from_slice(&rest);
        let mut expected = held.to_vec();
        expected.extend_from_slice(b"tail");
        assert_eq!(data, expected);
    }

    #[test]
    fn pieces_hold_at_most_a_piece_each() {
        let data: Vec<u8> = (0..PIECE * 3 + 1).map(|i| (i % 7) as u8).collect();
        let pieces = pieces_of(&data);
        assert_eq!(
            pieces.iter().map(Bytes::len).collect::<Vec<_>>(),
            [PIECE, PIECE, PIECE, 1]
        );
        assert_eq!(pieces.concat(), data);
        assert!(pieces_of(&[]).is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_chunks_come_back_whole_for_reuse() {
        let (tx, rx) = mpsc::channel(4);
        let (spare_tx, spare_rx) = std::sync::mpsc::channel();
        for chunk in [&b"abc"[..], b"defg"] {
            tx.send(Ok(Bytes::from(chunk.to_vec()))).await.unwrap();
        }
        drop(tx);
        let data = tokio::task::spawn_blocking(move || {
            let mut reader = ChunkReader::new(rx).recycling(spare_tx);
            let mut data = Vec::new();
            reader.read_to_end(&mut data).unwrap();
            data
        })
        .await
        .unwrap();
        assert_eq!(data, b"abcdefg");
        let back: Vec<Vec<u8>> = (spare_rx.try_iter())
            .map(|b| b.try_into_mut().expect("unique").to_vec())
            .collect();
        assert_eq!(back, [b"abc".to_vec(), b"defg".to_vec()]);
    }
}
