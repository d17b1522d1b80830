//! A streaming reader of gzip (RFC 1952) members, one after another, as
//! Python's `gzip` module reads them.
//!
//! Why not `flate2::read::MultiGzDecoder`: it checks each member with
//! zlib-rs's CRC-32, which on the benchmark VM costs about three times
//! `crc32fast`'s, and a base restore's inflating thread is the restore's
//! critical path (`docs/benchmarks.md`, "The inflating thread"). Here the
//! deflate data goes through `flate2::Decompress` (zlib-rs) and the check
//! through `crc32fast`.
//!
//! What is accepted is what Python accepts: any number of members; each
//! header's optional fields (extra, name, comment, header CRC) skipped; zero
//! bytes after a member's trailer ignored (Python: "gzip files can be padded
//! with zeroes"); anything else after a member must be another member. Each
//! member's CRC-32 and length (mod 2^32) are checked against its trailer.
//! Errors are `InvalidData` (a bad header, corrupt deflate data, a check that
//! fails) or `UnexpectedEof` (a stream cut short), each naming what is wrong.

use std::io::{self, BufRead, BufReader, Read};

use flate2::{Decompress, FlushDecompress, Status};

/// The input buffer: the decoder's own, filled from the inner reader.
const INPUT_BUFFER: usize = 64 * 1024;

const FHCRC: u8 = 0x02;
const FEXTRA: u8 = 0x04;
const FNAME: u8 = 0x08;
const FCOMMENT: u8 = 0x10;
const FRESERVED: u8 = 0xe0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first member's header.
    Start,
    /// Inside a member's deflate data.
    Body,
    /// Past a member's trailer: another member, zero padding or the end.
    Between,
    /// The end of the stream.
    Done,
}

/// Decompresses the gzip members `inner` yields (see the module docs).
pub struct GzipReader<R: Read> {
    input: BufReader<R>,
    inflate: Decompress,
    crc: crc32fast::Hasher,
    /// Bytes this member produced so far (the trailer's ISIZE is mod 2^32).
    member_len: u64,
    state: State,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "truncated gzip stream (it ends inside a member)",
    )
}

impl<R: Read> GzipReader<R> {
    pub fn new(inner: R) -> GzipReader<R> {
        GzipReader {
            input: BufReader::with_capacity(INPUT_BUFFER, inner),
            inflate: Decompress::new(false),
            crc: crc32fast::Hasher::new(),
            member_len: 0,
            state: State::Start,
        }
    }

    fn read_exact_or_truncated(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                truncated()
            } else {
                e
            }
        })
    }

    /// Skips a zero-terminated header field.
    fn skip_zero_terminated(&mut self) -> io::Result<()> {
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                return Err(truncated());
            }
            match available.iter().position(|&b| b == 0) {
                Some(at) => {
                    self.input.consume(at + 1);
                    return Ok(());
                }
                None => {
                    let n = available.len();
                    self.input.consume(n);
                }
            }
        }
    }

    /// Reads a member header; `false` at the end of the stream. Between
    /// members, zero bytes are skipped first.
    fn next_member(&mut self) -> io::Result<bool> {
        let between = self.state == State::Between;
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                if between {
                    return Ok(false);
                }
                return Err(truncated());
            }
            if !between {
                break;
            }
            let zeros = available.iter().take_while(|&&b| b == 0).count();
            if zeros < available.len() {
                self.input.consume(zeros);
                break;
            }
            let n = available.len();
            self.input.consume(n);
        }
        let not_gzip = || {
            invalid(if between {
                "not a gzip member after the previous one (trailing garbage)"
            } else {
                "not gzip data (no gzip magic number)"
            })
        };
        let mut fixed = [0u8; 10];
        match self.input.read_exact(&mut fixed[..2]) {
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Err(not_gzip()),
            other => other?,
        }
        if fixed[..2] != [0x1f, 0x8b] {
            return Err(not_gzip());
        }
        self.read_exact_or_truncated(&mut fixed[2..])?;
        if fixed[2] != 8 {
            return Err(invalid("gzip member with an unknown compression method"));
        }
        let flags = fixed[3];
        if flags & FRESERVED != 0 {
            return Err(invalid("gzip header with reserved flags set"));
        }
        if flags & FEXTRA != 0 {
            let mut xlen = [0u8; 2];
            self.read_exact_or_truncated(&mut xlen)?;
            let xlen = u64::from(u16::from_le_bytes(xlen));
            if io::copy(&mut (&mut self.input).take(xlen), &mut io::sink())? < xlen {
                return Err(truncated());
            }
        }
        if flags & FNAME != 0 {
            self.skip_zero_terminated()?;
        }
        if flags & FCOMMENT != 0 {
            self.skip_zero_terminated()?;
        }
        if flags & FHCRC != 0 {
            // Python reads and discards the header's CRC-16; so do we.
            let mut crc16 = [0u8; 2];
            self.read_exact_or_truncated(&mut crc16)?;
        }
        self.inflate.reset(false);
        self.crc = crc32fast::Hasher::new();
        self.member_len = 0;
        Ok(true)
    }

    /// Checks the member's trailer against what it produced.
    fn check_trailer(&mut self) -> io::Result<()> {
        let mut trailer = [0u8; 8];
        self.read_exact_or_truncated(&mut trailer)?;
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        let computed = std::mem::take(&mut self.crc).finalize();
        if computed != crc {
            return Err(invalid(&format!(
                "gzip CRC-32 mismatch (trailer {crc:08x}, data {computed:08x})"
            )));
        }
        if self.member_len as u32 != isize {
            return Err(invalid(&format!(
                "gzip length mismatch (trailer {isize}, data {} mod 2^32)",
                self.member_len as u32
            )));
        }
        Ok(())
    }
}

impl<R: Read> Read for GzipReader<R> {
    fn read(&mut self, dst: &mut [u8]) -> io::Result<usize> {
        if dst.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Start | State::Between => {
                    self.state = if self.next_member()? {
                        State::Body
                    } else {
                        State::Done
                    };
                }
                State::Body => {
                    let input = self.input.fill_buf()?;
                    if input.is_empty() {
                        return Err(truncated());
                    }
                    let (in_before, out_before) =
                        (self.inflate.total_in(), self.inflate.total_out());
                    let status = self
                        .inflate
                        .decompress(input, dst, FlushDecompress::None)
                        .map_err(|e| invalid(&format!("corrupt deflate stream: {e}")))?;
                    let consumed = (self.inflate.total_in() - in_before) as usize;
                    let produced = (self.inflate.total_out() - out_before) as usize;
                    self.input.consume(consumed);
                    self.crc.update(&dst[..produced]);
                    self.member_len += produced as u64;
                    if status == Status::StreamEnd {
                        self.check_trailer()?;
                        self.state = State::Between;
                    }
                    if produced > 0 {
                        return Ok(produced);
                    }
                    // Nothing out yet (a header-only block, or the input
                    // ran out mid-symbol): go on with more input.
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| ((i * 7919) % 251) as u8 ^ ((i / 1000) as u8))
            .collect()
    }

    fn decode(data: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        GzipReader::new(data).read_to_end(&mut out)?;
        Ok(out)
    }

    /// Reads one byte at a time from its input: every state sees input
    /// running out at every position.
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() || buf.is_empty() {
                return Ok(0);
            }
            buf[0] = self.0[0];
            self.0 = &self.0[1..];
            Ok(1)
        }
    }

    #[test]
    fn one_member_and_several_decode_as_flate2_does() {
        let a = sample(300_000);
        let b = sample(70_001);
        let one = gzip(&a, 6);
        assert_eq!(decode(&one).unwrap(), a);
        let mut two = gzip(&a, 1);
        two.extend(gzip(&b, 9));
        two.extend(gzip(b"", 6));
        let mut expected = a.clone();
        expected.extend(&b);
        assert_eq!(decode(&two).unwrap(), expected);
        let mut flate = Vec::new();
        flate2::read::MultiGzDecoder::new(&two[..])
            .read_to_end(&mut flate)
            .unwrap();
        assert_eq!(flate, expected);
    }

    #[test]
    fn byte_by_byte_input_and_small_reads_give_the_same_bytes() {
        let a = sample(100_000);
        let mut two = gzip(&a, 6);
        two.extend(gzip(&a[..777], 6));
        let mut out = Vec::new();
        let mut r = GzipReader::new(Trickle(&two));
        let mut buf = [0u8; 13];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        let mut expected = a.clone();
        expected.extend_from_slice(&a[..777]);
        assert_eq!(out, expected);
    }

    #[test]
    fn optional_header_fields_are_skipped() {
        let data = sample(5000);
        let mut e = flate2::GzBuilder::new()
            .filename("data.tar")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4, 5])
            .write(Vec::new(), flate2::Compression::new(6));
        e.write_all(&data).unwrap();
        let mut gz = e.finish().unwrap();
        assert_eq!(decode(&gz).unwrap(), data);
        // The header CRC flag: two more bytes after the comment, read and
        // not checked (as Python does). Built by hand from a plain member.
        let plain = gzip(&data, 6);
        let mut with_hcrc = plain[..10].to_vec();
        with_hcrc[3] |= FHCRC;
        with_hcrc.extend_from_slice(&[0xab, 0xcd]);
        with_hcrc.extend_from_slice(&plain[10..]);
        assert_eq!(decode(&with_hcrc).unwrap(), data);
        // Zero padding after the last member is ignored, as Python does.
        gz.extend_from_slice(&[0u8; 700]);
        assert_eq!(decode(&gz).unwrap(), data);
    }

    #[test]
    fn damage_is_an_error_that_says_what() {
        let data = sample(200_000);
        let gz = gzip(&data, 6);
        let err = |bytes: &[u8]| decode(bytes).unwrap_err();

        let e = err(&gz[..gz.len() - 3]);
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        let e = err(&gz[..gz.len() / 2]);
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        let e = err(&gz[..5]);
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        let e = err(b"");
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");

        let mut bad_crc = gz.clone();
        let at = bad_crc.len() - 8;
        bad_crc[at] ^= 1;
        assert!(err(&bad_crc).to_string().contains("CRC-32 mismatch"));
        let mut bad_len = gz.clone();
        let at = bad_len.len() - 1;
        bad_len[at] ^= 1;
        assert!(err(&bad_len).to_string().contains("length mismatch"));

        let mut bad_data = gz.clone();
        for b in &mut bad_data[40..60] {
            *b = 0xff;
        }
        assert_eq!(err(&bad_data).kind(), io::ErrorKind::InvalidData);

        let mut garbage = gz.clone();
        garbage.extend_from_slice(b"\0\0junk");
        assert!(err(&garbage).to_string().contains("trailing garbage"));
        assert!(err(b"plain text, not gzip").to_string().contains("magic"));
        let mut method = gz.clone();
        method[2] = 7;
        assert!(err(&method).to_string().contains("compression method"));
        let mut reserved = gz;
        reserved[3] = 0x80;
        assert!(err(&reserved).to_string().contains("reserved"));
    }
}
