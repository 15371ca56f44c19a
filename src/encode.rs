//! The Prometheus text format 0.0.4 encoder, hand-written because scrape speed lives here.
//!
//! Everything writes into a caller's `Vec<u8>` so that collectors can keep pre-rendered
//! lines per object and concatenate them at scrape time. Escaping follows the format:
//! label values escape `\`, `"` and newline; HELP escapes `\` and newline. Values print
//! integers without a decimal point, other finite values in the shortest form that reads
//! back to the same f64, and `NaN`, `+Inf`, `-Inf`.

/// The Content-Type of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Write `# HELP <name> <help>\n# TYPE <name> gauge\n`.
pub fn write_header(out: &mut Vec<u8>, name: &str, help: &str) {
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    escape_help(out, help);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b" gauge\n");
}

/// Write one sample line: `name{l="v",...} value\n` (no braces without labels).
pub fn write_sample(out: &mut Vec<u8>, name: &str, labels: &[(String, String)], value: f64) {
    write_series(out, name, labels);
    out.push(b' ');
    write_value(out, value);
    out.push(b'\n');
}

/// Write `name{l="v",...}` (the series identity, without value).
pub fn write_series(out: &mut Vec<u8>, name: &str, labels: &[(String, String)]) {
    write_series_labels(
        out,
        name,
        labels.iter().map(|(l, v)| (l.as_str(), v.as_str())),
    );
}

/// [`write_series`] for labels given as `(name, value)` pairs.
pub fn write_series_labels<'a>(
    out: &mut Vec<u8>,
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    out.extend_from_slice(name.as_bytes());
    let mut labels = labels.into_iter().peekable();
    if labels.peek().is_none() {
        return;
    }
    out.push(b'{');
    write_labels(out, labels);
    out.push(b'}');
}

/// Append `l="v"` to a label list (with a `,` first unless `out` is empty).
pub fn push_label(out: &mut Vec<u8>, name: &str, value: &str) {
    if !out.is_empty() {
        out.push(b',');
    }
    write_label(out, name, value);
}

/// Write one label, `l="v"`, the value escaped.
pub fn write_label(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"=\"");
    escape_label_value(out, value);
    out.push(b'"');
}

/// Write labels as `l="v",...` (no braces).
pub fn write_labels<'a>(out: &mut Vec<u8>, labels: impl IntoIterator<Item = (&'a str, &'a str)>) {
    for (i, (l, v)) in labels.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_label(out, l, v);
    }
}

/// Escape a label value: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub fn escape_label_value(out: &mut Vec<u8>, v: &str) {
    let bytes = v.as_bytes();
    if !bytes.iter().any(|&b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.extend_from_slice(bytes);
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'"' => b"\\\"",
            b'\n' => b"\\n",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Escape HELP text: `\` → `\\`, newline → `\n`.
pub fn escape_help(out: &mut Vec<u8>, v: &str) {
    let bytes = v.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

/// Write a sample value.
pub fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 9.2e18 {
        // Integer-valued floats within i64 print as integers (exactly the float's value).
        let mut b = itoa::Buffer::new();
        out.extend_from_slice(b.format(v as i64).as_bytes());
    } else if v.fract() == 0.0 {
        // Larger integer values: all digits, still without a decimal point.
        use std::io::Write;
        let _ = write!(out, "{v}");
    } else {
        let mut b = ryu::Buffer::new();
        out.extend_from_slice(b.format_finite(v).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: f64) -> String {
        let mut o = Vec::new();
        write_value(&mut o, v);
        String::from_utf8(o).unwrap()
    }

    #[test]
    fn values() {
        assert_eq!(value(3.0), "3");
        assert_eq!(value(-3.0), "-3");
        assert_eq!(value(-0.0), "0");
        assert_eq!(value(0.25), "0.25");
        assert_eq!(value(1770632100.25), "1770632100.25");
        assert_eq!(value(1e300), format!("1{}", "0".repeat(300)));
        assert_eq!(value(2f64.powi(53)), "9007199254740992");
        assert_eq!(value(1e19), "10000000000000000000");
        assert_eq!(value(18446744073709551615.0), "18446744073709552000");
        assert_eq!(value(1.5e-7), "1.5e-7");
        assert_eq!(value(f64::NAN), "NaN");
        assert_eq!(value(f64::INFINITY), "+Inf");
        assert_eq!(value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(value(0.1), "0.1");
    }

    #[test]
    fn escaping() {
        let mut o = Vec::new();
        escape_label_value(&mut o, "a\\b\"c\nd");
        assert_eq!(o, b"a\\\\b\\\"c\\nd");
        let mut o = Vec::new();
        escape_help(&mut o, "a\\b\"c\nd");
        assert_eq!(o, b"a\\\\b\"c\\nd");
    }

    #[test]
    fn lines() {
        let mut o = Vec::new();
        write_header(&mut o, "k8s_x", "X field a.b");
        let labels = vec![
            ("namespace".to_string(), "default".to_string()),
            ("name".to_string(), "we\"b".to_string()),
        ];
        write_sample(&mut o, "k8s_x", &labels, 3.0);
        write_sample(&mut o, "k8s_y", &[], 0.5);
        assert_eq!(
            String::from_utf8(o).unwrap(),
            "# HELP k8s_x X field a.b\n# TYPE k8s_x gauge\n\
             k8s_x{namespace=\"default\",name=\"we\\\"b\"} 3\nk8s_y 0.5\n"
        );
    }
}
