//! Base-backup archives: the tar side of `barman-cloud-backup` and
//! `barman-cloud-restore` (Barman 3.19.1).
//!
//! | module         | owns                                                              |
//! |----------------|-------------------------------------------------------------------|
//! | [`exclude`]    | Barman's rsync-style include/exclude rules and its lists           |
//! | [`tar_writer`] | walking PGDATA / a tablespace into tar parts, `backup_label` last |
//! | [`tar_reader`] | safe streaming extraction of one (decompressed) part               |
//! | `tar_header`   | Python `tarfile` PAX headers byte for byte                        |
//!
//! Object keys, uploads and PostgreSQL calls live elsewhere: this module
//! writes to a [`PartSink`] and reads from any `Read`. [`EncodedParts`] is a
//! ready-made sink that compresses each part with
//! [`crate::codec::stream::PartEncoder`] into writers a [`PartOutput`] opens.

pub mod exclude;
mod names;
pub mod restore;
pub mod restored_file;
pub mod take;
pub mod tar_header;
pub mod tar_reader;
pub mod tar_writer;
pub mod upload_parts;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_python;
#[cfg(test)]
mod tests_reader;

use std::io::{self, Write};

use crate::codec::Compression;
use crate::codec::stream::{PartEncoder, StreamOptions};

pub use exclude::PathFilter;
pub use tar_reader::{ExtractStats, extract_tar};
pub use tar_writer::{
    ExtraFile, PartSink, PgdataTar, TablespaceRef, TarArchive, TarStats, append_backup_label,
    write_pgdata_tar, write_tablespace_tar,
};

/// The buffers a base restore inflates into and writes files from: 4 096
/// writes per GiB restored, and the handful in flight (about seven) a small
/// part of the restore's memory.
pub const RESTORE_BUFFER: usize = 256 * 1024;

/// Opens and closes the destinations of the parts (files, multipart
/// uploads, buffers). Part 0 is `data.tar…`, part n is `data_000n.tar…`.
pub trait PartOutput {
    type Writer: Write;
    fn open_part(&mut self, index: u32) -> io::Result<Self::Writer>;
    /// Receives a part's writer once its compressed stream is complete.
    fn close_part(&mut self, index: u32, writer: Self::Writer) -> io::Result<()>;
}

/// Parts kept in memory (tests, small archives).
impl PartOutput for Vec<Vec<u8>> {
    type Writer = Vec<u8>;
    fn open_part(&mut self, _index: u32) -> io::Result<Vec<u8>> {
        Ok(Vec::new())
    }
    fn close_part(&mut self, _index: u32, writer: Vec<u8>) -> io::Result<()> {
        self.push(writer);
        Ok(())
    }
}

/// A [`PartSink`] compressing each part on its own into a [`PartOutput`].
pub struct EncodedParts<O: PartOutput> {
    output: O,
    compression: Option<Compression>,
    options: StreamOptions,
    current: Option<PartEncoder<O::Writer>>,
    index: u32,
}

impl<O: PartOutput> EncodedParts<O> {
    /// Opens part 0 at once.
    pub fn new(
        mut output: O,
        compression: Option<Compression>,
        options: StreamOptions,
    ) -> io::Result<Self> {
        let first = output.open_part(0)?;
        let current = PartEncoder::new(compression, &options, first)?;
        Ok(EncodedParts {
            output,
            compression,
            options,
            current: Some(current),
            index: 0,
        })
    }

    /// The index of the part being written.
    pub fn part_index(&self) -> u32 {
        self.index
    }

    /// Finishes the last part and returns the output.
    pub fn finish(mut self) -> io::Result<O> {
        self.close_current()?;
        Ok(self.output)
    }

    fn close_current(&mut self) -> io::Result<()> {
        if let Some(enc) = self.current.take() {
            let writer = enc.finish()?;
            self.output.close_part(self.index, writer)?;
        }
        Ok(())
    }

    fn encoder(&mut self) -> io::Result<&mut PartEncoder<O::Writer>> {
        self.current
            .as_mut()
            .ok_or_else(|| io::Error::other("tar part already closed"))
    }
}

impl<O: PartOutput> Write for EncodedParts<O> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.encoder()?.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.encoder()?.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.encoder()?.flush()
    }
}

impl<O: PartOutput> PartSink for EncodedParts<O> {
    fn compressed_len(&self) -> u64 {
        self.current.as_ref().map_or(0, PartEncoder::compressed_len)
    }
    fn next_part(&mut self) -> io::Result<()> {
        self.close_current()?;
        self.index += 1;
        let writer = self.output.open_part(self.index)?;
        self.current = Some(PartEncoder::new(self.compression, &self.options, writer)?);
        Ok(())
    }
}
