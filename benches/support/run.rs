//! What every bench binary shares: whether it is measuring, sizes from the environment,
//! and where its facts go (included by each bench through `#[path]`).
#![allow(dead_code)]

/// Whether this run measures: `cargo bench` passes `--bench`; `cargo test --benches`
/// runs the binary without it (each benchmark once, small sizes), `--list` lists.
pub fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag);
    has("--bench") && !has("--test") && !has("--list")
}

/// A size: `$var` if set and a number, else `full` when measuring, `test` otherwise.
pub fn size(var: &str, full: usize, test: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if measuring() { full } else { test })
}

/// Write `facts` to `$KFE_BENCH_OUT/<name>.json` when `KFE_BENCH_OUT` is set (for
/// `benches/run.sh` and `benches/report.py`). Panics naming the file if it cannot.
pub fn write_facts(name: &str, facts: &serde_json::Value) {
    let Some(dir) = std::env::var_os("KFE_BENCH_OUT") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir).expect("create $KFE_BENCH_OUT");
    let path = dir.join(format!("{name}.json"));
    let text = serde_json::to_string_pretty(facts).expect("serialize") + "\n";
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}
