//! Streaming, safe extraction of one tar part into a directory.
//!
//! Mirrors what `barman-cloud-restore` does with each part
//! (`CloudInterface.extract_tar`: Python `tarfile` in `r|…` mode,
//! `extractall(path=dst)`), minus what would be unsafe:
//!
//! * names are relative: an absolute name or a `..` component is an error,
//!   `.` components are dropped (`./` is the destination itself, whose mode
//!   and mtime are restored like any directory's: PostgreSQL wants 0700);
//! * no path is ever resolved through a symlink: a symlink met among the
//!   parents of a member is an error, and a member that replaces an existing
//!   file or symlink unlinks it first instead of writing through it;
//! * symlink members are created as they are (their targets are not checked:
//!   they are never followed here); hard links must name an earlier,
//!   non-directory member under the same rules;
//! * regular files get their mode (permission bits only: no setuid/setgid/
//!   sticky) and mtime (the PAX `mtime` with its fraction when present);
//!   directories are created 0700 and get their mode and mtime at the end,
//!   deepest first, as `extractall` does; ownership is left to the running
//!   user; FIFOs and devices are skipped and counted.
//!
//! PAX and GNU long names and links are decoded by the `tar` crate. The
//! data of regular files is written straight from the stream's buffers
//! ([`SharedStream`]).

use std::cell::RefCell;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{self, File, FileTimes};
use std::io::{self, BufRead, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tar::EntryType;

use super::restored_file::{LargeWrites, RestoredFile};

/// What one extraction created.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExtractStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// File data bytes written.
    pub bytes: u64,
    /// Members not extracted (FIFOs, devices, unknown types, global headers).
    pub skipped: u64,
}

/// `e` naming the member it met, unless it already does (the refusals).
fn member_error(e: io::Error, name: &[u8]) -> io::Error {
    let name = String::from_utf8_lossy(name);
    if e.to_string().contains(name.as_ref()) {
        return e;
    }
    io::Error::new(e.kind(), format!("{name}: {e}"))
}

fn unsafe_path(what: &str, name: &[u8]) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{what}: {}", String::from_utf8_lossy(name)),
    )
}

/// Creates directory `abs` (`mode` before the umask), or accepts the one
/// already there, even one that appeared since it was looked for: a restore
/// extracts its parts in parallel into one tree, and two parts often hold
/// files of one directory. Anything else found there is refused as `what`.
fn make_dir(abs: &Path, mode: u32, what: &str, name: &[u8]) -> io::Result<()> {
    match fs::DirBuilder::new().mode(mode).create(abs) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match fs::symlink_metadata(abs) {
            Ok(m) if m.file_type().is_dir() => Ok(()),
            Ok(_) => Err(unsafe_path(what, name)),
            Err(e) => Err(e),
        },
        done => done,
    }
}

/// The components of a member name, refusing absolute names and `..`.
fn components(name: &[u8]) -> io::Result<Vec<&[u8]>> {
    if name.first() == Some(&b'/') {
        return Err(unsafe_path("absolute path in archive", name));
    }
    let mut out = Vec::new();
    for c in name.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return Err(unsafe_path("'..' in archive path", name)),
            c => out.push(c),
        }
    }
    Ok(out)
}

struct Extractor<'a, R> {
    dest: &'a Path,
    /// The stream the `tar` crate reads the headers from, for the data.
    stream: SharedStream<R>,
    /// Directories below `dest` known to be real directories (relative).
    known_dirs: HashSet<PathBuf>,
    /// (relative path, mode, mtime) of directory members, applied at the end.
    dir_attrs: Vec<(PathBuf, u32, SystemTime)>,
    stats: ExtractStats,
    large_writes: LargeWrites,
}

impl<R: BufRead> Extractor<'_, R> {
    /// Makes sure every parent of `rel` is a real directory inside `dest`,
    /// creating missing ones when `create`.
    fn parents(&mut self, rel: &Path, name: &[u8], create: bool) -> io::Result<()> {
        let mut prefix = PathBuf::new();
        let Some(parent) = rel.parent() else {
            return Ok(());
        };
        for c in parent.components() {
            prefix.push(c);
            if self.known_dirs.contains(&prefix) {
                continue;
            }
            let abs = self.dest.join(&prefix);
            match fs::symlink_metadata(&abs) {
                Ok(m) if m.file_type().is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(unsafe_path("archive path goes through a symlink", name));
                }
                Ok(_) => return Err(unsafe_path("archive path goes through a file", name)),
                Err(e) if create && e.kind() == io::ErrorKind::NotFound => {
                    make_dir(&abs, 0o777, "archive path goes through a file", name)?;
                }
                Err(e) => return Err(e),
            }
            self.known_dirs.insert(prefix.clone());
        }
        Ok(())
    }

    /// Removes whatever non-directory is at `abs`, never following it.
    fn clear(&self, abs: &Path, name: &[u8]) -> io::Result<()> {
        match fs::symlink_metadata(abs) {
            Ok(m) if m.file_type().is_dir() => Err(unsafe_path(
                "archive member would replace a directory",
                name,
            )),
            Ok(_) => fs::remove_file(abs),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Extracts member `entry`, whose name is `name`.
    fn entry<E: Read>(&mut self, mut entry: tar::Entry<'_, E>, name: &[u8]) -> io::Result<()> {
        let kind = entry.header().entry_type();
        let parts = components(name)?;
        let rel: PathBuf = parts.iter().map(|c| OsStr::from_bytes(c)).collect();
        let abs = self.dest.join(&rel);
        let mode = entry.header().mode()? & 0o777;
        let mtime = member_mtime(&mut entry)?;
        match kind {
            EntryType::Directory => {
                if !parts.is_empty() {
                    self.parents(&rel, name, true)?;
                    make_dir(&abs, 0o700, "directory over a non-directory", name)?;
                    self.known_dirs.insert(rel.clone());
                }
                self.dir_attrs.push((rel, mode, mtime));
                self.stats.dirs += 1;
            }
            _ if parts.is_empty() => {
                return Err(unsafe_path("non-directory member names the root", name));
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                self.parents(&rel, name, true)?;
                self.clear(&abs, name)?;
                let size = entry.size();
                let mut out = RestoredFile::create(&abs, size)?;
                let n = if kind == EntryType::GNUSparse {
                    // Its holes are the crate's to fill in: read through it.
                    let mut from = io::BufReader::with_capacity(super::RESTORE_BUFFER, &mut entry);
                    out.copy_from(&mut from, &mut self.large_writes)?
                } else {
                    let writes = &mut self.large_writes;
                    self.stream
                        .member_data(size, |data| out.copy_from(data, writes))?
                };
                let file = out.into_file();
                file.set_times(FileTimes::new().set_accessed(mtime).set_modified(mtime))?;
                file.set_permissions(fs::Permissions::from_mode(mode))?;
                self.stats.files += 1;
                self.stats.bytes += n;
            }
            EntryType::Symlink => {
                let target = link_name(&entry, name)?;
                self.parents(&rel, name, true)?;
                self.clear(&abs, name)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &abs)?;
                self.stats.symlinks += 1;
            }
            EntryType::Link => {
                let target = link_name(&entry, name)?;
                let target_rel: PathBuf = components(&target)?
                    .into_iter()
                    .map(OsStr::from_bytes)
                    .collect();
                if target_rel.as_os_str().is_empty() {
                    return Err(unsafe_path("hard link to the root", name));
                }
                self.parents(&target_rel, &target, false)?;
                let source = self.dest.join(&target_rel);
                match fs::symlink_metadata(&source) {
                    Ok(m) if !m.file_type().is_dir() => {}
                    _ => return Err(unsafe_path("hard link to a missing member", &target)),
                }
                self.parents(&rel, name, true)?;
                self.clear(&abs, name)?;
                fs::hard_link(&source, &abs)?;
                self.stats.hardlinks += 1;
            }
            _ => self.stats.skipped += 1,
        }
        Ok(())
    }

    /// `extractall`'s last step: directory modes and mtimes, deepest first.
    fn finish_dirs(&mut self) -> io::Result<()> {
        self.dir_attrs.sort_by(|a, b| b.0.cmp(&a.0));
        for (rel, mode, mtime) in &self.dir_attrs {
            let abs = self.dest.join(rel);
            let dir = File::open(&abs)?;
            dir.set_times(FileTimes::new().set_accessed(*mtime).set_modified(*mtime))?;
            dir.set_permissions(fs::Permissions::from_mode(*mode))?;
        }
        Ok(())
    }
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>, name: &[u8]) -> io::Result<Vec<u8>> {
    match entry.link_name_bytes() {
        Some(t) if !t.is_empty() => Ok(t.into_owned()),
        _ => Err(unsafe_path("link without a target", name)),
    }
}

/// The PAX `mtime` (with its fraction) if any, else the header's.
fn member_mtime<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<SystemTime> {
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            if ext.key_bytes() == b"mtime" {
                if let Some(t) = parse_pax_time(ext.value_bytes()) {
                    return Ok(t);
                }
            }
        }
    }
    let secs = entry.header().mtime()?;
    // A GNU base-256 mtime can exceed what a SystemTime holds.
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .ok_or_else(|| {
            let name = entry.path_bytes().into_owned();
            unsafe_path(&format!("modification time {secs} out of range"), &name)
        })
}

/// `"1700000000.25"`, `"-1.5"`, `"42"` → a time (decimal, to the nanosecond).
fn parse_pax_time(value: &[u8]) -> Option<SystemTime> {
    let s = std::str::from_utf8(value).ok()?;
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = whole.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if digits.is_empty() {
        0
    } else {
        format!("{digits:0<9}").parse().ok()?
    };
    let d = Duration::new(secs, nanos);
    if neg {
        UNIX_EPOCH.checked_sub(d)
    } else {
        UNIX_EPOCH.checked_add(d)
    }
}

/// The decompressed tar stream, shared by the `tar` crate, which reads the
/// headers (and long names, PAX records) through it, and the extractor, which
/// writes each regular file's data straight from the stream's buffers
/// ([`SharedStream::member_data`]) instead of having the crate copy every byte into
/// a buffer first (7% of a base restore's CPU; docs/benchmarks.md, "Base
/// restore: file data written straight from the stream").
///
/// What the extractor takes behind the crate's back is owed to the crate,
/// which still counts that data as unread: it skips a member's unread data
/// by reading and discarding it (`tar::Archive` over a stream that cannot
/// seek), and those reads are answered from `owed`, without touching the
/// stream, before the member's padding is read for real.
struct SharedStream<R> {
    shared: Rc<RefCell<Shared<R>>>,
}

struct Shared<R> {
    reader: R,
    /// Bytes taken by the extractor that the crate has yet to skip.
    owed: u64,
}

impl<R> Clone for SharedStream<R> {
    fn clone(&self) -> Self {
        SharedStream {
            shared: self.shared.clone(),
        }
    }
}

impl<R: BufRead> SharedStream<R> {
    fn new(reader: R) -> Self {
        SharedStream {
            shared: Rc::new(RefCell::new(Shared { reader, owed: 0 })),
        }
    }

    /// Hands `write` the next `size` bytes (the data of the member whose
    /// header the crate just read), straight from the stream's buffers, and
    /// owes what it took to the crate. Fails unless all of them were there.
    fn member_data(
        &self,
        size: u64,
        write: impl FnOnce(&mut dyn BufRead) -> io::Result<u64>,
    ) -> io::Result<u64> {
        let mut shared = self.shared.try_borrow_mut().map_err(in_use)?;
        let shared = &mut *shared;
        let mut data = (&mut shared.reader).take(size);
        let written = write(&mut data);
        let left = data.limit();
        shared.owed += size - left;
        let written = written?;
        if left > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside a member's data",
            ));
        }
        Ok(written)
    }
}

/// The stream is read by one side at a time; this is never met.
fn in_use(_: std::cell::BorrowMutError) -> io::Error {
    io::Error::other("the tar stream is read from two places at once")
}

impl<R: BufRead> Read for SharedStream<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut shared = self.shared.try_borrow_mut().map_err(in_use)?;
        if shared.owed > 0 {
            // The crate discards what it reads here (see above).
            let n = shared.owed.min(buf.len() as u64);
            shared.owed -= n;
            return Ok(n as usize);
        }
        shared.reader.read(buf)
    }
}

/// Extracts one tar stream (already decompressed) into `dest`, which is
/// created if missing. Stops at the end-of-archive marker.
pub fn extract_tar<R: BufRead>(reader: R, dest: &Path) -> io::Result<ExtractStats> {
    fs::create_dir_all(dest)?;
    let stream = SharedStream::new(reader);
    let mut archive = tar::Archive::new(stream.clone());
    let mut x = Extractor {
        dest,
        stream,
        known_dirs: HashSet::new(),
        dir_attrs: Vec::new(),
        stats: ExtractStats::default(),
        large_writes: LargeWrites::default(),
    };
    for entry in archive.entries()? {
        let entry = entry?;
        let name = entry.path_bytes().into_owned();
        x.entry(entry, &name).map_err(|e| member_error(e, &name))?;
    }
    x.finish_dirs()?;
    Ok(x.stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_made_meanwhile_is_accepted_anything_else_refused() {
        let dir = std::env::temp_dir().join(format!("barnacle-make-dir-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("there")).unwrap();
        fs::write(dir.join("file"), b"x").unwrap();
        make_dir(&dir.join("new"), 0o700, "refused", b"new").unwrap();
        make_dir(&dir.join("there"), 0o700, "refused", b"there").unwrap();
        let err = make_dir(&dir.join("file"), 0o700, "refused", b"file").unwrap_err();
        assert_eq!(err.to_string(), "refused: file");
        fs::remove_dir_all(&dir).unwrap();
    }

    /// Two parts of one backup extracted at once into one tree, both with
    /// files in directories neither has created yet (a restore with -J 2).
    #[test]
    fn parts_extracted_in_parallel_share_their_directories() {
        let dest = std::env::temp_dir().join(format!("barnacle-parts-{}", std::process::id()));
        let part = |tag: &str| {
            let mut b = tar::Builder::new(Vec::new());
            for i in 0..200 {
                let data = format!("{tag}{i}");
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o600);
                h.set_mtime(1_700_000_000);
                h.set_entry_type(EntryType::Regular);
                let path = format!("base/{}/{}/{tag}{i}", i % 7, i % 3);
                b.append_data(&mut h, path, data.as_bytes()).unwrap();
            }
            b.into_inner().unwrap()
        };
        for _ in 0..20 {
            let _ = fs::remove_dir_all(&dest);
            let (a, b) = (part("a"), part("b"));
            std::thread::scope(|s| {
                let one = s.spawn(|| extract_tar(&a[..], &dest));
                let two = s.spawn(|| extract_tar(&b[..], &dest));
                assert_eq!(one.join().unwrap().unwrap().files, 200);
                assert_eq!(two.join().unwrap().unwrap().files, 200);
            });
            assert_eq!(fs::read(dest.join("base/6/2/b146")).unwrap(), b"b146");
        }
        fs::remove_dir_all(&dest).unwrap();
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(components(b"./").unwrap(), Vec::<&[u8]>::new());
        assert_eq!(components(b"./a//b/").unwrap(), vec![&b"a"[..], b"b"]);
        assert!(components(b"/etc/passwd").is_err());
        assert!(components(b"a/../../x").is_err());
        assert!(components(b"..").is_err());
    }

    #[test]
    fn pax_times_parse_to_the_nanosecond() {
        let t = parse_pax_time(b"1700000000.1234567").unwrap();
        assert_eq!(
            t.duration_since(UNIX_EPOCH).unwrap(),
            Duration::new(1_700_000_000, 123_456_700)
        );
        assert_eq!(
            parse_pax_time(b"42"),
            Some(UNIX_EPOCH + Duration::from_secs(42))
        );
        assert!(parse_pax_time(b"-1.5").is_some());
        assert!(parse_pax_time(b"x").is_none());
    }

    /// A one-member archive whose header claims `mtime` (GNU base-256 when
    /// it does not fit in octal).
    fn archive_with_mtime(mtime: u64) -> Vec<u8> {
        let mut header = tar::Header::new_gnu();
        header.set_path("f").unwrap();
        header.set_size(1);
        header.set_mode(0o600);
        header.set_entry_type(EntryType::Regular);
        header.set_mtime(mtime);
        header.set_cksum();
        let mut out = header.as_bytes().to_vec();
        out.push(b'x');
        out.resize(out.len() + 511 + 1024, 0);
        out
    }

    #[test]
    fn an_mtime_past_what_the_clock_holds_is_an_error_not_a_panic() {
        let dest = std::env::temp_dir().join(format!("barnacle-tar-mtime-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dest);
        let ok = extract_tar(&archive_with_mtime(1_700_000_000)[..], &dest).unwrap();
        assert_eq!(ok.files, 1);
        fs::remove_dir_all(&dest).unwrap();
        let err = extract_tar(&archive_with_mtime(u64::MAX)[..], &dest).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        let _ = fs::remove_dir_all(&dest);
    }
}
