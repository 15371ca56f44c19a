//! Value rules: what a JSON scalar becomes (DESIGN.md §2 "Values").
//!
//! Every function here is pure and total: any input string gives an answer, never a
//! panic. Strings are tried in the contract's order: plain decimal number, RFC 3339
//! timestamp, Go duration, Kubernetes quantity (with the `<number>m` minutes-or-milli
//! rule), percentage, API-convention constant (enum-like), anything else.

use std::sync::LazyLock;

use regex::Regex;

/// What a string value becomes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StringValue {
    /// A sample value under the field's own name (numbers, timestamps, durations,
    /// quantities).
    Number(f64),
    /// A sample value under `<name>_ratio` (percentages, as 0..1).
    Ratio(f64),
    /// An enum-like constant (`Running`, `ClusterIP`): a state-set series.
    EnumLike,
    /// Nothing is emitted.
    Nothing,
}

/// How to read one string: the facts about its field that the rules depend on.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringContext<'a> {
    /// The field's own key (for array elements, the array's key).
    pub key: &'a str,
    /// The schema's `format` for the field, if any.
    pub format: Option<&'a str>,
    /// Whether the API-convention heuristic for enums is on.
    pub enum_heuristic: bool,
}

const NUM: &str = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)";

static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:?[0-9]{2})$")
        .expect("regex")
});
static DURATION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[+-]?(?:(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:ns|us|µs|μs|ms|s|m|h))+$")
        .expect("regex")
});
static DURATION_PART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)").expect("regex")
});
static BARE_M: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^{NUM}m$")).expect("regex"));
static QUANTITY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"^({NUM})(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]{{1,4}})$"
    ))
    .expect("regex")
});
static PERCENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^{NUM}%$")).expect("regex"));

/// Words that make a key "name a time" for the `<number>m` rule.
const TIME_WORDS: &[&str] = &[
    "interval",
    "timeout",
    "period",
    "duration",
    "delay",
    "ttl",
    "age",
    "wait",
    "backoff",
    "deadline",
    "retention",
    "renew",
    "window",
    "every",
    "after",
    "before",
    "frequency",
    "grace",
];

/// Classify a string value by the rules of DESIGN.md §2 (explicit enums are decided by
/// the caller before this is asked).
pub fn classify_string(s: &str, cx: StringContext<'_>) -> StringValue {
    // Every numeric form (number, timestamp, duration, quantity, percentage) starts
    // with a digit, a sign or a point: most strings (names, images, paths, messages)
    // are decided by their first byte without running a regex.
    let numeric_start = matches!(s.as_bytes().first(), Some(b'0'..=b'9' | b'+' | b'-' | b'.'));
    if !numeric_start {
        return if cx.enum_heuristic && cx.format.is_none() && is_api_constant(s) {
            StringValue::EnumLike
        } else {
            StringValue::Nothing
        };
    }
    if let Some(v) = plain_number(s) {
        return StringValue::Number(v);
    }
    if let Some(v) = timestamp(s) {
        return StringValue::Number(v);
    }
    if let Some(v) = go_duration(s) {
        return StringValue::Number(v);
    }
    if s.ends_with('m')
        && BARE_M.is_match(s)
        && (cx.format == Some("duration") || key_names_time(cx.key))
    {
        // `10m` on a time-named key: minutes.
        let n: f64 = s[..s.len() - 1].parse().unwrap_or(f64::NAN);
        if n.is_finite() {
            return StringValue::Number(n * 60.0);
        }
    }
    if let Some(v) = quantity(s) {
        return StringValue::Number(v);
    }
    if s.ends_with('%')
        && PERCENT.is_match(s)
        && let Ok(n) = s[..s.len() - 1].parse::<f64>()
    {
        return StringValue::Ratio(n / 100.0);
    }
    if cx.enum_heuristic && cx.format.is_none() && is_api_constant(s) {
        return StringValue::EnumLike;
    }
    StringValue::Nothing
}

/// A string holding a plain decimal number (`"4"`, `"1.5"`, `"-3e2"`).
pub fn plain_number(s: &str) -> Option<f64> {
    // Rust's float grammar, over these bytes only (no `inf`/`nan`), is exactly
    // `NUM` with an optional exponent, the contract's grammar (checked by a test).
    if s.bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'+' | b'-' | b'.' | b'e' | b'E'))
    {
        s.parse().ok()
    } else {
        None
    }
}

/// An RFC 3339 date-time in the forms DESIGN.md allows, as seconds since the Unix epoch
/// (fraction kept). Invalid dates (`2026-02-30…`) and anything jiff rejects give `None`.
pub fn timestamp(s: &str) -> Option<f64> {
    // `YYYY-MM-DDThh:mm:ssZ` is the shortest form.
    if s.len() < 20 || s.as_bytes()[4] != b'-' || !TIMESTAMP.is_match(s) {
        return None;
    }
    let ts: jiff::Timestamp = s.parse().ok()?;
    Some(ts.as_second() as f64 + f64::from(ts.subsec_nanosecond()) / 1e9)
}

/// A Go duration with at least one unit other than `m` or several units (`1h30m`,
/// `5m0s`, `250ms`), as seconds. A bare `10m` is not taken here (see the `<number>m`
/// rule).
pub fn go_duration(s: &str) -> Option<f64> {
    // Every unit ends in `s`, `m` or `h`.
    if !matches!(s.as_bytes().last(), Some(b's' | b'm' | b'h')) || !DURATION.is_match(s) {
        return None;
    }
    let mut parts = 0usize;
    let mut only_minutes = true;
    let mut total = 0.0f64;
    for cap in DURATION_PART.captures_iter(s) {
        parts += 1;
        let n: f64 = cap[1].parse().ok()?;
        let unit = &cap[2];
        if unit != "m" {
            only_minutes = false;
        }
        total += n * match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            _ => 3600.0,
        };
    }
    if parts == 1 && only_minutes {
        return None;
    }
    Some(if s.starts_with('-') { -total } else { total })
}

/// A Kubernetes quantity with a suffix or exponent (`20Gi`, `500m`, `1.5k`, `1e3`) in
/// base units, by the grammar of k8s.io/apimachinery `resource.Quantity`.
///
/// Computed here from the strict grammar rather than with kube_quantity: that crate's
/// parser accepts `inf`/`nan`, fails on `1E` (exa: its float parser takes `E` as an
/// exponent) and goes through a decimal type that overflows beyond 7.9e28.
pub fn quantity(s: &str) -> Option<f64> {
    let caps = QUANTITY.captures(s)?;
    let n: f64 = caps.get(1)?.as_str().parse().ok()?;
    let suffix = caps.get(2)?.as_str();
    let factor = match suffix {
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp => 10f64.powi(exp[1..].parse::<i32>().ok()?),
    };
    Some(n * factor).filter(|v| v.is_finite())
}

/// The Kubernetes API convention for constants: `^[A-Z][A-Za-z0-9]*$`, at most 63
/// characters.
pub fn is_api_constant(s: &str) -> bool {
    let b = s.as_bytes();
    matches!(b.first(), Some(b'A'..=b'Z'))
        && b.len() <= 63
        && b.iter().all(u8::is_ascii_alphanumeric)
}

/// Whether a key names a time: its words (split the way heck splits them), alone or
/// several adjacent ones joined, equal one of [`TIME_WORDS`] (case-insensitively).
pub fn key_names_time(key: &str) -> bool {
    use heck::ToSnakeCase;
    let snake = key.to_snake_case();
    let words: Vec<&str> = snake.split('_').filter(|w| !w.is_empty()).collect();
    for start in 0..words.len() {
        let mut joined = String::new();
        for w in &words[start..] {
            joined.push_str(w);
            if joined.len() > 9 {
                break; // longer than any time word
            }
            if TIME_WORDS.contains(&joined.as_str()) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx(key: &str) -> StringContext<'_> {
        StringContext {
            key,
            format: None,
            enum_heuristic: true,
        }
    }

    #[test]
    fn plain_numbers() {
        for (s, v) in [
            ("4", 4.0),
            ("110", 110.0),
            ("1.5", 1.5),
            ("-3e2", -300.0),
            ("+7", 7.0),
            (".5", 0.5),
            ("15625027559", 15625027559.0),
        ] {
            assert_eq!(classify_string(s, cx("x")), StringValue::Number(v), "{s}");
        }
        assert_eq!(classify_string("true", cx("x")), StringValue::Nothing);
        assert_eq!(classify_string("1.2.3", cx("x")), StringValue::Nothing);
        assert_eq!(classify_string("", cx("x")), StringValue::Nothing);
    }

    #[test]
    fn plain_number_is_the_regex() {
        // The contract's grammar for plain numbers.
        let plain = Regex::new(&format!(r"^{NUM}(?:[eE][+-]?[0-9]+)?$")).expect("regex");
        // Every string of up to 4 bytes over the number alphabet and two other bytes.
        let alphabet = b"0159+-.eEx ";
        let mut strings = vec![String::new()];
        let mut layer = vec![String::new()];
        for _ in 0..4 {
            layer = layer
                .iter()
                .flat_map(|s| alphabet.iter().map(move |&b| format!("{s}{}", b as char)))
                .collect();
            strings.extend(layer.iter().cloned());
        }
        assert!(strings.len() > 10_000);
        for s in &strings {
            let by_regex = plain.is_match(s).then(|| s.parse::<f64>().ok()).flatten();
            assert_eq!(plain_number(s), by_regex, "{s:?}");
        }
        for s in [
            "inf", "NaN", "infinity", "+inf", "1_000", "0x10", "1e5e5", "1.e5",
        ] {
            let by_regex = plain.is_match(s).then(|| s.parse::<f64>().ok()).flatten();
            assert_eq!(plain_number(s), by_regex, "{s:?}");
        }
    }

    #[test]
    fn timestamps_in_allowed_forms_only() {
        let base = 1770632100.0;
        for s in [
            "2026-02-09T10:15:00Z",
            "2026-02-09t10:15:00z",
            "2026-02-09 10:15:00Z",
            "2026-02-09T11:15:00+01:00",
            "2026-02-09T11:15:00+0100",
            "2026-02-09T09:15:00-01:00",
        ] {
            assert_eq!(timestamp(s), Some(base), "{s}");
        }
        assert_eq!(timestamp("2026-02-09T10:15:00.25Z"), Some(base + 0.25));
        for s in [
            "2026-02-09",
            "2026-02-09T10:15Z",
            "2026-02-09 10:15:00 +0000 UTC",
            "2026-02-30T10:15:00Z",
            "2026-02-09T10:15:00",
            "2026-02-09T10:15:00+01",
            "2026-02-09T10:15:00Z[Europe/Paris]",
        ] {
            assert_eq!(timestamp(s), None, "{s}");
        }
    }

    #[test]
    fn go_durations() {
        for (s, v) in [
            ("30s", 30.0),
            ("250ms", 0.25),
            ("1h30m", 5400.0),
            ("5m0s", 300.0),
            ("1.5h", 5400.0),
            ("100ns", 100e-9),
            ("3µs", 3e-6),
            ("-2s", -2.0),
        ] {
            let got = go_duration(s).unwrap_or(f64::NAN);
            assert!((got - v).abs() < 1e-12, "{s}: {got} != {v}");
        }
        assert_eq!(go_duration("10m"), None);
        assert_eq!(go_duration("5d"), None);
        assert_eq!(go_duration("1e3"), None);
        assert_eq!(go_duration("s"), None);
    }

    #[test]
    fn bare_m_is_minutes_on_time_keys_else_milli() {
        assert_eq!(
            classify_string("10m", cx("scrapeInterval")),
            StringValue::Number(600.0)
        );
        assert_eq!(
            classify_string("10m", cx("renewBefore")),
            StringValue::Number(600.0)
        );
        assert_eq!(classify_string("100m", cx("cpu")), StringValue::Number(0.1));
        assert_eq!(
            classify_string("12m", cx("averageValue")),
            StringValue::Number(0.012)
        );
        let with_format = StringContext {
            key: "foo",
            format: Some("duration"),
            enum_heuristic: true,
        };
        assert_eq!(
            classify_string("2m", with_format),
            StringValue::Number(120.0)
        );
    }

    #[test]
    fn quantities() {
        for (s, v) in [
            ("20Gi", 20.0 * 1024.0 * 1024.0 * 1024.0),
            ("8165556Ki", 8165556.0 * 1024.0),
            ("500m", 0.5),
            ("1.5k", 1500.0),
            ("1E", 1e18),
            ("100n", 1e-7),
            ("2M", 2e6),
            ("1e3", 1e3),
            ("-1.5E2", -150.0),
        ] {
            let got = quantity(s).unwrap_or(f64::NAN);
            assert!((got - v).abs() <= v.abs() * 1e-12, "{s}: {got} != {v}");
        }
        for s in ["inf", "nan", "Gi", "1Gib", "1 Gi", "1e3Gi", "1KiB", "0x10"] {
            assert_eq!(quantity(s), None, "{s}");
        }
    }

    #[test]
    fn percentages_are_ratios() {
        assert_eq!(
            classify_string("25%", cx("maxSurge")),
            StringValue::Ratio(0.25)
        );
        assert_eq!(
            classify_string("12.5%", cx("maxSurge")),
            StringValue::Ratio(0.125)
        );
        assert_eq!(classify_string("%", cx("x")), StringValue::Nothing);
    }

    #[test]
    fn enum_like_constants() {
        for s in ["Running", "ClusterIP", "RollingUpdate", "True", "TCP", "A"] {
            assert_eq!(classify_string(s, cx("x")), StringValue::EnumLike, "{s}");
        }
        for s in [
            "nginx",
            "web-1",
            "Hello world",
            "Foo-Bar",
            "Ünicode",
            &"A".repeat(64),
        ] {
            assert_eq!(classify_string(s, cx("x")), StringValue::Nothing, "{s}");
        }
        assert!(is_api_constant(&"A".repeat(63)));
        let off = StringContext {
            key: "x",
            format: None,
            enum_heuristic: false,
        };
        assert_eq!(classify_string("Running", off), StringValue::Nothing);
        let fmt = StringContext {
            key: "x",
            format: Some("byte"),
            enum_heuristic: true,
        };
        assert_eq!(classify_string("SGVsbG8", fmt), StringValue::Nothing);
    }

    #[test]
    fn time_keys() {
        for k in [
            "scrapeInterval",
            "backOffLimit",
            "renewBefore",
            "timeoutSeconds",
            "ttl",
            "terminationGracePeriodSeconds",
            "evaluation_interval",
        ] {
            assert!(key_names_time(k), "{k}");
        }
        for k in [
            "averageValue",
            "storage",
            "cpu",
            "message",
            "image",
            "stage",
        ] {
            assert!(!key_names_time(k), "{k}");
        }
    }
}
