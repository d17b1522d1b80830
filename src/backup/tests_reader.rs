//! Extraction of archives written by Python's `tarfile` (fixtures made by
//! `testdata/make_fixtures.py`) and of hostile archives.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use super::tests::TempDir;
use super::*;

const PAX: &[u8] = include_bytes!("testdata/python_pax.tar");
const GNU: &[u8] = include_bytes!("testdata/python_gnu.tar");
const LONG: &str = "base/dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd/ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

fn mtime(p: &Path) -> Duration {
    fs::symlink_metadata(p)
        .unwrap()
        .modified()
        .unwrap()
        .duration_since(UNIX_EPOCH)
        .unwrap()
}

#[test]
fn python_archives_extract_with_names_links_modes_and_times() {
    for (fixture, tag) in [(PAX, "pax"), (GNU, "gnu")] {
        let t = TempDir::new(tag);
        let dest = t.path().join("out");
        let stats = extract_tar(fixture, &dest).unwrap();
        assert_eq!(
            (stats.files, stats.dirs, stats.symlinks, stats.hardlinks),
            (4, 2, 1, 1),
            "{tag}"
        );
        assert_eq!(fs::read(dest.join("PG_VERSION")).unwrap(), b"15\n");
        assert_eq!(
            fs::read(dest.join(LONG)).unwrap(),
            b"long name\n".repeat(100)
        );
        assert_eq!(
            fs::read(dest.join("caf\u{e9}/\u{fc}n\u{ef}code.txt")).unwrap(),
            b"utf-8 name\n"
        );
        assert_eq!(
            fs::read_link(dest.join("base/link_to_version")).unwrap(),
            Path::new("../PG_VERSION")
        );
        let hard = fs::metadata(dest.join("base/hard")).unwrap();
        assert_eq!(
            hard.ino(),
            fs::metadata(dest.join("PG_VERSION")).unwrap().ino()
        );
        let mode = |p: &str| fs::metadata(dest.join(p)).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(""), 0o700, "{tag}");
        assert_eq!(mode("base"), 0o750);
        assert_eq!(mode(LONG), 0o640);
        assert_eq!(mode("PG_VERSION"), 0o600);
        assert_eq!(mtime(&dest.join("base/empty")), Duration::ZERO);
        assert_eq!(mtime(&dest.join("base")).as_secs(), 1_600_000_000);
        if tag == "pax" {
            // Fractions travel in the pax mtime record.
            assert_eq!(
                mtime(&dest.join("base")),
                Duration::from_millis(1_600_000_000_500)
            );
            assert_eq!(
                mtime(&dest.join("PG_VERSION")),
                Duration::from_millis(1_700_000_000_250)
            );
        }
    }
}

/// A ustar header with a raw name (the `tar` crate's builder refuses
/// hostile names, which is the point here).
fn raw(name: &[u8], kind: tar::EntryType, link: &[u8], data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_size(data.len() as u64);
    h.set_mtime(0);
    let bytes = h.as_mut_bytes();
    bytes[..name.len()].copy_from_slice(name);
    bytes[157..157 + link.len()].copy_from_slice(link);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

fn archive(members: &[Vec<u8>]) -> Vec<u8> {
    let mut out: Vec<u8> = members.concat();
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn hostile_names_are_refused() {
    let t = TempDir::new("hostile");
    let dest = t.path().join("out");
    use tar::EntryType::*;
    for bad in [
        archive(&[raw(b"/tmp/barnacle-evil", Regular, b"", b"x")]),
        archive(&[raw(b"a/../../evil", Regular, b"", b"x")]),
        archive(&[raw(b"..", Directory, b"", b"")]),
        archive(&[raw(b"h", Link, b"../outside", b"")]),
        archive(&[raw(b"h", Link, b"missing", b"")]),
    ] {
        assert!(extract_tar(&bad[..], &dest).is_err());
    }
    assert!(!t.path().join("evil").exists());
    assert!(!Path::new("/tmp/barnacle-evil").exists());
}

#[test]
fn symlinks_in_the_archive_are_never_followed() {
    let t = TempDir::new("symlinks");
    let outside = t.path().join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::write(outside.join("secret"), b"keep").unwrap();
    let dest = t.path().join("out");
    use tar::EntryType::*;
    let out = outside.to_str().unwrap().as_bytes();

    // Through a symlinked directory: refused, nothing written outside.
    let a = archive(&[
        raw(b"esc", Symlink, out, b""),
        raw(b"esc/pwned", Regular, b"", b"x"),
    ]);
    assert!(extract_tar(&a[..], &dest).is_err());
    assert!(!outside.join("pwned").exists());

    // Over a symlink to a file: the link is replaced, the target untouched.
    let secret = outside.join("secret");
    let b = archive(&[
        raw(b"s", Symlink, secret.to_str().unwrap().as_bytes(), b""),
        raw(b"s", Regular, b"", b"new"),
    ]);
    let dest2 = t.path().join("out2");
    extract_tar(&b[..], &dest2).unwrap();
    assert_eq!(fs::read(&secret).unwrap(), b"keep");
    assert_eq!(fs::read(dest2.join("s")).unwrap(), b"new");
    assert!(
        !fs::symlink_metadata(dest2.join("s"))
            .unwrap()
            .file_type()
            .is_symlink()
    );

    // A hard link through a symlinked directory: refused.
    let c = archive(&[
        raw(b"d", Symlink, out, b""),
        raw(b"h", Link, b"d/secret", b""),
    ]);
    assert!(extract_tar(&c[..], &t.path().join("out3")).is_err());
}

#[test]
fn specials_are_skipped_and_extraction_stops_at_the_end_marker() {
    let t = TempDir::new("specials");
    use tar::EntryType::*;
    let mut a = archive(&[raw(b"fifo", Fifo, b"", b""), raw(b"f", Regular, b"", b"1")]);
    a.extend_from_slice(b"trailing garbage after the end-of-archive blocks");
    let stats = extract_tar(&a[..], t.path()).unwrap();
    assert_eq!((stats.files, stats.skipped, stats.bytes), (1, 1, 1));
    assert!(!t.path().join("fifo").exists());
}

/// Every file of `dir` (recursively, symlinks not followed): path → content.
fn tree(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let kind = fs::symlink_metadata(&p).unwrap().file_type();
            let rel = p.strip_prefix(dir).unwrap().display().to_string();
            if kind.is_dir() {
                todo.push(p);
            } else if kind.is_file() {
                out.insert(rel, fs::read(&p).unwrap());
            } else {
                let target = fs::read_link(&p).unwrap().into_os_string();
                out.insert(rel, std::os::unix::ffi::OsStringExt::into_vec(target));
            }
        }
    }
    out
}

/// File data is written straight from the stream's pieces, whatever their
/// size and however they fall across members, padding and long-name or PAX
/// records: every file whole, every header found where it is.
#[test]
fn file_data_is_written_from_the_stream_s_pieces_of_any_size() {
    use tar::EntryType::*;
    let sizes = [0usize, 1, 511, 512, 513, 4096, 70_001];
    let data = |i: usize, n: usize| -> Vec<u8> { (0..n).map(|j| (j * 7 + i) as u8).collect() };
    let members: Vec<Vec<u8>> = (sizes.iter().enumerate())
        .map(|(i, &n)| raw(format!("f{i}").as_bytes(), Regular, b"", &data(i, n)))
        .collect();
    let made = archive(&members);
    for (tag, bytes) in [("made", &made[..]), ("pax", PAX), ("gnu", GNU)] {
        let whole = TempDir::new("pieces-whole");
        extract_tar(bytes, whole.path()).unwrap();
        let expected = tree(whole.path());
        assert!(!expected.is_empty(), "{tag}");
        if tag == "made" {
            for (i, &n) in sizes.iter().enumerate() {
                assert_eq!(expected[&format!("f{i}")], data(i, n), "f{i}");
            }
        }
        for piece in [1, 7, 100, 512, 4096] {
            let t = TempDir::new("pieces");
            let stats = extract_tar(io::BufReader::with_capacity(piece, bytes), t.path())
                .unwrap_or_else(|e| panic!("{tag}, pieces of {piece}: {e}"));
            assert_eq!(tree(t.path()), expected, "{tag}, pieces of {piece}");
            if tag == "made" {
                assert_eq!(stats.files, sizes.len() as u64);
                assert_eq!(stats.bytes, sizes.iter().sum::<usize>() as u64);
            }
        }
    }
}

/// An archive that ends inside a member's data is an error naming the member.
#[test]
fn an_archive_cut_inside_a_member_s_data_is_refused() {
    use tar::EntryType::*;
    let a = archive(&[
        raw(b"first", Regular, b"", &[1u8; 700]),
        raw(b"second", Regular, b"", &[2u8; 5000]),
    ]);
    // The end blocks, the second member's padding and 100 of its bytes gone.
    let cut = &a[..a.len() - 1024 - (5120 - 5000) - 100];
    let t = TempDir::new("cut");
    let err = extract_tar(io::BufReader::with_capacity(333, cut), t.path()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof, "{err}");
    assert!(err.to_string().contains("second"), "{err}");
    assert_eq!(fs::read(t.path().join("first")).unwrap(), vec![1u8; 700]);
}
