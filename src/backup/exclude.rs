//! Barman's include/exclude rules for the files of a base backup.
//!
//! Mirrors `barman.fs.path_allowed`, `_match_path` and `_translate_to_regexp`
//! (Barman 3.19.1) and the lists `PGDATA_EXCLUDE_LIST` and `EXCLUDE_LIST` of
//! `barman.postgres_plumbing`, exactly, quirks included:
//!
//! * a rule ending in `/` applies to directories only; a rule starting with
//!   `/` is anchored at the root, any other rule also matches after any
//!   `…/` prefix (it is tried again as `**/rule`);
//! * `*` is any run of characters but `/`, `**` any run at all, `?` any one
//!   character (even `/`); there are no character classes: `[0-9]` matches
//!   the five characters `[0-9]` literally, so Barman's temp-relation rule
//!   `**/[0-9]*/t[0-9]*_[0-9]*` never matches a real temp relation (it is
//!   kept here as Barman has it, so such files ARE copied, as Barman does);
//! * a rule must match the whole path; paths are relative to the walked root,
//!   directories without a trailing `/`, the root itself is `.` and files
//!   directly in the root are `./name` (what `os.path.join(relpath, name)`
//!   yields), so `/*` matches `.` and top-level directories but no file.
//!
//! The walk ([`super::tar_writer`]) asks about a directory before its files;
//! an excluded directory loses its own entry and its files, but its
//! subdirectories are still visited and asked about on their own.

/// PGDATA-only rules (`PGDATA_EXCLUDE_LIST`).
pub const PGDATA_EXCLUDE_LIST: [&str; 5] = [
    "/pg_log/*",
    "/log/*",
    "/pg_xlog/*",
    "/pg_wal/*",
    "/global/pg_control",
];

/// Rules for PGDATA and tablespaces alike (`EXCLUDE_LIST`).
pub const EXCLUDE_LIST: [&str; 16] = [
    "pgsql_tmp*",
    "postgresql.auto.conf.tmp",
    "current_logfiles.tmp",
    "pg_internal.init",
    "postmaster.pid",
    "postmaster.opts",
    "recovery.conf",
    "standby.signal",
    "**/[0-9]*/t[0-9]*_[0-9]*",
    "pg_dynshmem/*",
    "pg_notify/*",
    "pg_replslot/*",
    "pg_serial/*",
    "pg_stat_tmp/*",
    "pg_snapshots/*",
    "pg_subtrans/*",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tok {
    Char(char),
    /// `?`
    One,
    /// `*`
    NoSlash,
    /// `**`
    Any,
}

fn tokens(pattern: &str) -> Vec<Tok> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' if chars.get(i + 1) == Some(&'*') => {
                out.push(Tok::Any);
                i += 2;
                continue;
            }
            '*' => out.push(Tok::NoSlash),
            '?' => out.push(Tok::One),
            c => out.push(Tok::Char(c)),
        }
        i += 1;
    }
    out
}

/// Whole-string match of `text` against `pat` (dynamic programming over
/// pattern × text, so no exponential backtracking).
fn matches(pat: &[Tok], text: &[char]) -> bool {
    // row[j]: pat[..i] matches text[..j]
    let mut row = vec![false; text.len() + 1];
    row[0] = true;
    for tok in pat {
        let mut next = vec![false; text.len() + 1];
        match tok {
            Tok::Any | Tok::NoSlash => {
                let mut reach = false;
                for j in 0..=text.len() {
                    // reach: some k <= j matched so far and text[k..j] is
                    // a run this wildcard may span.
                    reach |= row[j];
                    next[j] = reach;
                    if *tok == Tok::NoSlash && j < text.len() && text[j] == '/' {
                        reach = false;
                    }
                }
            }
            Tok::One | Tok::Char(_) => {
                for j in 1..=text.len() {
                    let ok = match tok {
                        Tok::Char(c) => text[j - 1] == *c,
                        _ => true,
                    };
                    next[j] = row[j - 1] && ok;
                }
            }
        }
        row = next;
    }
    row[text.len()]
}

#[derive(Debug, Clone)]
struct Rule {
    dir_only: bool,
    direct: Vec<Tok>,
    /// `**/` + rule, for rules that are not anchored.
    suffix: Option<Vec<Tok>>,
}

impl Rule {
    fn new(rule: &str) -> Rule {
        let (dir_only, rule) = match rule.strip_suffix('/') {
            Some(r) => (true, r),
            None => (false, rule),
        };
        let (anchored, rule) = match rule.strip_prefix('/') {
            Some(r) => (true, r),
            None => (false, rule),
        };
        Rule {
            dir_only,
            direct: tokens(rule),
            suffix: (!anchored).then(|| tokens(&format!("**/{rule}"))),
        }
    }

    fn matches(&self, path: &[char], is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        matches(&self.direct, path) || self.suffix.as_ref().is_some_and(|s| matches(s, path))
    }
}

/// A compiled include list and exclude list (`path_allowed`).
#[derive(Debug, Clone, Default)]
pub struct PathFilter {
    include: Vec<Rule>,
    exclude: Vec<Rule>,
}

impl PathFilter {
    pub fn new<I, E>(include: I, exclude: E) -> PathFilter
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
        E: IntoIterator,
        E::Item: AsRef<str>,
    {
        PathFilter {
            include: include.into_iter().map(|r| Rule::new(r.as_ref())).collect(),
            exclude: exclude.into_iter().map(|r| Rule::new(r.as_ref())).collect(),
        }
    }

    /// The filter of the PGDATA walk: `PGDATA_EXCLUDE_LIST + EXCLUDE_LIST +
    /// extra` (`extra`: the tablespace rules, see [`tablespace_rules`]).
    pub fn pgdata(extra: &[String]) -> PathFilter {
        let exclude = PGDATA_EXCLUDE_LIST
            .iter()
            .chain(EXCLUDE_LIST.iter())
            .map(|s| s.to_string())
            .chain(extra.iter().cloned());
        PathFilter::new(std::iter::empty::<&str>(), exclude)
    }

    /// The filter of a tablespace walk: include `/PG_<major>_*`, exclude
    /// `/*` and `EXCLUDE_LIST`. `major` is PostgreSQL's major version as
    /// Barman prints it (`15`, or `9.6`).
    pub fn tablespace(major: &str) -> PathFilter {
        let exclude = std::iter::once("/*").chain(EXCLUDE_LIST.iter().copied());
        PathFilter::new([format!("/PG_{major}_*")], exclude)
    }

    /// True when `path` (relative, as described in the module docs) is kept.
    pub fn allowed(&self, path: &str, is_dir: bool) -> bool {
        self.allowed_chars(&path.chars().collect::<Vec<_>>(), is_dir)
    }

    /// As [`PathFilter::allowed`], on a path already split into characters.
    pub fn allowed_chars(&self, path: &[char], is_dir: bool) -> bool {
        if self.include.iter().any(|r| r.matches(path, is_dir)) {
            return true;
        }
        !self.exclude.iter().any(|r| r.matches(path, is_dir))
    }
}

/// The extra PGDATA exclusions Barman derives from the tablespaces: the
/// location's tail when it lies inside PGDATA (a plain string prefix test on
/// `pgdata + "/"`), and `/pg_tblspc/<oid>`.
pub fn tablespace_rules<'a>(
    pgdata: &str,
    tablespaces: impl IntoIterator<Item = (u32, &'a str)>,
) -> Vec<String> {
    let mut rules = Vec::new();
    let inside = format!("{pgdata}/");
    for (oid, location) in tablespaces {
        if location.starts_with(&inside) {
            rules.push(location[pgdata.len()..].to_string());
        }
        rules.push(format!("/pg_tblspc/{oid}"));
    }
    rules
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg() -> PathFilter {
        PathFilter::pgdata(&tablespace_rules(
            "/data",
            [(16384, "/data/ts_in"), (16385, "/elsewhere/ts")],
        ))
    }

    #[test]
    fn wildcards_translate_like_barman() {
        let m = |p: &str, t: &str| matches(&tokens(p), &t.chars().collect::<Vec<_>>());
        assert!(m("a/*", "a/b"));
        assert!(!m("a/*", "a/b/c"));
        assert!(m("a/**", "a/b/c"));
        assert!(m("**/x", "a/b/x"));
        assert!(!m("**/x", "x"));
        assert!(m("a?c", "a/c"));
        assert!(m("*", ""));
        assert!(m("pgsql_tmp*", "pgsql_tmp"));
        assert!(!m("pgsql_tmp*", "pgsql_tmp/x"));
        assert!(m("***", "ab/c"));
        assert!(!m("x*y", "x/y"));
        assert!(m("[0-9]*", "[0-9]12"));
        assert!(!m("[0-9]*", "5"));
    }

    #[test]
    fn wal_and_log_contents_are_excluded_but_their_directories_kept() {
        let f = pg();
        for dir in ["pg_wal", "pg_xlog", "pg_log", "log"] {
            assert!(f.allowed(dir, true), "{dir}");
            assert!(!f.allowed(&format!("{dir}/000000010000000000000001"), false));
            assert!(!f.allowed(&format!("{dir}/archive_status"), true));
            // Deeper than one level is not matched (only reached if a
            // directory in between was kept, which it is not).
            assert!(f.allowed(&format!("{dir}/archive_status/x"), false));
        }
        // Anchored: a pg_wal deeper down is an ordinary directory.
        assert!(f.allowed("base/pg_wal/x", false));
    }

    #[test]
    fn pg_control_is_left_for_the_end() {
        let f = pg();
        assert!(!f.allowed("global/pg_control", false));
        assert!(f.allowed("global/1262", false));
        assert!(f.allowed("global", true));
    }

    #[test]
    fn files_excluded_at_any_depth() {
        let f = pg();
        for name in [
            "postmaster.pid",
            "postmaster.opts",
            "recovery.conf",
            "standby.signal",
            "postgresql.auto.conf.tmp",
            "current_logfiles.tmp",
            "pg_internal.init",
        ] {
            assert!(!f.allowed(&format!("./{name}"), false), "{name}");
            assert!(!f.allowed(&format!("base/1/{name}"), false), "{name}");
        }
        assert!(f.allowed("./postgresql.auto.conf", false));
        assert!(f.allowed("./postmaster.pid.old", false));
        assert!(!f.allowed("base/pgsql_tmp", true));
        assert!(!f.allowed("base/pgsql_tmp/pgsql_tmp123.0", false));
        assert!(!f.allowed("pgsql_tmp", true));
        assert!(!f.allowed("./pgsql_tmp_x", false));
    }

    #[test]
    fn directory_contents_rules_keep_the_directory() {
        let f = pg();
        for dir in [
            "pg_dynshmem",
            "pg_notify",
            "pg_replslot",
            "pg_serial",
            "pg_stat_tmp",
            "pg_snapshots",
            "pg_subtrans",
        ] {
            assert!(f.allowed(dir, true), "{dir}");
            assert!(!f.allowed(&format!("{dir}/0000"), false), "{dir}");
            assert!(!f.allowed(&format!("{dir}/slot"), true), "{dir}");
        }
    }

    #[test]
    fn temp_relations_are_not_matched_because_brackets_are_literal() {
        // Barman's rule is written for fnmatch but translated without
        // character classes: it never matches.
        let f = pg();
        assert!(f.allowed("base/16384/t3_16390", false));
        assert!(f.allowed("base/16384/t3_16390_fsm", false));
    }

    #[test]
    fn tablespace_locations_and_links_are_excluded() {
        let f = pg();
        assert!(!f.allowed("ts_in", true));
        assert!(!f.allowed("pg_tblspc/16384", true));
        assert!(!f.allowed("pg_tblspc/16385", true));
        assert!(f.allowed("pg_tblspc", true));
        // Barman only excludes the directory itself: its subdirectories are
        // still walked.
        assert!(f.allowed("ts_in/PG_15_202209061", true));
        assert_eq!(
            tablespace_rules("/data", [(1, "/database/x"), (2, "/data/x")]),
            ["/pg_tblspc/1", "/x", "/pg_tblspc/2"]
        );
    }

    #[test]
    fn tablespace_walk_keeps_only_the_version_directory_and_below() {
        let f = PathFilter::tablespace("15");
        assert!(!f.allowed(".", true));
        assert!(f.allowed("PG_15_202209061", true));
        assert!(f.allowed("PG_15_202209061/5", true));
        assert!(f.allowed("PG_15_202209061/5/16385", false));
        assert!(!f.allowed("PG_14_202107181", true));
        assert!(!f.allowed("lost+found", true));
        // Barman's quirk: below an excluded top-level directory, deeper
        // directories are allowed again.
        assert!(f.allowed("PG_14_202107181/5", true));
        assert!(!f.allowed("PG_15_202209061/5/pgsql_tmp", true));
    }

    #[test]
    fn dir_only_rules_skip_files() {
        let f = PathFilter::new(std::iter::empty::<&str>(), ["x/"]);
        assert!(!f.allowed("a/x", true));
        assert!(f.allowed("a/x", false));
    }
}
