//! Retention policies as `barman-cloud-backup-delete -r` reads them
//! (`barman.retention_policies.RetentionPolicyFactory.create`), plus
//! CloudNativePG's shorthand.
//!
//! Barman tries three regular expressions, in this order, with
//! `re.IGNORECASE` on a Python `str`:
//!
//! ```text
//! ^\s*redundancy\s+(\d+)\s*$                                       REDUNDANCY N
//! ^\s*recovery\s+window\s+of\s+(\d+)\s+(day|month|week)s?\s*$      RECOVERY WINDOW OF N DAYS
//! ^\s*main\s*$                                                      (the WAL policy "MAIN")
//! ```
//!
//! Python's `\s` is any Unicode whitespace, `\d` any Unicode decimal digit
//! (and `int()` reads those too), and its case folding also lets `ı`/`İ`
//! match `i`, `ſ` match `s` and `K` (Kelvin) match `k`; all mirrored here. A
//! month is 31 days. Anything else is "Could not create retention policy
//! TEXT: Cannot parse option retention_policy: TEXT", exit 3.
//!
//! Surprises kept: `main` parses, then crashes (`'NoneType' object has no
//! attribute 'unit'`, exit 4); a window beyond 999 999 999 days crashes in
//! `timedelta` (exit 4, two different messages); a number of more than 4300
//! digits crashes in `int()` (exit 4); `REDUNDANCY 0` is valid (and deletes
//! every DONE backup without a keep, see the planner).
//!
//! CloudNativePG's `retentionPolicy` (CRD pattern `^[1-9][0-9]*[dwm]$`, ASCII,
//! no spaces) is what the operator turns into `RECOVERY WINDOW OF N
//! DAYS|WEEKS|MONTHS` (`ParsePolicy`); [`parse_policy`] accepts it and reads
//! that sentence.

use std::fmt;

/// A retention policy of `barman-cloud-backup-delete -r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// `REDUNDANCY N`: keep the newest N DONE backups (kept ones count).
    /// Values beyond `u64::MAX` are held as `u64::MAX` (same effect).
    Redundancy(u64),
    /// `RECOVERY WINDOW OF N UNIT`.
    RecoveryWindow(RecoveryWindow),
}

/// A recovery window; `days()` is at most 999 999 999 (Python's `timedelta`
/// limit, checked when parsing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecoveryWindow {
    pub value: u64,
    pub unit: WindowUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowUnit {
    Days,
    Weeks,
    /// 31 days each.
    Months,
}

impl WindowUnit {
    fn days(self) -> u64 {
        match self {
            WindowUnit::Days => 1,
            WindowUnit::Weeks => 7,
            WindowUnit::Months => 31,
        }
    }

    fn keyword(self) -> &'static str {
        match self {
            WindowUnit::Days => "DAYS",
            WindowUnit::Weeks => "WEEKS",
            WindowUnit::Months => "MONTHS",
        }
    }
}

impl RecoveryWindow {
    /// The window in days (a month is 31 days).
    pub fn days(&self) -> u64 {
        self.value.saturating_mul(self.unit.days())
    }
}

/// `str(policy)` in Barman: `REDUNDANCY 2`, `RECOVERY WINDOW OF 30 DAYS`.
impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Policy::Redundancy(n) => write!(f, "REDUNDANCY {n}"),
            Policy::RecoveryWindow(w) => {
                write!(f, "RECOVERY WINDOW OF {} {}", w.value, w.unit.keyword())
            }
        }
    }
}

/// Why a policy text is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// No form matches: Barman logs "Could not create retention policy ..." (exit 3).
    #[error(
        "Could not create retention policy {text}: Cannot parse option retention_policy: {text}"
    )]
    Invalid { text: String },
    /// A form matches but Barman raises while building it (exit 4).
    #[error("{message}")]
    Crash { text: String, message: String },
}

impl PolicyError {
    /// Barman's exit code: 3 for a text that does not parse, 4 for a crash.
    pub fn exit_code(&self) -> i32 {
        match self {
            PolicyError::Invalid { .. } => 3,
            PolicyError::Crash { .. } => 4,
        }
    }

    /// The ERROR line Barman logs.
    pub fn barman_log(&self) -> String {
        match self {
            PolicyError::Invalid { .. } => self.to_string(),
            PolicyError::Crash { message, .. } => {
                format!("Barman cloud backup delete exception: {message}")
            }
        }
    }
}

/// Parses a policy in Barman's syntax or CloudNativePG's shorthand (`30d`,
/// `4w`, `3m`).
pub fn parse_policy(text: &str) -> Result<Policy, PolicyError> {
    if let Some(barman) = cnpg_to_barman(text) {
        return parse_barman(&barman);
    }
    parse_barman(text)
}

/// CloudNativePG's `retentionPolicy` (`^[1-9][0-9]*[dwm]$`) as the
/// `-r` argument the operator passes to Barman.
pub fn cnpg_to_barman(text: &str) -> Option<String> {
    let (digits, unit) = match text.chars().last()? {
        'd' => (&text[..text.len() - 1], "DAYS"),
        'w' => (&text[..text.len() - 1], "WEEKS"),
        'm' => (&text[..text.len() - 1], "MONTHS"),
        _ => return None,
    };
    let ok = digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
    (ok && !digits.is_empty()).then(|| format!("RECOVERY WINDOW OF {digits} {unit}"))
}

/// `RetentionPolicyFactory.create("retention_policy", text, ...)`.
fn parse_barman(text: &str) -> Result<Policy, PolicyError> {
    let chars: Vec<char> = text.chars().collect();
    let crash = |message: String| PolicyError::Crash {
        text: text.to_string(),
        message,
    };
    let mut m = Matcher { s: &chars, i: 0 };
    m.spaces();
    if m.word("redundancy") && m.spaces() > 0 {
        if let Some(digits) = m.digits() {
            if m.spaces_then_end() {
                return Ok(Policy::Redundancy(py_int(&digits).map_err(crash)?));
            }
        }
    }
    let mut m = Matcher { s: &chars, i: 0 };
    m.spaces();
    let window = m.word("recovery")
        && m.spaces() > 0
        && m.word("window")
        && m.spaces() > 0
        && m.word("of")
        && m.spaces() > 0;
    if window {
        if let Some(digits) = m.digits() {
            if m.spaces() > 0 {
                let unit = if m.word("day") {
                    Some(WindowUnit::Days)
                } else if m.word("month") {
                    Some(WindowUnit::Months)
                } else if m.word("week") {
                    Some(WindowUnit::Weeks)
                } else {
                    None
                };
                if let Some(unit) = unit {
                    m.word("s");
                    if m.spaces_then_end() {
                        let value = py_int(&digits).map_err(crash)?;
                        let window = RecoveryWindow { value, unit };
                        check_timedelta(value, unit).map_err(crash)?;
                        return Ok(Policy::RecoveryWindow(window));
                    }
                }
            }
        }
    }
    let mut m = Matcher { s: &chars, i: 0 };
    m.spaces();
    if m.word("main") && m.spaces_then_end() {
        // SimpleWALRetentionPolicy(context, server.retention_policy=None, ...)
        return Err(crash("'NoneType' object has no attribute 'unit'".into()));
    }
    Err(PolicyError::Invalid {
        text: text.to_string(),
    })
}

/// `timedelta(days|weeks=N)` / `timedelta(days=31 * N)`: the day count must
/// fit a C int, then be at most 999 999 999.
fn check_timedelta(value: u64, unit: WindowUnit) -> Result<(), String> {
    let days = u128::from(value) * u128::from(unit.days());
    if days > i32::MAX as u128 {
        Err("Python int too large to convert to C int".into())
    } else if days > 999_999_999 {
        Err(format!("days={days}; must have magnitude <= 999999999"))
    } else {
        Ok(())
    }
}

/// Python's `int()` of a run of decimal digits, saturating at `u64::MAX`,
/// with CPython's 4300-digit limit.
fn py_int(digits: &[u32]) -> Result<u64, String> {
    if digits.len() > 4300 {
        return Err(format!(
            "Exceeds the limit (4300 digits) for integer string conversion: value has {} \
             digits; use sys.set_int_max_str_digits() to increase the limit",
            digits.len()
        ));
    }
    Ok(digits.iter().fold(0u64, |acc, d| {
        acc.saturating_mul(10).saturating_add(u64::from(*d))
    }))
}

/// A hand-written matcher for the three anchored patterns.
struct Matcher<'s> {
    s: &'s [char],
    i: usize,
}

impl Matcher<'_> {
    /// `\s*`: how many were consumed.
    fn spaces(&mut self) -> usize {
        let start = self.i;
        while self.s.get(self.i).is_some_and(|c| py_isspace(*c)) {
            self.i += 1;
        }
        self.i - start
    }

    /// `\s*$` (`$` also matches before a final newline, which `\s*` eats).
    fn spaces_then_end(&mut self) -> bool {
        self.spaces();
        self.i == self.s.len()
    }

    /// An ASCII word, case-insensitively as `re.IGNORECASE` matches it.
    fn word(&mut self, word: &str) -> bool {
        let n = word.chars().count();
        let Some(slice) = self.s.get(self.i..self.i + n) else {
            return false;
        };
        if word.chars().zip(slice).all(|(w, c)| ignorecase_eq(w, *c)) {
            self.i += n;
            true
        } else {
            false
        }
    }

    /// `\d+`: the values of the digits.
    fn digits(&mut self) -> Option<Vec<u32>> {
        let mut out = Vec::new();
        while let Some(d) = self
            .s
            .get(self.i)
            .and_then(|c| crate::layout::pyliteral::decimal_value(*c))
        {
            out.push(d);
            self.i += 1;
        }
        (!out.is_empty()).then_some(out)
    }
}

/// Whether `c` matches the lower-case ASCII letter `w` under Python's
/// `re.IGNORECASE` for `str` patterns.
fn ignorecase_eq(w: char, c: char) -> bool {
    c.to_ascii_lowercase() == w
        || matches!(
            (w, c),
            ('i', '\u{130}') | ('i', '\u{131}') | ('s', '\u{17f}') | ('k', '\u{212a}')
        )
}

/// Python's `str.isspace()` for one character (what `\s` matches).
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}
