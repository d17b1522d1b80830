//! WAL cleanup after one backup is deleted: the object-store side of
//! `_remove_wals_for_backup` (cloud_backup_delete.py) over
//! `CloudBackupCatalog.get_wal_prefixes` / `get_wal_paths` /
//! `remove_wal_from_cache` (cloud.py) and `barman.xlog`'s name decoding.
//! The planner decides whether WALs may go at all and which timelines and
//! ranges are protected; this module applies that to the listing.
//!
//! Names: an object under `P/wals/` is a WAL if its basename matches
//! Barman's `_xlog_re` (`TTTTTTTTLLLLLLLLSSSSSSSS[.partial|.OOOOOOOO.backup]`
//! or `TTTTTTTT.history`, hex in either case, and — Python's `$` — one final
//! `\n` allowed), possibly after removing one suffix among `.gz .bz2 .xz
//! .snappy .zst .lz4` (exact case). The cache maps name → key; when two keys
//! give one name the later in listing order wins and the other is never
//! deleted (`X` and `X.gz`: only `X.gz` goes).
//!
//! One pass (per deleted backup):
//! 1. Prefixes: every `P/wals/<DIR>/` currently listed. A DIR that is not 16
//!    hex digits logs "Ignoring malformed WAL object prefix: ..." (every
//!    pass). A prefix whose timeline is protected, or whose (tli, log) lies in
//!    the box of a protected range (numbers compared separately), stays;
//!    otherwise it goes whole if `tli == tli(until) && log < log(until)`.
//! 2. The cache is built on first use, *after* the first pass's prefix
//!    deletions: in a real run the WALs under those prefixes are not in it;
//!    WALs under prefixes deleted by later passes stay cached and are deleted
//!    again one by one by a later pass. In a dry run nothing is deleted, so
//!    every pass lists the original prefixes again (and prints them again).
//! 3. Per WAL: skip those under a prefix just deleted, `.history` (never
//!    deleted by name), protected timelines, names inside a protected range
//!    (`.backup` files compared on their first 24 characters, so
//!    `END.partial` of a range is *not* protected); delete when
//!    `name < until` as plain strings. Deleted names leave the cache.
//!
//! Cost: one sort of the listing; per pass O(P·R + T + C·log n) with P
//! prefixes, R ranges, T timelines and C the cached WALs below `until` on
//! unprotected timelines. Only when `until` or a range bound is `None`
//! (where Python raises on the first comparison it reaches) is every cached
//! WAL visited, in Python's dict order, to find that comparison.

use std::collections::{BTreeMap, HashSet};

use super::planner::{Crash, Mode, Warning};
use crate::pg::WalName;

const COMPRESSIONS: [&str; 6] = [".gz", ".bz2", ".xz", ".snappy", ".zst", ".lz4"];

/// `xlog.decode_segment_name` on a name Barman matched with `_xlog_re`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decoded {
    pub tli: u32,
    /// `None` for history files.
    pub log: Option<u32>,
    pub history: bool,
    pub backup_file: bool,
}

/// `_xlog_re.match(os.path.basename(path))`.
pub(crate) fn decode(path: &str) -> Option<Decoded> {
    let base = path.rsplit('/').next().unwrap_or(path);
    let core = base.strip_suffix('\n').unwrap_or(base);
    let wal = WalName::parse(core).ok()?;
    Some(Decoded {
        tli: wal.timeline(),
        log: wal.log_id(),
        history: wal.is_history(),
        backup_file: wal.is_backup_history(),
    })
}

/// `decode_segment_name(value)` where Python raises for `None` and for
/// names that do not match.
fn decode_field(value: Option<&str>) -> Result<Decoded, Crash> {
    let value = value
        .ok_or_else(|| Crash::new("expected str, bytes or os.PathLike object, not NoneType"))?;
    decode(value).ok_or_else(|| {
        let base = value.rsplit('/').next().unwrap_or(value);
        Crash::new(format!("BadXlogSegmentName:{base}"))
    })
}

/// `xlog.decode_hash_dir`: exactly 16 hex digits.
fn decode_hash_dir(dir: &str) -> Option<(u32, u32)> {
    let hex = |s: &str| -> Option<u32> {
        (s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(s, 16).ok())
            .flatten()
    };
    (dir.len() == 16).then(|| Some((hex(dir.get(..8)?)?, hex(dir.get(8..)?)?)))?
}

/// The WAL name a key stands for (`get_wal_paths`), if any.
fn wal_name(key: &str) -> Option<(&str, Decoded)> {
    let base = key.rsplit('/').next().unwrap_or(key);
    if let Some(d) = decode(base) {
        return Some((base, d));
    }
    let dot = base.rfind('.')?;
    let (root, ext) = base.split_at(dot);
    if !COMPRESSIONS.contains(&ext) {
        return None;
    }
    decode(root).map(|d| (root, d))
}

/// A cached WAL: its key, the top directory it lies under, and its place in
/// Python's dict order.
#[derive(Debug, Clone, Copy)]
struct Entry<'a> {
    path: &'a str,
    dir: Option<&'a str>,
    range_name: &'a str,
    order: usize,
}

/// What one pass is told by the planner.
pub(crate) struct PassRequest<'r> {
    pub protected: &'r HashSet<i64>,
    pub ranges: &'r [(Option<&'r str>, Option<&'r str>)],
    pub until: Option<&'r str>,
}

/// What one pass decided, in Barman's order: prefixes first, then keys.
#[derive(Debug, Default)]
pub(crate) struct PassResult {
    pub prefixes: Vec<String>,
    pub keys: Vec<String>,
    pub warnings: Vec<Warning>,
    pub crash: Option<Crash>,
}

/// The WAL archive as one `barman-cloud-backup-delete` run sees it.
pub(crate) struct WalArchive<'a> {
    mode: Mode,
    root: String,
    keys: Vec<&'a str>,
    /// Live keys per top directory (what a listing with delimiter shows).
    dirs: BTreeMap<&'a str, usize>,
    gone: HashSet<&'a str>,
    gone_dirs: HashSet<&'a str>,
    /// tli → name → entry: the `get_wal_paths` cache without history files.
    cache: Option<BTreeMap<u32, BTreeMap<&'a str, Entry<'a>>>>,
}

impl<'a> WalArchive<'a> {
    /// `wal_keys`: the objects under `root` (`P/wals/`), in any order.
    pub(crate) fn new(mode: Mode, root: String, wal_keys: &'a [String]) -> Self {
        let mut keys: Vec<&'a str> = wal_keys
            .iter()
            .map(String::as_str)
            .filter(|k| k.starts_with(root.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        let mut dirs = BTreeMap::new();
        for key in &keys {
            if let Some(dir) = top_dir(&root, key) {
                *dirs.entry(dir).or_insert(0) += 1;
            }
        }
        WalArchive {
            mode,
            root,
            keys,
            dirs,
            gone: HashSet::new(),
            gone_dirs: HashSet::new(),
            cache: None,
        }
    }

    fn live(&self, key: &str) -> bool {
        self.mode == Mode::DryRun
            || (!self.gone.contains(key)
                && top_dir(&self.root, key).is_none_or(|d| !self.gone_dirs.contains(d)))
    }

    /// Builds the `get_wal_paths` cache from what is listed now.
    fn cache(&mut self) -> &mut BTreeMap<u32, BTreeMap<&'a str, Entry<'a>>> {
        if self.cache.is_none() {
            let mut cache: BTreeMap<u32, BTreeMap<&'a str, Entry<'a>>> = BTreeMap::new();
            let mut order = 0;
            for key in self.keys.iter().copied().filter(|k| self.live(k)) {
                let Some((name, d)) = wal_name(key) else {
                    continue;
                };
                if d.history {
                    continue;
                }
                let entry = Entry {
                    path: key,
                    dir: top_dir(&self.root, key),
                    range_name: if d.backup_file { &name[..24] } else { name },
                    order,
                };
                order += 1;
                cache
                    .entry(d.tli)
                    .or_default()
                    .entry(name)
                    .and_modify(|e| {
                        e.path = entry.path;
                        e.dir = entry.dir;
                    })
                    .or_insert(entry);
            }
            self.cache = Some(cache);
        }
        self.cache.get_or_insert_with(BTreeMap::new)
    }

    /// One `_remove_wals_for_backup` pass that may remove WALs.
    pub(crate) fn pass(&mut self, req: &PassRequest<'_>) -> PassResult {
        let mut out = PassResult::default();
        let prefixes = match self.deletable_prefixes(req, &mut out.warnings) {
            Ok(p) => p,
            Err(crash) => {
                out.crash = Some(crash);
                return out;
            }
        };
        if self.mode == Mode::Execute {
            self.gone_dirs.extend(prefixes.iter().copied());
            for p in &prefixes {
                self.dirs.insert(p, 0);
            }
        }
        out.prefixes = prefixes.iter().map(|p| p.to_string()).collect();
        let deleted: HashSet<&str> = prefixes.iter().copied().collect();
        let chosen = match self.choose(req, &deleted) {
            Ok(c) => c,
            Err(crash) => {
                out.crash = Some(crash);
                return out;
            }
        };
        let cache = self.cache();
        let mut keys: Vec<&'a str> = Vec::with_capacity(chosen.len());
        for (tli, name) in chosen {
            if let Some(e) = cache.get_mut(&tli).and_then(|m| m.remove(name)) {
                keys.push(e.path);
            }
        }
        keys.sort_unstable();
        if self.mode == Mode::Execute {
            for key in &keys {
                if self.live(key) {
                    if let Some(n) = top_dir(&self.root, key).and_then(|d| self.dirs.get_mut(d)) {
                        *n = n.saturating_sub(1);
                    }
                    self.gone.insert(key);
                }
            }
        }
        out.keys = keys.into_iter().map(str::to_string).collect();
        out
    }

    fn deletable_prefixes(
        &self,
        req: &PassRequest<'_>,
        warnings: &mut Vec<Warning>,
    ) -> Result<Vec<&'a str>, Crash> {
        let mut out = Vec::new();
        for (dir, _) in self.dirs.iter().filter(|(_, n)| **n > 0) {
            let hash = &dir[self.root.len()..dir.len() - 1];
            let Some((tli, log)) = decode_hash_dir(hash) else {
                warnings.push(Warning::MalformedWalPrefix {
                    prefix: dir.to_string(),
                });
                continue;
            };
            if req.protected.contains(&i64::from(tli)) {
                continue;
            }
            let mut in_range = false;
            for (begin, end) in req.ranges {
                let b = decode_field(*begin)?;
                let e = decode_field(*end)?;
                if tli < b.tli {
                    continue;
                }
                if log < b.log.ok_or_else(|| int_none(">="))? {
                    continue;
                }
                if tli > e.tli {
                    continue;
                }
                if log <= e.log.ok_or_else(|| int_none("<="))? {
                    in_range = true;
                    break;
                }
            }
            if in_range {
                continue;
            }
            let u = decode_field(req.until)?;
            if tli == u.tli && log < u.log.ok_or_else(|| int_none("<"))? {
                out.push(*dir);
            }
        }
        Ok(out)
    }

    /// The cached names this pass deletes.
    fn choose(
        &mut self,
        req: &PassRequest<'_>,
        deleted: &HashSet<&str>,
    ) -> Result<Vec<(u32, &'a str)>, Crash> {
        let ranges: Option<Vec<(&str, &str)>> =
            req.ranges.iter().map(|(b, e)| Some(((*b)?, (*e)?))).collect();
        let protected = req.protected;
        let cache = self.cache();
        let under_deleted = |e: &Entry<'_>| e.dir.is_some_and(|d| deleted.contains(d));
        let mut chosen = Vec::new();
        if let (Some(until), Some(ranges)) = (req.until, ranges) {
            let in_ranges = |r: &str| ranges.iter().any(|(b, e)| r >= *b && r <= *e);
            for (tli, names) in cache.iter() {
                if protected.contains(&i64::from(*tli)) {
                    continue;
                }
                for (name, e) in names.range::<str, _>(..until) {
                    if !under_deleted(e) && !in_ranges(e.range_name) {
                        chosen.push((*tli, *name));
                    }
                }
            }
            return Ok(chosen);
        }
        // Some bound is None: Python raises at the first comparison with it
        // that a WAL reaches, in dict order.
        let mut all: Vec<(u32, &'a str, Entry<'a>)> = cache
            .iter()
            .flat_map(|(tli, m)| m.iter().map(move |(n, e)| (*tli, *n, *e)))
            .collect();
        all.sort_by_key(|(_, _, e)| e.order);
        for (tli, name, e) in all {
            if under_deleted(&e) || protected.contains(&i64::from(tli)) {
                continue;
            }
            let mut in_range = false;
            for (begin, end) in req.ranges {
                let begin = begin.ok_or_else(|| str_none(">="))?;
                if e.range_name >= begin && e.range_name <= end.ok_or_else(|| str_none("<="))? {
                    in_range = true;
                    break;
                }
            }
            if !in_range && name < req.until.ok_or_else(|| str_none("<"))? {
                chosen.push((tli, name));
            }
        }
        Ok(chosen)
    }
}

/// `P/wals/<DIR>/` for a key below a directory, `None` for a key directly
/// under `P/wals/`.
fn top_dir<'k>(root: &str, key: &'k str) -> Option<&'k str> {
    let rest = key.get(root.len()..)?;
    rest.find('/').map(|i| &key[..root.len() + i + 1])
}

fn int_none(op: &str) -> Crash {
    Crash::new(format!(
        "'{op}' not supported between instances of 'int' and 'NoneType'"
    ))
}

fn str_none(op: &str) -> Crash {
    Crash::new(format!(
        "'{op}' not supported between instances of 'str' and 'NoneType'"
    ))
}
