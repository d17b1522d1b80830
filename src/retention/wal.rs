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
//! Cost: one sort of the listing; then per pass O(P·R + D·T + C·log n) with
//! P listed prefixes, R protected ranges, D directories in the cache, T
//! timelines per directory (normally 1) and C the cached WALs below `until`
//! on unprotected timelines outside the prefixes deleted by that pass
//! (deleted ones leave the cache; those in protected ranges are revisited).
//! The cache is grouped by directory so that a dry run, which lists the
//! same prefixes pass after pass, skips them whole. Only when `until` or a
//! range bound is `None` (where Python raises on the first comparison it
//! reaches) is every cached WAL visited, in Python's dict order.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;

use super::outcome::{Crash, Mode, Warning};
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

/// The `get_wal_paths` cache without history files, grouped so that a pass
/// skips a whole deleted prefix at once: top directory → tli → name → entry.
type Cache<'a> = BTreeMap<Option<&'a str>, BTreeMap<u32, BTreeMap<&'a str, Entry<'a>>>>;

/// A chosen WAL: where it sits in the cache.
type Slot<'a> = (Option<&'a str>, u32, &'a str);

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
    cache: Option<Cache<'a>>,
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

    /// Builds the `get_wal_paths` cache from what is listed now: name →
    /// key, the later key winning, the first one fixing the dict order.
    fn cache(&mut self) -> &mut Cache<'a> {
        if self.cache.is_none() {
            let mut by_name: HashMap<&'a str, (u32, Entry<'a>)> = HashMap::new();
            for (order, key) in self
                .keys
                .iter()
                .copied()
                .filter(|k| self.live(k))
                .enumerate()
            {
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
                by_name
                    .entry(name)
                    .and_modify(|(_, e)| {
                        e.path = entry.path;
                        e.dir = entry.dir;
                    })
                    .or_insert((d.tli, entry));
            }
            let mut cache = Cache::new();
            for (name, (tli, entry)) in by_name {
                let by_tli = cache.entry(entry.dir).or_default();
                by_tli.entry(tli).or_default().insert(name, entry);
            }
            self.cache = Some(cache);
        }
        self.cache.get_or_insert_with(Cache::new)
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
        for (dir, tli, name) in chosen {
            let names = cache.get_mut(&dir).and_then(|by_tli| by_tli.get_mut(&tli));
            if let Some(e) = names.and_then(|m| m.remove(name)) {
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
    ) -> Result<Vec<Slot<'a>>, Crash> {
        let ranges: Option<Vec<(&str, &str)>> = req
            .ranges
            .iter()
            .map(|(b, e)| Some(((*b)?, (*e)?)))
            .collect();
        let protected = req.protected;
        let cache = self.cache();
        let skip_dir = |dir: &Option<&str>| dir.is_some_and(|d| deleted.contains(d));
        let mut chosen = Vec::new();
        if let (Some(until), Some(ranges)) = (req.until, ranges) {
            let in_ranges = |r: &str| ranges.iter().any(|(b, e)| r >= *b && r <= *e);
            for (dir, by_tli) in cache.iter().filter(|(dir, _)| !skip_dir(dir)) {
                for (tli, names) in by_tli {
                    if protected.contains(&i64::from(*tli)) {
                        continue;
                    }
                    let below = names.range::<str, _>((Bound::Unbounded, Bound::Excluded(until)));
                    for (name, e) in below {
                        if !in_ranges(e.range_name) {
                            chosen.push((*dir, *tli, *name));
                        }
                    }
                }
            }
            return Ok(chosen);
        }
        // Some bound is None: Python raises at the first comparison with it
        // that a WAL reaches, in dict order.
        let mut all: Vec<(Slot<'a>, Entry<'a>)> = cache
            .iter()
            .flat_map(|(dir, by_tli)| {
                by_tli.iter().flat_map(move |(tli, names)| {
                    names.iter().map(move |(name, e)| ((*dir, *tli, *name), *e))
                })
            })
            .collect();
        all.sort_by_key(|(_, e)| e.order);
        for ((dir, tli, name), e) in all {
            if skip_dir(&dir) || protected.contains(&i64::from(tli)) {
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
                chosen.push((dir, tli, name));
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
