//! Schema awareness over the corpus:
//! - `schema` over every CRD of ../shared/corpus/crds, compared with
//!   tests/golden/schema/<crd>.txt;
//! - `flatten --crd` over every object of ../shared/corpus/custom whose kind has a CRD
//!   there, compared with tests/golden/crd/<file>.prom;
//! - every name `flatten --crd` produces is listed by `schema` for that CRD.
//!
//! Regenerate with UPDATE_GOLDEN=1 and review the diff against DESIGN.md.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use kube_field_exporter::cli::{FlattenArgs, FlattenConfig, SchemaArgs, SchemaConfig};
use kube_field_exporter::crd::{Crd, read_crd};
use kube_field_exporter::describe::{describe, matches};
use kube_field_exporter::flatten::{FlattenOptions, ResourceInfo, flatten};
use kube_field_exporter::input::read_path;
use kube_field_exporter::schema::SchemaNode;
use kube_field_exporter::{offline, schema_cmd};

fn sorted_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

fn check_golden(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return None;
    }
    match std::fs::read_to_string(path) {
        Ok(expected) if expected == actual => None,
        Ok(_) => Some(format!(
            "{} differs (UPDATE_GOLDEN=1 to regenerate, then review)",
            path.display()
        )),
        Err(_) => Some(format!("{} is missing (UPDATE_GOLDEN=1)", path.display())),
    }
}

/// Every corpus CRD by (group, kind), with its file.
fn corpus_crds() -> BTreeMap<(String, String), (PathBuf, Crd)> {
    let mut out = BTreeMap::new();
    for f in sorted_files(&support::corpus().join("crds")) {
        let (objs, errs) = read_path(&f);
        assert!(errs.is_empty(), "{f:?}: {errs:?}");
        for o in objs {
            let (crd, _) = read_crd(&o.value, &f.display().to_string()).unwrap();
            out.insert((crd.group.clone(), crd.kind.clone()), (f.clone(), crd));
        }
    }
    out
}

#[test]
fn schema_of_every_corpus_crd_matches_its_golden_file() {
    let mut failures = Vec::new();
    let mut n = 0;
    for f in sorted_files(&support::corpus().join("crds")) {
        let cfg = SchemaConfig::try_from(SchemaArgs {
            crds: vec![f.clone()],
            resource: vec![],
            kubeconfig: None,
            context: None,
            version: None,
            format: "text".into(),
            prefix: "k8s".into(),
            name_style: "as-written".into(),
            enum_heuristic: true,
            kind_name: vec![],
        })
        .unwrap();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let s = schema_cmd::run(&cfg, &mut out, &mut err).unwrap();
        assert_eq!(s.skipped, 0, "{f:?}: {}", String::from_utf8_lossy(&err));
        assert_eq!(s.kinds, 1, "{f:?}");
        assert!(s.series > 0, "{f:?} lists nothing");
        let stem = f.file_stem().unwrap().to_string_lossy().to_string();
        let golden = Path::new("tests/golden/schema").join(format!("{stem}.txt"));
        failures.extend(check_golden(&golden, &String::from_utf8(out).unwrap()));
        n += 1;
    }
    assert_eq!(n, 26);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn flatten_with_crd(object: &Path, crd: &Path) -> (String, String) {
    let args = FlattenArgs {
        paths: vec![object.to_path_buf()],
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
        crd: vec![crd.to_path_buf()],
    };
    let cfg = FlattenConfig::try_from(args).unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    offline::run(&cfg, &mut out, &mut err).unwrap();
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn flatten_with_crds_matches_golden_and_schema_lists_every_name() {
    let crds = corpus_crds();
    let mut failures = Vec::new();
    let mut objects = 0;
    let mut checked = 0;
    for f in sorted_files(&support::corpus().join("custom")) {
        let (objs, errs) = read_path(&f);
        if !errs.is_empty() || objs.len() != 1 {
            continue;
        }
        let o = &objs[0];
        let Some((crd_file, crd)) = crds.get(&(o.group.clone(), o.kind.clone())) else {
            continue;
        };
        objects += 1;
        let (out, err) = flatten_with_crd(&f, crd_file);
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        let golden = Path::new("tests/golden/crd").join(format!("{name}.prom"));
        failures.extend(check_golden(&golden, &out));
        assert!(!err.contains("error:"), "{name}: {err}");

        // The schema of the version flatten used lists every family it wrote.
        let api_version = o.value["apiVersion"].as_str().unwrap_or("");
        let version = api_version.rsplit('/').next().unwrap_or("");
        let v = crd
            .version(version)
            .or_else(|| crd.default_version())
            .unwrap();
        let mut res = ResourceInfo::from_kind(&crd.kind, &crd.group);
        res.plural = Some(crd.plural.clone());
        let docs = describe(
            &v.schema.clone().unwrap_or_default(),
            &res,
            crd.namespaced,
            &FlattenOptions::default(),
        );
        // As the API server stores it: fields outside a structural schema are pruned.
        let schema = v.schema.clone().unwrap_or_default();
        let mut pruned = o.value.clone();
        prune(&mut pruned, &schema, true);
        let flat = flatten(&pruned, &res, Some(&schema), &FlattenOptions::default()).unwrap();
        checked += flat.samples.len();
        for sample in &flat.samples {
            if !docs.iter().any(|d| matches(d, &sample.name)) {
                failures.push(format!(
                    "{name}: {} is not listed by `schema` for {}",
                    sample.name, crd.name
                ));
            }
        }
    }
    assert!(objects >= 20, "objects with a corpus CRD: {objects}");
    assert!(checked >= 500, "series checked against `schema`: {checked}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The API server's pruning of structural schemas: an object's fields that its schema
/// does not declare are dropped, unless the schema preserves unknown fields or is a map.
/// `metadata` at the root is the server's own (ObjectMeta) and is left alone.
fn prune(v: &mut serde_json::Value, schema: &SchemaNode, root: bool) {
    match v {
        serde_json::Value::Object(map) => {
            if schema.additional_properties.is_none() && !schema.preserve_unknown {
                map.retain(|k, _| {
                    schema.properties.contains_key(k)
                        || (root && matches!(k.as_str(), "apiVersion" | "kind" | "metadata"))
                });
            }
            for (k, child) in map.iter_mut() {
                if root && k == "metadata" {
                    continue;
                }
                if let Some(cs) = schema.child(k) {
                    prune(child, cs, false);
                }
            }
        }
        serde_json::Value::Array(items) => {
            if let Some(es) = schema.element() {
                for i in items {
                    prune(i, es, false);
                }
            }
        }
        _ => {}
    }
}

#[test]
fn a_schema_enum_lists_every_value() {
    let crds = corpus_crds();
    let (file, _) = &crds[&("velero.io".to_string(), "Backup".to_string())];
    let obj = support::corpus().join("custom/backup_velero_api-types-doc.yaml");
    let (out, _) = flatten_with_crd(&obj, file);
    let phases: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("k8s_backup_status_phase{"))
        .collect();
    for p in [
        "New",
        "InProgress",
        "Completed",
        "PartiallyFailed",
        "Failed",
        "Deleting",
    ] {
        assert!(
            phases
                .iter()
                .any(|l| l.contains(&format!("phase=\"{p}\"}} 0"))),
            "{p} missing: {phases:?}"
        );
    }
    assert!(phases.len() >= 10, "{phases:?}");
    assert_eq!(
        phases.iter().filter(|l| l.ends_with(" 1")).count(),
        1,
        "{phases:?}"
    );
    // And HELP is the schema's first sentence.
    assert!(
        out.contains("# HELP k8s_backup_status_phase Phase is the current state of the Backup.\n")
    );
}

#[test]
fn schema_errors_name_the_file_and_the_rest_is_described() {
    let dir = std::env::temp_dir().join(format!("kfe-schema-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_crd = dir.join("deploy.yaml");
    std::fs::write(
        &not_crd,
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n",
    )
    .unwrap();
    let no_schema = dir.join("noschema.yaml");
    std::fs::write(
        &no_schema,
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: things.example.com}\n\
         spec:\n  group: example.com\n  scope: Cluster\n  names: {kind: Thing, plural: things}\n  versions:\n  - {name: v1, served: true, storage: true}\n",
    )
    .unwrap();
    let cfg = SchemaConfig::try_from(SchemaArgs {
        crds: vec![
            not_crd.clone(),
            no_schema.clone(),
            support::corpus().join("crds/velero.io_backups.yaml"),
        ],
        resource: vec![],
        kubeconfig: None,
        context: None,
        version: None,
        format: "json".into(),
        prefix: "k8s".into(),
        name_style: "snake".into(),
        enum_heuristic: true,
        kind_name: vec![],
    })
    .unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let s = schema_cmd::run(&cfg, &mut out, &mut err).unwrap();
    let err = String::from_utf8(err).unwrap();
    assert_eq!(s.skipped, 1, "{err}");
    assert_eq!(s.kinds, 2, "{err}");
    assert!(
        err.contains("deploy.yaml") && err.contains("not a CustomResourceDefinition"),
        "{err}"
    );
    assert!(
        err.contains("noschema.yaml") && err.contains("no openAPIV3Schema"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let kinds: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Thing", "Backup"]);
    let backup = &v[1]["series"];
    let phase = backup
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "k8s_backup_status_phase")
        .expect("snake-style phase listed");
    assert_eq!(phase["values"], serde_json::json!(["enum"]));
    assert!(phase["enum_values"].as_array().unwrap().len() >= 10);
    let _ = std::fs::remove_dir_all(&dir);
}

/// docs/reference/velero-backup.md is `schema examples/crds --format markdown`, kept in
/// sync (regenerate with UPDATE_GOLDEN=1).
#[test]
fn the_generated_reference_of_the_bundled_example_is_current() {
    let cfg = SchemaConfig::try_from(SchemaArgs {
        crds: vec![PathBuf::from("examples/crds")],
        resource: vec![],
        kubeconfig: None,
        context: None,
        version: None,
        format: "markdown".into(),
        prefix: "k8s".into(),
        name_style: "as-written".into(),
        enum_heuristic: true,
        kind_name: vec![],
    })
    .unwrap();
    let mut out = Vec::new();
    let mut err = Vec::new();
    let s = schema_cmd::run(&cfg, &mut out, &mut err).unwrap();
    assert_eq!(
        (s.kinds, s.skipped),
        (1, 0),
        "{}",
        String::from_utf8_lossy(&err)
    );
    let text = String::from_utf8(out).unwrap();
    assert!(
        text.contains("| `k8s_backup_status_phase` | namespace, name, phase (New, Queued,"),
        "{text}"
    );
    if let Some(f) = check_golden(Path::new("docs/reference/velero-backup.md"), &text) {
        panic!("{f}");
    }
}
