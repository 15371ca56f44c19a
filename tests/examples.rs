//! The worked alerting examples under `examples/<scenario>/`: each folder with a
//! `rules.yaml` has `objects.yaml` (and `crd.yaml` for custom resources), promtool unit
//! tests in `rules.test.yaml` and a README. This test keeps them honest:
//!
//! 1. `flatten [--crd crd.yaml] objects.yaml` succeeds;
//! 2. every `input_series` of `rules.test.yaml` is a series that flatten prints, name and
//!    labels exactly, and its `values` start with the printed value (so the rules are
//!    tested against the exporter's real names, and a naming change breaks the examples);
//! 3. `promtool check rules rules.yaml` and `promtool test rules rules.test.yaml` pass
//!    (promtool is required in CI).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_kube-field-exporter");

/// The scenarios the documentation promises. More may be added.
const EXPECTED: &[&str] = &[
    "backups",
    "deployments",
    "message-queues",
    "nodes",
    "recording-rules",
];

/// Scenarios about custom resources, which need their CRD.
const WITH_CRD: &[&str] = &["backups", "message-queues"];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Every folder under examples/ that has a rules.yaml, sorted by name.
fn rule_examples() -> Vec<(String, PathBuf)> {
    let mut found: Vec<(String, PathBuf)> = std::fs::read_dir(examples_dir())
        .expect("examples/ is readable")
        .map(|e| e.expect("examples/ entry").path())
        .filter(|p| p.join("rules.yaml").is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    found.sort();
    found
}

/// `flatten [--crd crd.yaml] objects.yaml` in the example's folder: series → printed value.
fn flatten(name: &str, dir: &Path) -> BTreeMap<String, String> {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir).arg("flatten");
    if dir.join("crd.yaml").is_file() {
        cmd.args(["--crd", "crd.yaml"]);
    }
    let out = cmd.arg("objects.yaml").output().expect("run flatten");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "examples/{name}/objects.yaml: flatten exited with {:?}: {stderr}",
        out.status.code()
    );
    let stdout = String::from_utf8(out.stdout).expect("flatten output is UTF-8");
    let mut series = BTreeMap::new();
    for line in stdout
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (s, v) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("examples/{name}: unexpected flatten line {line:?}"));
        series.insert(s.to_string(), v.to_string());
    }
    assert!(
        !series.is_empty(),
        "examples/{name}/objects.yaml: flatten printed no series"
    );
    series
}

/// The first value of a promtool `values` string: `1`, `1x30`, `0+0x30`, `1+2x5`,
/// `-3-1x4`, `1 1 3x30` (first token only). None for `_`, `stale` or anything else.
fn first_value(values: &str) -> Option<f64> {
    let token = values.split_whitespace().next()?;
    // Drop an `xN` repetition suffix.
    let token = match token.rsplit_once('x') {
        Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => token,
    };
    // Drop a `+step` / `-step`: a sign after the first character that does not belong
    // to an exponent.
    let bytes = token.as_bytes();
    let cut = (1..bytes.len())
        .find(|&i| matches!(bytes[i], b'+' | b'-') && !matches!(bytes[i - 1], b'e' | b'E'))
        .unwrap_or(bytes.len());
    token[..cut].parse().ok()
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// The `rules.test.yaml` of an example, parsed.
fn rules_test(name: &str, dir: &Path) -> Value {
    let path = dir.join("rules.test.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("examples/{name}/rules.test.yaml: {e}"));
    serde_saphyr::from_str::<Value>(&text)
        .unwrap_or_else(|e| panic!("examples/{name}/rules.test.yaml: not YAML: {e}"))
}

#[test]
fn the_expected_examples_exist() {
    let found: Vec<String> = rule_examples().into_iter().map(|(n, _)| n).collect();
    for name in EXPECTED {
        assert!(
            found.iter().any(|f| f == name),
            "examples/{name}/rules.yaml is missing (examples with rules: {found:?})"
        );
        let dir = examples_dir().join(name);
        for file in ["objects.yaml", "rules.yaml", "rules.test.yaml", "README.md"] {
            assert!(
                dir.join(file).is_file(),
                "examples/{name}/{file} is missing"
            );
        }
        assert_eq!(
            dir.join("crd.yaml").is_file(),
            WITH_CRD.contains(name),
            "examples/{name}/crd.yaml: present for custom resources only"
        );
    }
}

#[test]
fn input_series_are_the_exporters_own_output() {
    for (name, dir) in rule_examples() {
        let printed = flatten(&name, &dir);
        let doc = rules_test(&name, &dir);
        let file = format!("examples/{name}/rules.test.yaml");
        assert_eq!(
            doc["rule_files"],
            serde_json::json!(["rules.yaml"]),
            "{file}: rule_files must be [rules.yaml]"
        );
        let tests = doc["tests"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no tests"));
        assert!(!tests.is_empty(), "{file}: no tests");
        for (i, test) in tests.iter().enumerate() {
            let inputs = test["input_series"]
                .as_array()
                .unwrap_or_else(|| panic!("{file}: test {i} has no input_series"));
            assert!(!inputs.is_empty(), "{file}: test {i} has no input_series");
            for input in inputs {
                let series = input["series"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{file}: test {i}: series is not a string"));
                let values = match &input["values"] {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    other => panic!("{file}: {series}: values {other} is not a string"),
                };
                let Some(value) = printed.get(series) else {
                    panic!(
                        "{file}: test {i}: input series {series} is not in the output of \
                         flatten on examples/{name}/objects.yaml"
                    )
                };
                let want = parse_value(value).unwrap_or_else(|| {
                    panic!("examples/{name}/objects.yaml: {series} printed {value:?}")
                });
                let got = first_value(&values).unwrap_or_else(|| {
                    panic!("{file}: {series}: cannot read the first value of {values:?}")
                });
                assert!(
                    same(got, want),
                    "{file}: test {i}: {series} starts with {got}, flatten printed {value}"
                );
            }
        }
    }
}

fn promtool(name: &str, dir: &Path, promtool: &Path, args: &[&str]) {
    let out = Command::new(promtool)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run promtool");
    assert!(
        out.status.success(),
        "examples/{name}/{}: promtool {} failed ({:?}):\n{}{}",
        args.last().unwrap(),
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_pass_promtool_check() {
    let Some(bin) = support::required_binary("promtool") else {
        return;
    };
    for (name, dir) in rule_examples() {
        promtool(&name, &dir, &bin, &["check", "rules", "rules.yaml"]);
    }
}

#[test]
fn rules_pass_their_promtool_unit_tests() {
    let Some(bin) = support::required_binary("promtool") else {
        return;
    };
    for (name, dir) in rule_examples() {
        promtool(&name, &dir, &bin, &["test", "rules", "rules.test.yaml"]);
    }
}

#[test]
fn first_value_reads_promtool_notation() {
    assert_eq!(first_value("1"), Some(1.0));
    assert_eq!(first_value("1x30"), Some(1.0));
    assert_eq!(first_value("0+0x30"), Some(0.0));
    assert_eq!(first_value("1+2x5"), Some(1.0));
    assert_eq!(first_value("5-1x4"), Some(5.0));
    assert_eq!(first_value("-3+1x4"), Some(-3.0));
    assert_eq!(first_value("1x4 2x5"), Some(1.0));
    assert_eq!(first_value("6 7x29"), Some(6.0));
    assert_eq!(first_value("1770632100x10"), Some(1770632100.0));
    assert_eq!(first_value("1.5e+3x2"), Some(1500.0));
    assert_eq!(first_value("0.25"), Some(0.25));
    assert_eq!(first_value("_ 1x3"), None);
    assert_eq!(first_value("stale"), None);
    assert_eq!(first_value(""), None);
}
