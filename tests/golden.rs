//! Golden tests: every object of ../shared/corpus/builtin and ../shared/corpus/custom is
//! flattened on its own and compared with tests/golden/<folder>/<file>.prom (and, where
//! the file is reported, <file>.stderr). Regenerate with UPDATE_GOLDEN=1, then review
//! the diff against DESIGN.md before committing.

mod support;

use std::path::{Path, PathBuf};

use kube_field_exporter::cli::{FlattenArgs, FlattenConfig};
use kube_field_exporter::offline;

fn config(path: &Path) -> FlattenConfig {
    let args = FlattenArgs {
        paths: vec![path.to_path_buf()],
        prefix: "k8s".into(),
        name_style: "as-written".into(),
        enum_path: vec![],
        enum_heuristic: true,
        include: vec![],
        exclude: vec![],
        labels_allowlist: vec![],
        annotations_allowlist: vec![],
        array_cap: 64,
        enum_cap: 32,
        kind_name: vec![],
        crd: vec![],
    };
    FlattenConfig::try_from(args).unwrap()
}

fn check_folder(folder: &str) {
    let dir = support::corpus().join(folder);
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() > 20, "corpus folder {folder} looks empty");
    let golden_dir = Path::new("tests/golden").join(folder);
    std::fs::create_dir_all(&golden_dir).unwrap();
    let mut failures = Vec::new();
    for f in &files {
        let mut out = Vec::new();
        let mut err = Vec::new();
        offline::run(&config(f), &mut out, &mut err).unwrap();
        let out = String::from_utf8(out).unwrap();
        let err = String::from_utf8(err).unwrap();
        support::exposition::parse(&out)
            .unwrap_or_else(|e| panic!("{}: invalid exposition: {e}", f.display()));
        let base = golden_dir.join(f.file_name().unwrap());
        let prom =
            base.with_extension(format!("{}.prom", f.extension().unwrap().to_str().unwrap()));
        let stderr = prom.with_extension("stderr");
        if update {
            std::fs::write(&prom, &out).unwrap();
            if err.is_empty() {
                let _ = std::fs::remove_file(&stderr);
            } else {
                std::fs::write(&stderr, &err).unwrap();
            }
            continue;
        }
        let want = std::fs::read_to_string(&prom).unwrap_or_default();
        let want_err = std::fs::read_to_string(&stderr).unwrap_or_default();
        if want != out || want_err != err {
            failures.push(f.display().to_string());
        }
    }
    assert!(
        failures.is_empty(),
        "output differs from the golden files for {} objects (UPDATE_GOLDEN=1 to regenerate, \
         then review): {failures:#?}",
        failures.len()
    );
}

#[test]
fn builtin_corpus_matches_golden_files() {
    check_folder("builtin");
}

#[test]
fn custom_corpus_matches_golden_files() {
    check_folder("custom");
}
