//! Writing PGDATA and tablespaces as Barman-equivalent tar parts.
//!
//! Mirrors Barman 3.19.1's `CloudBackupUploader._backup_data_files` and
//! `_backup_config_files`, `CloudUploadController.upload_directory`,
//! `add_file`, `add_fileobj`, `_get_tar` and `TarFileIgnoringTruncate`
//! (`barman/cloud.py`), on top of Python's `tarfile` (`PAX_FORMAT`):
//!
//! * the walk is `os.walk` top-down order: a directory, then its files in
//!   `readdir` order, then its subdirectories in `readdir` order; a directory
//!   that cannot be listed is silently skipped; symlinks to directories are
//!   neither followed nor stored; other symlinks are stored as symlinks;
//! * names: `./` for the root, `./name` for top-level files, `dir/…` below;
//! * each member is read with `lstat` at the time it is added: one that has
//!   vanished is skipped; a regular file is stored with its stat size, padded
//!   with zeros if it shrank, cut if it grew; hard links inside one part are
//!   stored as links to the first name (per part, as `tarfile.inodes`);
//! * before each member, when the current part's compressed size is already
//!   above `max_part_size`, the part is ended (end-of-archive, padded to a
//!   10240-byte record) and the sink moves to the next part;
//! * PGDATA: the walk (with [`PathFilter::pgdata`]), then `global/pg_control`,
//!   then the configuration files outside PGDATA under their base name;
//!   later [`append_backup_label`] adds `backup_label` (mode 0644, uid 0, gid
//!   of PGDATA, mtime 0, no user/group names) and ends the archive.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::exclude::{PathFilter, tablespace_rules};
use super::names::NameCache;
use super::tar_header::{BLOCK, Kind, Member, Mtime, RECORD, encode, py_chars};

/// Where tar bytes go: the current part's compressed stream, and a way to
/// close it and open the next one.
pub trait PartSink: Write {
    /// Compressed bytes of the current part emitted so far.
    fn compressed_len(&self) -> u64;
    /// Ends the current part (its tar is already complete) and starts the next.
    fn next_part(&mut self) -> io::Result<()>;
}

/// What one walk stored and skipped.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TarStats {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hardlinks: u64,
    /// FIFOs and device nodes.
    pub specials: u64,
    /// File data bytes stored (stat sizes).
    pub bytes: u64,
    /// Members that disappeared before they could be read.
    pub vanished: u64,
    /// Files that shrank while being read (padded with zeros).
    pub padded: u64,
    /// Sockets and other types `tarfile` cannot store.
    pub unsupported: u64,
    /// Directories that could not be listed (skipped, like `os.walk`).
    pub unlisted_dirs: u64,
    /// Parts started during the call (rotations).
    pub new_parts: u32,
}

impl TarStats {
    /// Members written.
    pub fn entries(&self) -> u64 {
        self.files + self.dirs + self.symlinks + self.hardlinks + self.specials
    }
}

enum Added {
    Yes,
    Vanished,
}

/// A tar archive split in parts over a [`PartSink`].
pub struct TarArchive<S: PartSink> {
    sink: S,
    max_part_size: u64,
    offset: u64,
    part: u32,
    inodes: HashMap<(u64, u64), Vec<u8>>,
    names: NameCache,
    buf: Vec<u8>,
}

impl<S: PartSink> TarArchive<S> {
    /// An archive whose parts are cut once they exceed `max_part_size`
    /// compressed bytes (checked before each member).
    pub fn new(sink: S, max_part_size: u64) -> Self {
        TarArchive {
            sink,
            max_part_size,
            offset: 0,
            part: 0,
            inodes: HashMap::new(),
            names: NameCache::default(),
            buf: vec![0; 256 * 1024],
        }
    }

    /// The index of the current part (0 for the first).
    pub fn part_index(&self) -> u32 {
        self.part
    }

    pub fn sink(&self) -> &S {
        &self.sink
    }

    pub fn sink_mut(&mut self) -> &mut S {
        &mut self.sink
    }

    /// Ends the archive (two zero blocks, padded to a 10240-byte record) and
    /// returns the sink, whose current part the caller then finishes.
    pub fn finish(mut self) -> io::Result<S> {
        self.end_of_archive()?;
        Ok(self.sink)
    }

    fn write(&mut self, data: &[u8]) -> io::Result<()> {
        self.sink.write_all(data)?;
        self.offset += data.len() as u64;
        Ok(())
    }

    fn zeros(&mut self, mut n: u64) -> io::Result<()> {
        const ZERO: [u8; 4096] = [0; 4096];
        while n > 0 {
            let k = n.min(ZERO.len() as u64) as usize;
            self.write(&ZERO[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    fn end_of_archive(&mut self) -> io::Result<()> {
        self.zeros(2 * BLOCK as u64)?;
        let rem = self.offset % RECORD;
        if rem > 0 {
            self.zeros(RECORD - rem)?;
        }
        Ok(())
    }

    /// `_get_tar`: start the next part if this one is already too big. A
    /// part without members is never cut (a gzip or LZ4 header alone may
    /// exceed a tiny limit; Barman's buffered count never does).
    fn rotate_if_full(&mut self, stats: &mut TarStats) -> io::Result<()> {
        if self.offset > 0 && self.sink.compressed_len() > self.max_part_size {
            self.end_of_archive()?;
            self.sink.next_part()?;
            self.offset = 0;
            self.part += 1;
            self.inodes.clear();
            stats.new_parts += 1;
        }
        Ok(())
    }

    /// Adds a member with in-memory content (`TarFile.addfile`).
    pub fn add_bytes(&mut self, member: &Member, data: &[u8]) -> io::Result<()> {
        self.write(&encode(member))?;
        self.write(data)?;
        self.zeros(pad(data.len() as u64))
    }

    /// `TarFile.add(path, arcname, recursive=False)` with Barman's
    /// truncation handling. A vanished path is reported, not an error.
    fn add_path(&mut self, path: &Path, arcname: &[u8], st: &mut TarStats) -> io::Result<Added> {
        let meta = match fs::symlink_metadata(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Added::Vanished),
            r => r?,
        };
        let ft = meta.file_type();
        let mut m = Member {
            name: arcname.to_vec(),
            kind: Kind::File,
            mode: meta.mode(),
            uid: u64::from(meta.uid()),
            gid: u64::from(meta.gid()),
            size: 0,
            mtime: Mtime::from_stat(meta.mtime(), meta.mtime_nsec()),
            linkname: Vec::new(),
            uname: self.names.user(meta.uid()),
            gname: self.names.group(meta.gid()),
            devmajor: 0,
            devminor: 0,
        };
        if ft.is_file() {
            let inode = (meta.ino(), meta.dev());
            if let Some(first) = self.inodes.get(&inode).filter(|_| meta.nlink() > 1) {
                if first.as_slice() != arcname {
                    m.kind = Kind::HardLink;
                    m.linkname = first.clone();
                    st.hardlinks += 1;
                    return self.add_bytes(&m, &[]).map(|()| Added::Yes);
                }
            }
            let file = match File::open(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Added::Vanished),
                r => r?,
            };
            m.size = meta.len();
            self.write(&encode(&m))?;
            if self.copy_padded(file, m.size)? {
                st.padded += 1;
            }
            if inode.0 != 0 {
                self.inodes.insert(inode, arcname.to_vec());
            }
            st.files += 1;
            st.bytes += m.size;
            return Ok(Added::Yes);
        }
        if ft.is_dir() {
            m.kind = Kind::Dir;
            st.dirs += 1;
        } else if ft.is_symlink() {
            m.kind = Kind::Symlink;
            m.linkname = match fs::read_link(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Added::Vanished),
                r => r?.as_os_str().as_bytes().to_vec(),
            };
            st.symlinks += 1;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
            m.kind = if ft.is_fifo() {
                Kind::Fifo
            } else if ft.is_char_device() {
                Kind::Char
            } else {
                Kind::Block
            };
            let rdev = meta.rdev();
            m.devmajor = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
            m.devminor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
            st.specials += 1;
        } else {
            st.unsupported += 1;
            return Ok(Added::Yes);
        }
        self.add_bytes(&m, &[]).map(|()| Added::Yes)
    }

    /// Copies exactly `size` bytes of `file` (zeros past its end) and the
    /// block padding. True when the file was shorter than `size`.
    fn copy_padded(&mut self, mut file: File, size: u64) -> io::Result<bool> {
        let mut buf = std::mem::take(&mut self.buf);
        let result = (|| {
            let mut remaining = size;
            let mut short = false;
            while remaining > 0 {
                let want = remaining.min(buf.len() as u64) as usize;
                let mut got = 0;
                while !short && got < want {
                    match file.read(&mut buf[got..want]) {
                        Ok(0) => short = true,
                        Ok(n) => got += n,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                buf[got..want].fill(0);
                self.write(&buf[..want])?;
                remaining -= want as u64;
            }
            self.zeros(pad(size))?;
            Ok(short)
        })();
        self.buf = buf;
        result
    }
}

fn pad(len: u64) -> u64 {
    (BLOCK as u64 - len % BLOCK as u64) % BLOCK as u64
}

/// `os.path.join(tar_root, name)`.
fn join(rel: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = rel.to_vec();
    out.push(b'/');
    out.extend_from_slice(name);
    out
}

/// The characters a rule is matched against (undecodable bytes never match
/// a rule's characters).
fn rule_view(rel: &[u8]) -> Vec<char> {
    py_chars(rel)
        .into_iter()
        .map(|c| c.unwrap_or('\u{fffd}'))
        .collect()
}

/// `upload_directory`: walks `root` in `os.walk` order, adding what `filter`
/// allows.
fn walk_tree<S: PartSink>(
    tar: &mut TarArchive<S>,
    root: &Path,
    filter: &PathFilter,
    st: &mut TarStats,
) -> io::Result<()> {
    let mut stack: Vec<(PathBuf, Vec<u8>)> = vec![(root.to_path_buf(), b".".to_vec())];
    let mut first = true;
    while let Some((dir, rel)) = stack.pop() {
        // os.walk does not descend into symlinks (checked when it gets there).
        if !first && fs::symlink_metadata(&dir).is_ok_and(|m| m.file_type().is_symlink()) {
            continue;
        }
        first = false;
        let Ok((subdirs, files)) = list_dir(&dir) else {
            st.unlisted_dirs += 1;
            continue;
        };
        for d in subdirs.iter().rev() {
            let child_rel = if rel == b"." {
                d.clone()
            } else {
                join(&rel, d)
            };
            stack.push((dir.join(std::ffi::OsStr::from_bytes(d)), child_rel));
        }
        if !filter.allowed_chars(&rule_view(&rel), true) {
            continue;
        }
        tar.rotate_if_full(st)?;
        if let Added::Vanished = tar.add_path(&dir, &rel, st)? {
            st.vanished += 1;
            continue;
        }
        for f in files {
            let arcname = join(&rel, &f);
            if !filter.allowed_chars(&rule_view(&arcname), false) {
                continue;
            }
            tar.rotate_if_full(st)?;
            let path = dir.join(std::ffi::OsStr::from_bytes(&f));
            if let Added::Vanished = tar.add_path(&path, &arcname, st)? {
                st.vanished += 1;
            }
        }
    }
    Ok(())
}

/// `os.scandir` split as `os.walk` does: entries that are directories
/// (following symlinks) and the rest, in `readdir` order. Any error while
/// listing loses the whole directory, as in `os.walk`.
type Listing = (Vec<Vec<u8>>, Vec<Vec<u8>>);
fn list_dir(dir: &Path) -> io::Result<Listing> {
    let (mut dirs, mut files) = (Vec::new(), Vec::new());
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_symlink() => fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()),
            Ok(t) => t.is_dir(),
            Err(_) => false,
        };
        let name = entry.file_name().as_bytes().to_vec();
        if is_dir {
            dirs.push(name)
        } else {
            files.push(name)
        }
    }
    Ok((dirs, files))
}

/// A tablespace as Barman lists it for exclusion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablespaceRef {
    pub oid: u32,
    /// `pg_tablespace_location(oid)`.
    pub location: PathBuf,
}

/// A configuration file that lives outside PGDATA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    pub path: PathBuf,
    /// Skipped when missing (Barman: the ident file).
    pub optional: bool,
}

/// What goes into the `data` archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgdataTar {
    /// `data_directory` as PostgreSQL reports it (followed if a symlink).
    pub pgdata: PathBuf,
    /// Every tablespace of the cluster; those inside PGDATA and their
    /// `pg_tblspc/<oid>` entries are excluded from the walk.
    pub tablespaces: Vec<TablespaceRef>,
    /// Configuration files outside PGDATA, stored at the root by base name.
    pub extra_root_files: Vec<ExtraFile>,
}

/// Writes PGDATA, then `global/pg_control`, then the extra files. The
/// archive stays open for [`append_backup_label`].
pub fn write_pgdata_tar<S: PartSink>(
    spec: &PgdataTar,
    tar: &mut TarArchive<S>,
) -> io::Result<TarStats> {
    let mut st = TarStats::default();
    let reported = spec.pgdata.to_string_lossy();
    let rules = tablespace_rules(
        &reported,
        spec.tablespaces
            .iter()
            .map(|t| (t.oid, t.location.to_str().unwrap_or("\u{fffd}"))),
    );
    let pgdata = if fs::symlink_metadata(&spec.pgdata)?.file_type().is_symlink() {
        fs::canonicalize(&spec.pgdata)?
    } else {
        spec.pgdata.clone()
    };
    walk_tree(tar, &pgdata, &PathFilter::pgdata(&rules), &mut st)?;

    let required = |added: Added, path: &Path| match added {
        Added::Yes => Ok(()),
        Added::Vanished => Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is missing", path.display()),
        )),
    };
    tar.rotate_if_full(&mut st)?;
    let control = pgdata.join("global/pg_control");
    required(
        tar.add_path(&control, b"global/pg_control", &mut st)?,
        &control,
    )?;
    for extra in &spec.extra_root_files {
        if extra.optional && !extra.path.exists() {
            continue;
        }
        let name = extra.path.file_name().unwrap_or(extra.path.as_os_str());
        tar.rotate_if_full(&mut st)?;
        required(
            tar.add_path(&extra.path, name.as_bytes(), &mut st)?,
            &extra.path,
        )?;
    }
    Ok(st)
}

/// Appends `backup_label` as the last member (possibly opening one more part
/// if the current one is full) and ends the archive; returns the sink.
pub fn append_backup_label<S: PartSink>(
    mut tar: TarArchive<S>,
    label: &str,
    pgdata_gid: u32,
) -> io::Result<S> {
    tar.rotate_if_full(&mut TarStats::default())?;
    let member = Member {
        name: b"backup_label".to_vec(),
        kind: Kind::File,
        mode: 0o644,
        uid: 0,
        gid: u64::from(pgdata_gid),
        size: label.len() as u64,
        mtime: Mtime::Int(0),
        linkname: Vec::new(),
        uname: Vec::new(),
        gname: Vec::new(),
        devmajor: 0,
        devminor: 0,
    };
    tar.add_bytes(&member, label.as_bytes())?;
    tar.finish()
}

/// Writes a tablespace's `PG_<major>_*` directory and everything below it
/// (with Barman's filter, see [`PathFilter::tablespace`]). The caller ends
/// the archive with [`TarArchive::finish`]. `entries() == 0` means Barman
/// would not have created this archive at all.
pub fn write_tablespace_tar<S: PartSink>(
    location: &Path,
    pg_major: &str,
    tar: &mut TarArchive<S>,
) -> io::Result<TarStats> {
    let mut st = TarStats::default();
    walk_tree(tar, location, &PathFilter::tablespace(pg_major), &mut st)?;
    Ok(st)
}
