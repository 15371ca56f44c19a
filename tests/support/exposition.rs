//! A strict parser for the Prometheus text format 0.0.4, used to check our output
//! independently of the encoder: line syntax, escaping, HELP/TYPE once per family before
//! its samples, families contiguous, no duplicate series.

use std::collections::HashSet;

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedSample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

fn is_name(s: &str, colon: bool) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_' || (colon && ch == ':'))
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || (colon && ch == ':'))
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "NaN" => Ok(f64::NAN),
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => {
            let ok = !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c));
            if !ok {
                return Err(format!("bad value {s:?}"));
            }
            s.parse().map_err(|e| format!("bad value {s:?}: {e}"))
        }
    }
}

fn parse_sample(line: &str) -> Result<ParsedSample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value in {line:?}"))?;
    let name = &line[..name_end];
    if !is_name(name, true) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or("label without '='")?;
            let lname = &rest[..eq];
            if !is_name(lname, false) || lname.starts_with("__") {
                return Err(format!("bad label name {lname:?}"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err("unterminated label value".into()),
                    Some((i, '"')) => break i,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    Some((_, '\n')) => return Err("raw newline in label value".into()),
                    Some((_, c)) => value.push(c),
                }
            };
            if labels.iter().any(|(l, _): &(String, String)| l == lname) {
                return Err(format!("label {lname} twice"));
            }
            labels.push((lname.to_string(), value));
            rest = &rest[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(format!("expected ',' or '}}' in {line:?}"));
            }
        }
    }
    let v = rest.strip_prefix(' ').ok_or("missing space before value")?;
    if v.contains(' ') {
        return Err(format!("timestamps are not expected: {line:?}"));
    }
    Ok(ParsedSample {
        name: name.to_string(),
        labels,
        value: parse_value(v)?,
    })
}

/// Parse and check a whole exposition; errors name the line.
pub fn parse(text: &str) -> Result<Vec<ParsedSample>, String> {
    let mut samples = Vec::new();
    let mut families_done: HashSet<String> = HashSet::new();
    let mut current: Option<String> = None;
    let mut help_seen = false;
    let mut type_seen = false;
    let mut series = HashSet::new();
    if !text.is_empty() && !text.ends_with('\n') {
        return Err("missing final newline".into());
    }
    for (i, line) in text.lines().enumerate() {
        let at = |e: String| format!("line {}: {e}", i + 1);
        if let Some(rest) = line.strip_prefix("# ") {
            let (kw, rest) = rest
                .split_once(' ')
                .ok_or_else(|| at("bad comment".into()))?;
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            if !is_name(name, true) {
                return Err(at(format!("bad name in {kw}")));
            }
            if current.as_deref() != Some(name) {
                if let Some(c) = current.take() {
                    families_done.insert(c);
                }
                if families_done.contains(name) {
                    return Err(at(format!("family {name} is not contiguous")));
                }
                current = Some(name.to_string());
                help_seen = false;
                type_seen = false;
            }
            match kw {
                "HELP" => {
                    if help_seen || type_seen {
                        return Err(at(format!("HELP for {name} repeated or after TYPE")));
                    }
                    let mut chars = text.chars();
                    while let Some(c) = chars.next() {
                        if c == '\\' && !matches!(chars.next(), Some('\\' | 'n')) {
                            return Err(at("bad escape in HELP".into()));
                        }
                    }
                    help_seen = true;
                }
                "TYPE" => {
                    if type_seen
                        || !(text == "gauge" || (text == "counter" && name.ends_with("_total")))
                    {
                        return Err(at(format!("bad TYPE for {name}: {text}")));
                    }
                    type_seen = true;
                }
                other => return Err(at(format!("unknown comment {other}"))),
            }
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            return Err(at("unexpected line".into()));
        }
        let s = parse_sample(line).map_err(at)?;
        if current.as_deref() != Some(s.name.as_str()) || !help_seen || !type_seen {
            return Err(at(format!("sample of {} outside its family block", s.name)));
        }
        let mut key = s.name.clone();
        for (l, v) in &s.labels {
            key.push_str(&format!("\u{1}{l}\u{2}{v}"));
        }
        if !series.insert(key) {
            return Err(at(format!("duplicate series {line}")));
        }
        samples.push(s);
    }
    Ok(samples)
}

#[test]
fn the_checker_rejects_what_it_should() {
    let ok = "# HELP a x\\ny\n# TYPE a gauge\na{b=\"c\\\"\"} 1\na 2.5\n";
    assert_eq!(parse(ok).unwrap().len(), 2);
    for bad in [
        "a 1\n",
        "# HELP a x\n# TYPE a gauge\na 1\na 1\n",
        "# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\n# HELP a x\n# TYPE a gauge\n",
        "# HELP a x\n# TYPE a gauge\na{b=\"c} 1\n",
        "# HELP a x\n# TYPE a gauge\na{1b=\"c\"} 1\n",
        "# HELP a x\n# TYPE a gauge\na one\n",
        "# HELP a x\n# TYPE a gauge\na 1",
    ] {
        assert!(parse(bad).is_err(), "{bad:?}");
    }
}
