//! The corpus output passes `promtool check metrics`: no parse error in either name
//! style, and no camelCase complaint in snake style. promtool is required in CI.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_kube-field-exporter");

/// Lint messages DESIGN.md accepts for field names we keep as they are.
const ACCEPTED_LINT: &[&str] = &[
    "non-histogram and non-summary metrics should not have \"_count\" suffix",
    "non-histogram and non-summary metrics should not have \"_sum\" suffix",
    "non-histogram and non-summary metrics should not have \"_bucket\" suffix",
    "non-counter metrics should not have \"_total\" suffix",
];

fn flatten_corpus(style: &str) -> Vec<u8> {
    let corpus = support::corpus();
    let out = Command::new(BIN)
        .args(["flatten", "--name-style", style])
        .arg(corpus.join("builtin"))
        .arg(corpus.join("custom"))
        .output()
        .unwrap();
    // The corpus holds a few objects that are skipped on purpose (no metadata.name, same
    // kind from two groups), so the status is 1; the output must still be complete.
    assert!(out.stdout.len() > 100_000, "too little output");
    support::exposition::parse(std::str::from_utf8(&out.stdout).unwrap()).unwrap();
    out.stdout
}

fn promtool_lint(promtool: &std::path::Path, exposition: &[u8]) -> (Option<i32>, Vec<String>) {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(exposition).unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text.lines().map(String::from).collect())
}

#[test]
fn corpus_output_parses_in_promtool_in_both_styles() {
    let Some(promtool) = support::required_binary("promtool") else {
        return;
    };
    for style in ["as-written", "snake"] {
        let (code, lines) = promtool_lint(&promtool, &flatten_corpus(style));
        // 0: clean; 3: lint problems only; anything else (1) is a parse error.
        assert!(
            matches!(code, Some(0) | Some(3)),
            "{style}: promtool failed: {lines:#?}"
        );
        assert!(
            !lines.iter().any(|l| l.starts_with("error while linting")),
            "{style}: promtool reported an error: {lines:#?}"
        );
        if style == "snake" {
            let unexpected: Vec<&String> = lines
                .iter()
                .filter(|l| !ACCEPTED_LINT.iter().any(|a| l.ends_with(a)))
                .collect();
            assert!(
                unexpected.is_empty(),
                "snake style lint complaints: {unexpected:#?}"
            );
        }
    }
}

#[test]
fn promtool_rejects_a_broken_exposition() {
    // Guards the check above: a parse error must not look like success.
    let Some(promtool) = support::required_binary("promtool") else {
        return;
    };
    let (code, _) = promtool_lint(&promtool, b"# TYPE a gauge\na{b=\"c} 1\n");
    assert_eq!(code, Some(1));
}
