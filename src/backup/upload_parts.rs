//! Tar parts streamed straight into the store: a [`PartOutput`] whose
//! writers feed [`upload_stream`] tasks over bounded channels. No temporary
//! files; memory is the channel plus what each upload holds (see
//! [`crate::storage::upload`]).
//!
//! The writers run on a blocking thread (the tar walk and compression); the
//! uploads run on the async runtime. A writer dropped without being closed
//! (an error, a cancellation) makes its upload abort itself. Setting the
//! shared `cancel` flag makes every further write fail, which unwinds the
//! tar writer.

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use tokio::runtime::Handle;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::PartOutput;
use crate::storage::upload::{Chunk, UploadOptions, Uploaded, upload_stream};
use crate::storage::{PutAttrs, StorageError, Store};

/// Bytes handed to the uploader at a time.
const CHUNK: usize = 256 * 1024;

/// Where one archive's parts go: `<base>.tar<ext>`, `<base>_0001.tar<ext>`…
pub struct UploadParts {
    pub handle: Handle,
    pub store: Store,
    /// `P/base/<ID>/data` or `P/base/<ID>/<OID>`.
    pub base: String,
    /// `.tar`, `.tar.gz`…
    pub suffix: String,
    pub attrs: PutAttrs,
    pub options: UploadOptions,
    /// When set, every write fails: the backup is being cancelled.
    pub cancel: Arc<AtomicBool>,
    /// Every upload started, for the caller to wait on.
    pub uploads: Arc<Mutex<Uploads>>,
}

/// The uploads started, with their keys; shared with whoever waits for them.
pub type Uploads = Vec<(String, JoinHandle<Result<Uploaded, StorageError>>)>;

impl UploadParts {
    /// The key of part `index`.
    pub fn part_key(&self, index: u32) -> String {
        if index == 0 {
            format!("{}{}", self.base, self.suffix)
        } else {
            format!("{}_{index:04}{}", self.base, self.suffix)
        }
    }
}

impl PartOutput for UploadParts {
    type Writer = ChannelWriter;

    fn open_part(&mut self, index: u32) -> io::Result<ChannelWriter> {
        let key = self.part_key(index);
        let (tx, rx) = mpsc::channel(8);
        let (store, attrs, options, task_key) = (
            self.store.clone(),
            self.attrs.clone(),
            self.options,
            key.clone(),
        );
        let task = self
            .handle
            .spawn(async move { upload_stream(&store, &task_key, &attrs, rx, options).await });
        self.uploads
            .lock()
            .map_err(|_| io::Error::other("upload list poisoned"))?
            .push((key, task));
        Ok(ChannelWriter {
            tx,
            buffer: BytesMut::with_capacity(CHUNK),
            cancel: self.cancel.clone(),
        })
    }

    fn close_part(&mut self, _index: u32, mut writer: ChannelWriter) -> io::Result<()> {
        writer.flush()?;
        writer.send(Chunk::End)
    }
}

/// A `Write` that hands its bytes to an upload task.
pub struct ChannelWriter {
    tx: mpsc::Sender<Chunk>,
    buffer: BytesMut,
    cancel: Arc<AtomicBool>,
}

impl ChannelWriter {
    fn send(&mut self, chunk: Chunk) -> io::Result<()> {
        if self.cancel.load(Ordering::Relaxed) {
            // Not ErrorKind::Interrupted: write_all would retry that forever.
            return Err(io::Error::other("the backup was cancelled"));
        }
        self.tx.blocking_send(chunk).map_err(|_| {
            io::Error::new(io::ErrorKind::BrokenPipe, "the upload of this part failed")
        })
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        if self.buffer.len() >= CHUNK {
            let data = self.buffer.split().freeze();
            self.send(Chunk::Data(data))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buffer.is_empty() {
            let data = self.buffer.split().freeze();
            self.send(Chunk::Data(data))?;
        }
        Ok(())
    }
}
