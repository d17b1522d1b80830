//! Streaming uploads of objects of unknown size (base-backup tar parts).
//!
//! Bytes arrive over a bounded channel from the producer (the tar and
//! compression pipeline, on blocking threads). The first part is held back:
//! if the stream ends before it fills, the object is sent with one PUT.
//! Otherwise a multipart upload starts and parts go out with up to `jobs`
//! in flight. Part sizes grow so that S3's 10 000-part limit cannot be hit
//! while memory stays small: 1000 parts of `base`, then 1000 of 2×base, and
//! so on (with the 5 MiB default, the first 5 GB go in 5 MiB parts; 10 000
//! parts hold about 5 TB). Memory: at most `(jobs + 1)` parts.
//!
//! The producer ends the stream with [`Chunk::End`]. A channel closed without
//! it means the producer failed or was cancelled: the multipart upload is then
//! aborted, as it is on any upload error, so no incomplete upload is left
//! behind — except after SIGKILL, which nothing can catch (a bucket lifecycle
//! rule for incomplete uploads covers that, as for Barman).

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::mpsc;

use super::{PutAttrs, Result, StorageError, Store};

/// S3's minimum size of every part but the last.
pub const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// How to upload a stream.
#[derive(Debug, Clone, Copy)]
pub struct UploadOptions {
    /// Size of the first 1000 parts (at least [`MIN_PART_SIZE`]).
    pub base_part_size: usize,
    /// Parts in flight at once.
    pub jobs: usize,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            base_part_size: MIN_PART_SIZE,
            jobs: 2,
        }
    }
}

/// The size of part number `index` (0-based).
pub fn part_size(base: usize, index: usize) -> usize {
    let doublings = (index / 1000).min(10) as u32;
    base.max(MIN_PART_SIZE).saturating_mul(1 << doublings)
}

/// What the producer sends.
#[derive(Debug, Clone)]
pub enum Chunk {
    Data(Bytes),
    /// Everything was sent: complete the object.
    End,
}

/// What a finished upload stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uploaded {
    pub bytes: u64,
    pub parts: usize,
}

/// Uploads everything received on `rx` to `key`; see the module header.
pub async fn upload_stream(
    store: &Store,
    key: &str,
    attrs: &PutAttrs,
    mut rx: mpsc::Receiver<Chunk>,
    opts: UploadOptions,
) -> Result<Uploaded> {
    let mut upload: Option<super::MultipartUpload> = None;
    let result = send_parts(store, key, attrs, &mut rx, opts, &mut upload).await;
    match (result, upload) {
        (Ok(done), Some(upload)) => {
            upload.complete().await?;
            Ok(done)
        }
        (Ok(done), None) => Ok(done),
        (Err(e), Some(upload)) => {
            if let Err(abort) = upload.abort().await {
                tracing::warn!(key = %key, error = %abort, "could not abort the multipart upload");
            }
            Err(e)
        }
        (Err(e), None) => Err(e),
    }
}

/// Sends the stream: returns what was stored (the object is complete unless
/// a multipart upload is open in `upload`, which the caller completes or aborts).
async fn send_parts(
    store: &Store,
    key: &str,
    attrs: &PutAttrs,
    rx: &mut mpsc::Receiver<Chunk>,
    opts: UploadOptions,
    upload: &mut Option<super::MultipartUpload>,
) -> Result<Uploaded> {
    let jobs = opts.jobs.max(1);
    // Each part is filled into a buffer of exactly its size and handed off
    // whole, so no part keeps a larger allocation alive.
    let mut buffer = BytesMut::with_capacity(part_size(opts.base_part_size, 0));
    let mut total: u64 = 0;
    let mut in_flight = FuturesUnordered::new();
    let mut parts = 0usize;
    loop {
        let (chunk, ended) = match rx.recv().await {
            Some(Chunk::Data(chunk)) => (chunk, false),
            Some(Chunk::End) => (Bytes::new(), true),
            None => {
                return Err(StorageError::Request {
                    op: "UPLOAD",
                    key: key.to_string(),
                    detail: "the upload was interrupted before its end".into(),
                });
            }
        };
        total += chunk.len() as u64;
        let mut rest = &chunk[..];
        loop {
            let size = part_size(opts.base_part_size, parts);
            let room = size.saturating_sub(buffer.len());
            let (now, later) = rest.split_at(room.min(rest.len()));
            buffer.extend_from_slice(now);
            rest = later;
            let full = buffer.len() >= size;
            // At the end, the rest goes as the last part if a multipart upload is open.
            let last = ended && !buffer.is_empty() && upload.is_some();
            if !(full || last) {
                break;
            }
            if upload.is_none() {
                *upload = Some(store.create_multipart(key, attrs).await?);
            }
            let next = part_size(opts.base_part_size, parts + 1);
            let part = std::mem::replace(&mut buffer, BytesMut::with_capacity(next)).freeze();
            if let Some(u) = upload.as_mut() {
                in_flight.push(u.put_part(part));
            }
            parts += 1;
            while in_flight.len() >= jobs {
                if let Some(result) = in_flight.next().await {
                    result?;
                }
            }
            if rest.is_empty() && !ended {
                break;
            }
        }
        if ended {
            break;
        }
    }
    while let Some(result) = in_flight.next().await {
        result?;
    }
    if upload.is_none() {
        store.put(key, buffer.freeze(), attrs).await?;
        return Ok(Uploaded {
            bytes: total,
            parts: 1,
        });
    }
    Ok(Uploaded {
        bytes: total,
        parts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes_grow_every_thousand_parts() {
        assert_eq!(part_size(1, 0), MIN_PART_SIZE);
        assert_eq!(part_size(MIN_PART_SIZE, 999), MIN_PART_SIZE);
        assert_eq!(part_size(MIN_PART_SIZE, 1000), 2 * MIN_PART_SIZE);
        assert_eq!(part_size(MIN_PART_SIZE, 9999), 512 * MIN_PART_SIZE);
        let capacity: u128 = (0..10_000)
            .map(|i| part_size(MIN_PART_SIZE, i) as u128)
            .sum();
        assert!(capacity > 4 * (1u128 << 40), "{capacity}");
    }

    async fn roundtrip(sizes: &[usize], jobs: usize) -> (Vec<u8>, Uploaded, Vec<u8>) {
        let root = std::env::temp_dir().join(format!(
            "barnacle-upload-{}-{}",
            std::process::id(),
            sizes.iter().sum::<usize>()
        ));
        std::fs::create_dir_all(&root).unwrap();
        let store = Store::local(&root);
        let (tx, rx) = mpsc::channel(4);
        let mut expected = Vec::new();
        let mut n = 0u8;
        let mut chunks = Vec::new();
        for &s in sizes {
            let chunk: Vec<u8> = (0..s)
                .map(|_| {
                    n = n.wrapping_add(7);
                    n
                })
                .collect();
            expected.extend_from_slice(&chunk);
            chunks.push(Bytes::from(chunk));
        }
        let producer = tokio::spawn(async move {
            for c in chunks {
                tx.send(Chunk::Data(c)).await.unwrap();
            }
            tx.send(Chunk::End).await.unwrap();
        });
        let opts = UploadOptions {
            base_part_size: MIN_PART_SIZE,
            jobs,
        };
        let uploaded = upload_stream(&store, "a/b.tar.gz", &PutAttrs::default(), rx, opts)
            .await
            .unwrap();
        producer.await.unwrap();
        let got = store.get("a/b.tar.gz").await.unwrap().body.to_vec();
        (expected, uploaded, got)
    }

    #[tokio::test]
    async fn small_streams_are_one_put() {
        let (expected, uploaded, got) = roundtrip(&[10, 1000, 3], 2).await;
        assert_eq!(got, expected);
        assert_eq!(
            uploaded,
            Uploaded {
                bytes: 1013,
                parts: 1
            }
        );
    }

    #[tokio::test]
    async fn an_interrupted_stream_aborts_and_stores_nothing() {
        let root =
            std::env::temp_dir().join(format!("barnacle-upload-abort-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let store = Store::local(&root);
        let (tx, rx) = mpsc::channel(4);
        let producer = tokio::spawn(async move {
            tx.send(Chunk::Data(Bytes::from(vec![1u8; 6 << 20])))
                .await
                .unwrap();
            // Dropped without End: the producer failed.
        });
        let err = upload_stream(
            &store,
            "x/y.tar",
            &PutAttrs::default(),
            rx,
            UploadOptions::default(),
        )
        .await
        .unwrap_err();
        producer.await.unwrap();
        assert!(err.to_string().contains("interrupted"), "{err}");
        assert!(store.list("x/").await.unwrap().is_empty());
        let leftovers: Vec<_> = std::fs::read_dir(root.join("x"))
            .map(|d| d.count())
            .into_iter()
            .collect();
        assert!(
            leftovers.iter().all(|n| *n == 0),
            "temp files left: {leftovers:?}"
        );
    }

    #[tokio::test]
    async fn large_streams_are_multipart_in_order() {
        let sizes = [3 << 20, 4 << 20, 1 << 20, 5 << 20, 123];
        let (expected, uploaded, got) = roundtrip(&sizes, 3).await;
        assert!(got == expected, "content differs");
        assert_eq!(uploaded.parts, 3);
    }
}
