//! Times as Barman handles them: read with `dateutil.parser.parse` (naive
//! means local time), written with Python's `str(datetime)`, shown with
//! `ctime()`, `isoformat()` and `strftime("%Y-%m-%d %H:%M:%S")`.

use chrono::{DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime};
use chrono::{Offset, TimeZone, Timelike};

/// `load_datetime_tz`: the ISO-ish forms dateutil reads. Date `YYYY-MM-DD`
/// (or `YYYYMMDD`), then `T` or spaces, then `HH:MM[:SS[.fraction]]` (or
/// `HHMMSS`), then an optional offset: `Z`, `UTC`, `GMT`, `±HH[:MM]`,
/// `±HHMM`, possibly after a space. Fractions beyond microseconds are cut,
/// as dateutil does. Without an offset the time is local. Named zones other
/// than UTC/GMT are not supported.
pub fn parse_py_datetime(text: &str) -> Result<DateTime<FixedOffset>, String> {
    let err = || format!("Unknown string format: {text}");
    let s = text.trim();
    let (date, rest) = split_date(s).ok_or_else(err)?;
    let rest = rest.trim_start_matches(['T', ' ']);
    if rest.len() == s.len() - date_len(s) && !rest.is_empty() {
        return Err(err());
    }
    let (time, rest) = if rest.is_empty() {
        (NaiveTime::MIN, "")
    } else {
        split_time(rest).ok_or_else(err)?
    };
    let naive = NaiveDateTime::new(date, time);
    let tz = rest.trim_start();
    if tz.is_empty() {
        return Ok(local_offset(&naive));
    }
    let offset = parse_offset(tz).ok_or_else(err)?;
    offset.from_local_datetime(&naive).single().ok_or_else(err)
}

fn date_len(s: &str) -> usize {
    if s.as_bytes().get(4) == Some(&b'-') {
        10
    } else {
        8
    }
}

fn split_date(s: &str) -> Option<(NaiveDate, &str)> {
    let n = date_len(s);
    let d = s.get(..n)?;
    let digits: String = d.chars().filter(|c| *c != '-').collect();
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if n == 10 && (d.as_bytes()[4] != b'-' || d.as_bytes()[7] != b'-') {
        return None;
    }
    let y = digits[..4].parse().ok()?;
    let m = digits[4..6].parse().ok()?;
    let day = digits[6..8].parse().ok()?;
    Some((NaiveDate::from_ymd_opt(y, m, day)?, &s[n..]))
}

fn split_time(s: &str) -> Option<(NaiveTime, &str)> {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(s.len());
    let (t, rest) = s.split_at(end);
    let (hms, frac) = match t.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (t, None),
    };
    let parts: Vec<&str> = if hms.contains(':') {
        hms.split(':').collect()
    } else if hms.len() == 6 || hms.len() == 4 {
        vec![&hms[..2], &hms[2..4], hms.get(4..).unwrap_or("")]
    } else {
        return None;
    };
    let num = |p: &str| -> Option<u32> {
        (p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse().ok())
            .flatten()
    };
    let h = num(parts.first()?)?;
    let m = num(parts.get(1)?)?;
    let sec = match parts.get(2) {
        Some(p) if !p.is_empty() => num(p)?,
        _ => 0,
    };
    if parts.len() > 3 {
        return None;
    }
    let micro = match frac {
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let six: String = f.chars().chain(std::iter::repeat('0')).take(6).collect();
            six.parse().ok()?
        }
        Some(_) => return None,
        None => 0,
    };
    Some((NaiveTime::from_hms_micro_opt(h, m, sec, micro)?, rest))
}

fn parse_offset(tz: &str) -> Option<FixedOffset> {
    if matches!(tz, "Z" | "z" | "UTC" | "GMT") {
        return FixedOffset::east_opt(0);
    }
    let (sign, digits) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let compact: String = digits.chars().filter(|c| *c != ':').collect();
    if !compact.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = match (compact.len(), digits.find(':')) {
        (2, None) => (compact.parse::<i32>().ok()?, 0),
        (4, None) | (4, Some(2)) => (compact[..2].parse().ok()?, compact[2..].parse().ok()?),
        _ => return None,
    };
    if m >= 60 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// A naive time in the local zone (`tzlocal()`), the first one if ambiguous.
fn local_offset(naive: &NaiveDateTime) -> DateTime<FixedOffset> {
    match Local.from_local_datetime(naive).earliest() {
        Some(t) => t.fixed_offset(),
        None => {
            // In a DST gap: keep the wall time with the offset in force just after.
            let offset = Local.offset_from_utc_datetime(naive).fix();
            DateTime::from_naive_utc_and_offset(*naive - offset, offset)
        }
    }
}

/// Python's `str(datetime)`: `2026-11-27 21:49:06.941197+00:00`, the
/// fraction left out when it is zero.
pub fn py_str(t: &DateTime<FixedOffset>) -> String {
    iso(t, ' ')
}

/// Python's `datetime.isoformat()`: as [`py_str`] with a `T`.
pub fn py_isoformat(t: &DateTime<FixedOffset>) -> String {
    iso(t, 'T')
}

fn iso(t: &DateTime<FixedOffset>, sep: char) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let micros = t.nanosecond() / 1000;
    if micros != 0 {
        out.push_str(&format!(".{micros:06}"));
    }
    let secs = t.offset().local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    out.push_str(&format!("{sign}{:02}:{:02}", a / 3600, a / 60 % 60));
    if a % 60 != 0 {
        out.push_str(&format!(":{:02}", a % 60));
    }
    out
}

/// Python's `datetime.ctime()`: `Fri Nov 27 21:49:06 2026` (day padded with
/// a space, no offset).
pub fn py_ctime(t: &DateTime<FixedOffset>) -> String {
    format!(
        "{} {:>2} {:02}:{:02}:{:02} {:04}",
        t.format("%a %b"),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    )
}

/// `strftime("%Y-%m-%d %H:%M:%S")` as glibc does it (the year unpadded).
pub fn py_strftime_list(t: &DateTime<FixedOffset>) -> String {
    format!(
        "{}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        t.month(),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
