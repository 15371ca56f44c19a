//! Test support shared by the integration tests.

#![allow(dead_code)]

pub mod exposition;
pub mod fake_api;

use std::path::PathBuf;

/// `../shared/corpus` relative to the repo root; a missing corpus is a failure.
pub fn corpus() -> PathBuf {
    let p = PathBuf::from("../shared/corpus");
    assert!(
        p.join("MANIFEST.md").exists(),
        "the shared corpus is missing at {} (expected beside the repo)",
        p.display()
    );
    p
}

/// A binary the tests need (`promtool`): its path, or None when it is missing and we
/// are not in CI. In CI (CI=true) a missing binary fails the test.
pub fn required_binary(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let ci = std::env::var("CI")
            .map(|v| v == "true" || v == "1")
            .unwrap_or(false);
        assert!(
            !ci,
            "{name} is required in CI but is not on PATH (.ci/run installs it)"
        );
        eprintln!("warning: {name} not found; this check did not run (it runs in CI)");
    }
    found
}
