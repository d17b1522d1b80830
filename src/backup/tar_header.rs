//! Tar headers byte for byte as Python 3.11's `tarfile` writes them in
//! `PAX_FORMAT` (Barman's `TarFileIgnoringTruncate`).
//!
//! `TarInfo.create_pax_header`: a member gets a pax `x` header named
//! `././@PaxHeader` when a string field is not ASCII or too long (`path` >
//! 100 characters, `linkpath` > 100, `uname`/`gname` > 32) or a number does
//! not fit its octal field or is a float. File-system members carry
//! `st_mtime` as a float, so every one of them has a pax header holding
//! `mtime=<repr(float)>`; the ustar field holds `round(mtime)`. Names are
//! stored as-is (no prefix split): the ustar field gets the first 100 bytes
//! of the name with non-ASCII characters replaced by `?`.
//!
//! Names are raw bytes (Unix paths). Where Python would see a `str`, bytes
//! that are not UTF-8 count as one character each (`surrogateescape`) and
//! make the pax header `hdrcharset=BINARY`.

pub const BLOCK: usize = 512;
/// `tarfile.RECORDSIZE`: archives are padded to a multiple of 20 blocks.
pub const RECORD: u64 = 20 * 512;

/// Member types Barman's walk can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    File,
    HardLink,
    Symlink,
    Char,
    Block,
    Dir,
    Fifo,
}

impl Kind {
    fn flag(self) -> u8 {
        match self {
            Kind::File => b'0',
            Kind::HardLink => b'1',
            Kind::Symlink => b'2',
            Kind::Char => b'3',
            Kind::Block => b'4',
            Kind::Dir => b'5',
            Kind::Fifo => b'6',
        }
    }
}

/// A modification time as Python holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mtime {
    /// An `int` (Barman's `backup_label`: 0).
    Int(i64),
    /// `os.stat().st_mtime`: `sec + nsec * 1e-9` as a double.
    Float(f64),
}

impl Mtime {
    /// What CPython's `os.stat` computes for `st_mtime`.
    pub fn from_stat(sec: i64, nsec: i64) -> Mtime {
        Mtime::Float(sec as f64 + nsec as f64 * 1e-9)
    }
}

/// One member's header fields (`TarInfo`).
#[derive(Debug, Clone)]
pub struct Member {
    pub name: Vec<u8>,
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: Mtime,
    pub linkname: Vec<u8>,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub devmajor: u64,
    pub devminor: u64,
}

/// Python's view of bytes as a `str` decoded with `surrogateescape`: the
/// characters, each as `Some(char)` or `None` for an undecodable byte.
pub fn py_chars(bytes: &[u8]) -> Vec<Option<char>> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.extend(s.chars().map(Some));
                break;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.extend(String::from_utf8_lossy(good).chars().map(Some));
                let n = e.error_len().unwrap_or(bad.len());
                out.extend(std::iter::repeat_n(None, n));
                rest = &bad[n..];
            }
        }
    }
    out
}

/// `repr(float)`: the shortest round-trip digits, `.0` for whole numbers,
/// exponent form outside `1e-4 <= |x| < 1e16`.
pub fn py_float_repr(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        let s = format!("{x:e}"); // e.g. 1.5e16, 1e-5
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let s = format!("{x}");
    if s.contains('.') { s } else { s + ".0" }
}

/// `itn(n, digits)` for values that fit: zero-padded octal and a NUL.
fn octal(field: &mut [u8], n: u64) {
    let digits = field.len() - 1;
    let s = format!("{n:0digits$o}");
    field[..digits].copy_from_slice(&s.as_bytes()[s.len() - digits..]);
    field[digits] = 0;
}

/// `stn(s, len, "ascii", "replace")`: non-ASCII characters become `?`.
fn ascii_field(field: &mut [u8], value: &[u8]) {
    let replaced: Vec<u8> = py_chars(value)
        .into_iter()
        .map(|c| match c {
            Some(c) if c.is_ascii() => c as u8,
            _ => b'?',
        })
        .collect();
    let n = replaced.len().min(field.len());
    field[..n].copy_from_slice(&replaced[..n]);
}

/// `_create_header(info, USTAR_FORMAT, "ascii", "replace")`.
#[allow(clippy::too_many_arguments)]
fn ustar_block(
    name: &[u8],
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    kind: u8,
    linkname: &[u8],
    uname: &[u8],
    gname: &[u8],
    dev: Option<(u64, u64)>,
) -> [u8; BLOCK] {
    let mut b = [0u8; BLOCK];
    ascii_field(&mut b[0..100], name);
    octal(&mut b[100..108], u64::from(mode & 0o7777));
    octal(&mut b[108..116], uid);
    octal(&mut b[116..124], gid);
    octal(&mut b[124..136], size);
    octal(&mut b[136..148], mtime);
    b[148..156].copy_from_slice(b"        ");
    b[156] = kind;
    ascii_field(&mut b[157..257], linkname);
    b[257..265].copy_from_slice(b"ustar\x0000");
    ascii_field(&mut b[265..297], uname);
    ascii_field(&mut b[297..329], gname);
    if let Some((major, minor)) = dev {
        octal(&mut b[329..337], major);
        octal(&mut b[337..345], minor);
    }
    let sum: u64 = b.iter().map(|&x| u64::from(x)).sum();
    let s = format!("{sum:06o}");
    b[148..154].copy_from_slice(&s.as_bytes()[s.len() - 6..]);
    b[154] = 0;
    b
}

/// One pax record `"<len> <key>=<value>\n"`, the length counting itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let l = key.len() + value.len() + 3;
    let mut p = 0usize;
    loop {
        let n = l + p.to_string().len();
        if n == p {
            break;
        }
        p = n;
    }
    let mut r = format!("{p} {key}=").into_bytes();
    r.extend_from_slice(value);
    r.push(b'\n');
    r
}

/// The header block(s) of `m`: an optional pax header and its records,
/// then the ustar block. A multiple of 512 bytes.
pub fn encode(m: &Member) -> Vec<u8> {
    let mut name = m.name.clone();
    if m.kind == Kind::Dir && !name.ends_with(b"/") {
        name.push(b'/');
    }
    // String fields: (pax key, value, limit in characters).
    let mut pax: Vec<(&str, Vec<u8>)> = Vec::new();
    for (key, value, limit) in [
        ("path", &name, 100),
        ("linkpath", &m.linkname, 100),
        ("uname", &m.uname, 32),
        ("gname", &m.gname, 32),
    ] {
        let chars = py_chars(value);
        let ascii = chars.iter().all(|c| matches!(c, Some(c) if c.is_ascii()));
        if !ascii || chars.len() > limit {
            pax.push((key, value.clone()));
        }
    }
    // Number fields: (pax key, value, octal digits). Out of range or float:
    // 0 in the ustar field (or the rounded float), the exact value in pax.
    let fits = |v: i128, digits: u32| 0 <= v && v < 8i128.pow(digits - 1);
    let mut fields = [0u64; 4];
    let numbers = [
        ("uid", i128::from(m.uid), 8),
        ("gid", i128::from(m.gid), 8),
        ("size", i128::from(m.size), 12),
    ];
    for (i, (key, v, digits)) in numbers.into_iter().enumerate() {
        if fits(v, digits) {
            fields[i] = v as u64;
        } else {
            pax.push((key, v.to_string().into_bytes()));
        }
    }
    match m.mtime {
        Mtime::Int(v) if fits(i128::from(v), 12) => fields[3] = v as u64,
        Mtime::Int(v) => pax.push(("mtime", v.to_string().into_bytes())),
        Mtime::Float(f) => {
            let r = f.round_ties_even();
            if fits(r as i128, 12) {
                fields[3] = r as u64;
            }
            pax.push(("mtime", py_float_repr(f).into_bytes()));
        }
    }

    let mut out = Vec::with_capacity(3 * BLOCK);
    if !pax.is_empty() {
        let binary = pax.iter().any(|(_, v)| std::str::from_utf8(v).is_err());
        let mut records = Vec::new();
        if binary {
            records.extend_from_slice(b"21 hdrcharset=BINARY\n");
        }
        for (key, value) in &pax {
            records.extend(pax_record(key, value));
        }
        let x = ustar_block(
            b"././@PaxHeader",
            0,
            0,
            0,
            records.len() as u64,
            0,
            b'x',
            b"",
            b"",
            b"",
            None,
        );
        out.extend_from_slice(&x);
        let padded = records.len().div_ceil(BLOCK) * BLOCK;
        records.resize(padded, 0);
        out.extend(records);
    }
    let dev = matches!(m.kind, Kind::Char | Kind::Block).then_some((m.devmajor, m.devminor));
    out.extend_from_slice(&ustar_block(
        &name,
        m.mode,
        fields[0],
        fields[1],
        fields[2],
        fields[3],
        m.kind.flag(),
        &m.linkname,
        &m.uname,
        &m.gname,
        dev,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        assert_eq!(py_float_repr(1700000000.1234567), "1700000000.1234567");
        assert_eq!(py_float_repr(1700000000.0), "1700000000.0");
        assert_eq!(py_float_repr(0.0), "0.0");
        assert_eq!(py_float_repr(-1.5), "-1.5");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(1.5e-5), "1.5e-05");
        // CPython: 1764283746 + 123456789 * 1e-9
        assert_eq!(
            py_float_repr(Mtime::from_stat(1764283746, 123456789).float()),
            "1764283746.1234567"
        );
    }

    impl Mtime {
        fn float(self) -> f64 {
            match self {
                Mtime::Float(f) => f,
                Mtime::Int(i) => i as f64,
            }
        }
    }

    #[test]
    fn pax_record_length_counts_itself() {
        assert_eq!(pax_record("mtime", b"1.5"), b"13 mtime=1.5\n");
        let r = pax_record("path", &[b'a'; 95]);
        assert_eq!(r.len(), 105);
        assert!(r.starts_with(b"105 path="));
        let r = pax_record("k", b"");
        assert_eq!(r, b"5 k=\n");
    }

    #[test]
    fn surrogate_view_counts_bad_bytes_one_each() {
        assert_eq!(py_chars(b"a\xffb").len(), 3);
        assert_eq!(py_chars("é".as_bytes()), vec![Some('é')]);
        assert_eq!(py_chars(b"\xe2\x82"), vec![None, None]);
    }
}
