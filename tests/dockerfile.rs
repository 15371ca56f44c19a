//! No docker engine here: the Dockerfile is checked for what matters instead — a
//! multi-stage release build with the locked dependencies CI uses, of the binary CI
//! tests; a minimal final image with only that binary, running as a non-root user; and
//! every path it copies exists in the repository (and is not excluded by .dockerignore).

use std::path::Path;

fn dockerfile() -> Vec<(String, String)> {
    let text = std::fs::read_to_string("Dockerfile").expect("Dockerfile at the repo root");
    // Join continuation lines, drop comments; (instruction, arguments).
    let mut out = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('#') || t.is_empty() {
            continue;
        }
        if let Some(stripped) = t.strip_suffix('\\') {
            current.push_str(stripped);
            current.push(' ');
            continue;
        }
        current.push_str(t);
        let (ins, args) = current.split_once(' ').unwrap_or((current.as_str(), ""));
        out.push((ins.to_uppercase(), args.trim().to_string()));
        current.clear();
    }
    out
}

#[test]
fn multi_stage_release_build_of_the_tested_binary() {
    let d = dockerfile();
    let froms: Vec<&String> = d
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(
        froms.len(),
        2,
        "a build stage and a runtime stage: {froms:?}"
    );
    assert!(froms[0].contains(" AS build"), "{froms:?}");
    let runs: Vec<&String> = d
        .iter()
        .filter(|(i, _)| i == "RUN")
        .map(|(_, a)| a)
        .collect();
    let build = runs
        .iter()
        .rfind(|r| r.contains("cargo build"))
        .expect("a cargo build");
    for flag in ["--release", "--locked", "--bin kube-field-exporter"] {
        assert!(build.contains(flag), "build lacks {flag}: {build}");
    }
    // The toolchain is at least the crate's rust-version.
    let manifest = std::fs::read_to_string("Cargo.toml").unwrap();
    let rv = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap()
        .trim_matches('"')
        .to_string();
    let image_version = froms[0]
        .split(':')
        .nth(1)
        .and_then(|t| t.split('-').next())
        .unwrap()
        .to_string();
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap()).collect() };
    assert!(
        parse(&image_version) >= parse(&rv),
        "rust image {image_version} < rust-version {rv}"
    );
}

#[test]
fn final_image_is_minimal_and_non_root() {
    let d = dockerfile();
    let last_from = d.iter().rposition(|(i, _)| i == "FROM").unwrap();
    let runtime = &d[last_from..];
    assert!(runtime[0].1.contains("distroless"), "{:?}", runtime[0]);
    assert!(
        !runtime.iter().any(|(i, _)| i == "RUN"),
        "nothing runs in the final stage"
    );
    let copies: Vec<&String> = runtime
        .iter()
        .filter(|(i, _)| i == "COPY")
        .map(|(_, a)| a)
        .collect();
    assert_eq!(copies.len(), 1, "only the binary: {copies:?}");
    assert!(copies[0].starts_with("--from=build /src/target/release/kube-field-exporter "));
    let user = runtime
        .iter()
        .find(|(i, _)| i == "USER")
        .expect("USER")
        .1
        .clone();
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric uid");
    assert!(
        uid >= 1000,
        "non-root numeric user (the chart's runAsNonRoot needs it): {user}"
    );
    let entry = runtime
        .iter()
        .find(|(i, _)| i == "ENTRYPOINT")
        .expect("ENTRYPOINT")
        .1
        .clone();
    let target = copies[0].split_whitespace().last().unwrap();
    assert!(
        entry.contains(target),
        "the entrypoint is the copied binary: {entry}"
    );
}

#[test]
fn copied_paths_exist_and_are_not_ignored() {
    let d = dockerfile();
    let ignore = std::fs::read_to_string(".dockerignore").unwrap_or_default();
    let ignored: Vec<&str> = ignore
        .lines()
        .map(|l| l.trim().trim_end_matches('/'))
        .collect();
    for (_, args) in d
        .iter()
        .filter(|(i, a)| i == "COPY" && !a.starts_with("--from"))
    {
        let parts: Vec<&str> = args.split_whitespace().collect();
        for src in &parts[..parts.len() - 1] {
            assert!(Path::new(src).exists(), "COPY source {src} does not exist");
            let top = src.split('/').next().unwrap();
            assert!(
                !ignored.contains(&top),
                "COPY source {src} is excluded by .dockerignore"
            );
        }
    }
    // Cargo.toml's targets all resolve inside the copied tree (a [[bench]] needs benches/).
    let manifest = std::fs::read_to_string("Cargo.toml").unwrap();
    if manifest.contains("[[bench]]") {
        assert!(
            d.iter()
                .any(|(i, a)| i == "COPY" && a.starts_with("benches")),
            "Cargo.toml declares benches; the build stage must copy benches/"
        );
    }
}
