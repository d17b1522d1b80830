//! Barman's console helpers (`barman.utils`): `pretty_size` and
//! `human_readable_timedelta` of `datetime.timedelta(seconds=x)`.

use crate::layout::pyliteral::PyNumber;

use super::RenderError;

/// `pretty_size(size)` with the default base 1024: `"%d B"` below 1 KiB,
/// else `"%.1f KiB"`, ..., up to YiB. The unit is chosen before rounding,
/// so 1023.96 KiB prints as `1024.0 KiB`, as in Barman.
pub fn pretty_size(size: f64) -> String {
    const SUFFIXES: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = size;
    for (i, suffix) in SUFFIXES.iter().enumerate() {
        if size.abs() < 1024.0 || i == SUFFIXES.len() - 1 {
            return if i == 0 {
                format!("{} {suffix}", size.trunc() as i64)
            } else {
                format!("{size:.1} {suffix}")
            };
        }
        size /= 1024.0;
    }
    String::new()
}

const MICROS_PER_SECOND: i128 = 1_000_000;
const MICROS_PER_DAY: i128 = 86_400 * MICROS_PER_SECOND;

/// `timedelta(seconds=x)` in microseconds: whole seconds exactly, the
/// fraction rounded half to even, as CPython's constructor does.
fn timedelta_micros(seconds: PyNumber) -> Result<i128, RenderError> {
    let overflow = || RenderError("OverflowError: timedelta seconds out of range".into());
    let micros = match seconds {
        PyNumber::Int(i) => i128::from(i) * MICROS_PER_SECOND,
        PyNumber::Float(f) => {
            if !f.is_finite() || f.abs() > 1e17 {
                return Err(overflow());
            }
            let whole = f.trunc();
            let frac = (f - whole) * 1e6;
            whole as i128 * MICROS_PER_SECOND + frac.round_ties_even() as i128
        }
    };
    // timedelta.max is 999999999 days.
    if micros.abs() >= 1_000_000_000 * MICROS_PER_DAY {
        return Err(overflow());
    }
    Ok(micros)
}

/// `human_readable_timedelta(timedelta(seconds=x))`: "1 day, 2 hours,
/// 3 minutes, 4 seconds", "less than one second", with " ago" when negative.
pub fn human_readable_seconds(seconds: PyNumber) -> Result<String, RenderError> {
    let micros = timedelta_micros(seconds)?;
    let abs = micros.abs();
    let days = abs / MICROS_PER_DAY;
    let secs = (abs % MICROS_PER_DAY) / MICROS_PER_SECOND;
    let parts = [
        (days, "day"),
        (secs / 3600, "hour"),
        (secs / 60 % 60, "minute"),
        (secs % 60, "second"),
    ];
    let mut human = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| {
            if *n == 1 {
                format!("{n} {unit}")
            } else {
                format!("{n} {unit}s")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    if abs < MICROS_PER_SECOND {
        human = "less than one second".to_string();
    }
    if micros < 0 {
        human.push_str(" ago");
    }
    Ok(human)
}
