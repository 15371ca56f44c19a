//! The `flatten` command end to end through the binary: offline-input rules, exit
//! statuses, error messages, stdin.

mod support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_kube-field-exporter");

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).unwrap()
}

fn tempdir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("kfe-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn stdin_json_list_like_kubectl_get_o_json() {
    let list = r#"{"apiVersion":"v1","kind":"List","items":[
      {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","namespace":"x"},"status":{"replicas":2}},
      {"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"b","namespace":"y"},"status":{"replicas":3}}]}"#;
    let o = run(&["flatten", "-"], Some(list));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "# HELP k8s_deployment_status_replicas Deployment field status.replicas\n\
         # TYPE k8s_deployment_status_replicas gauge\n\
         k8s_deployment_status_replicas{namespace=\"x\",name=\"a\"} 2\n\
         k8s_deployment_status_replicas{namespace=\"y\",name=\"b\"} 3\n"
    );
}

#[test]
fn directories_are_walked_recursively_in_sorted_order_and_families_merge() {
    let d = tempdir("walk");
    std::fs::create_dir_all(d.join("b/nested")).unwrap();
    let obj = |name: &str, v: u32| {
        format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nstatus:\n  v: {v}\n")
    };
    std::fs::write(d.join("b/nested/z.yml"), obj("p3", 3)).unwrap();
    std::fs::write(d.join("a.yaml"), obj("p1", 1)).unwrap();
    std::fs::write(
        d.join("b/c.json"),
        r#"{"kind":"Pod","metadata":{"name":"p2"},"status":{"v":2,"w":1}}"#,
    )
    .unwrap();
    std::fs::write(d.join("b/ignored.txt"), obj("nope", 9)).unwrap();
    let o = run(&["flatten", d.to_str().unwrap()], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        text(&o.stdout),
        "# HELP k8s_pod_status_v Pod field status.v\n# TYPE k8s_pod_status_v gauge\n\
         k8s_pod_status_v{name=\"p1\"} 1\nk8s_pod_status_v{name=\"p2\"} 2\nk8s_pod_status_v{name=\"p3\"} 3\n\
         # HELP k8s_pod_status_w Pod field status.w\n# TYPE k8s_pod_status_w gauge\n\
         k8s_pod_status_w{name=\"p2\"} 1\n"
    );
}

#[test]
fn bad_documents_are_reported_by_file_and_index_and_the_rest_is_flattened() {
    let d = tempdir("bad");
    std::fs::write(
        d.join("m.yaml"),
        "kind: Pod\nmetadata: {name: ok1}\nstatus: {v: 1}\n---\nkind: Pod\nstatus: {v: 2}\n---\n[1, 2]\n---\nkind: Pod\nmetadata: {name: [broken\n---\nmetadata: {name: nokind}\n---\nkind: Pod\nmetadata: {name: ok2}\nstatus: {v: 3}\n",
    )
    .unwrap();
    std::fs::write(d.join("n.json"), "{not json").unwrap();
    std::fs::write(d.join("o.yaml"), b"kind: Pod\nmetadata: {name: \"\xff\"}\n").unwrap();
    let o = run(&["flatten", d.to_str().unwrap()], None);
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(out.contains("k8s_pod_status_v{name=\"ok1\"} 1\n"), "{out}");
    assert!(out.contains("k8s_pod_status_v{name=\"ok2\"} 3\n"), "{out}");
    let err = text(&o.stderr);
    let m = d.join("m.yaml").display().to_string();
    for want in [
        format!("error: {m} (document 2): skipped: Pod has no metadata.name"),
        format!("error: {m} (document 3): skipped: not an object (found an array)"),
        format!("error: {m} (document 4, line 11): not valid YAML"),
        format!("error: {m} (document 5): skipped: no kind"),
        format!(
            "error: {}/n.json (document 1, line 1): not valid JSON",
            d.display()
        ),
        format!("error: {}/o.yaml: not UTF-8 text", d.display()),
    ] {
        assert!(err.contains(&want), "missing {want:?} in\n{err}");
    }
    assert_eq!(
        err.lines().filter(|l| l.starts_with("error:")).count(),
        6,
        "{err}"
    );
}

#[test]
fn missing_paths_and_bad_flags() {
    let o = run(&["flatten", "/nonexistent/x.yaml"], None);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("error: /nonexistent/x.yaml: No such file"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&["flatten", "--name-style=kebab", "-"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("invalid --name-style"));
    let o = run(&["flatten"], None);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["flatten", "--include", "(", "-"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("invalid --include regex"));
}

#[test]
fn same_kind_from_two_groups_is_refused_unless_renamed() {
    let input = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec: {port: 1}\n---\n\
                 apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata: {name: b}\nspec: {port: 2}\n";
    let o = run(&["flatten", "-"], Some(input));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("--kind-name Service.serving.knative.dev="),
        "{}",
        text(&o.stderr)
    );
    assert!(!text(&o.stdout).contains("name=\"b\""));
    let o = run(
        &[
            "flatten",
            "--kind-name",
            "Service.serving.knative.dev=knativeservice",
            "-",
        ],
        Some(input),
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(out.contains("k8s_service_spec_port{name=\"a\"} 1\n"));
    assert!(out.contains("k8s_knativeservice_spec_port{name=\"b\"} 2\n"));
}

#[test]
fn the_duplicate_guard_spans_the_run_in_input_order() {
    let input = "kind: Pod\nmetadata: {name: a}\nstatus: {v: 1}\n---\nkind: Pod\nmetadata: {name: a}\nstatus: {v: 2}\n";
    let o = run(&["flatten", "-"], Some(input));
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("k8s_pod_status_v{name=\"a\"} 1\n"));
    assert!(!text(&o.stdout).contains("} 2\n"));
    assert!(
        text(&o.stderr).contains("duplicate=1"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn the_enum_cap_spans_objects_and_warns_once() {
    let input: String = (0..5)
        .map(|i| format!("kind: Pod\nmetadata: {{name: p{i}}}\nstatus: {{phase: Phase{i}}}\n---\n"))
        .collect();
    let o = run(&["flatten", "--enum-cap", "3", "-"], Some(&input));
    assert!(o.status.success());
    let out = text(&o.stdout);
    assert!(out.contains("phase=\"Phase2\""));
    assert!(!out.contains("phase=\"Phase3\""));
    let err = text(&o.stderr);
    assert_eq!(
        err.matches("warning: k8s_pod_status_phase: more than 3")
            .count(),
        1,
        "{err}"
    );
    assert!(err.contains("enum_cap=2"), "{err}");
}

#[test]
fn yaml_1_2_scalars_from_files() {
    let input = "kind: Thing\nmetadata: {name: t}\nspec:\n  on: yes\n  flag: true\n  when: 2026-02-09T10:15:00Z\n  n: 1_000\n";
    let o = run(&["flatten", "-"], Some(input));
    assert!(o.status.success());
    let samples: Vec<String> = text(&o.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(String::from)
        .collect();
    assert_eq!(
        samples,
        [
            "k8s_thing_spec_flag{name=\"t\"} 1",
            "k8s_thing_spec_when{name=\"t\"} 1770632100"
        ]
    );
}

#[test]
fn bundled_examples_flatten_cleanly() {
    let o = run(&["flatten", "examples/manifests"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    support::exposition::parse(&out).unwrap();
    assert!(out.contains(
        "k8s_deployment_status_availableReplicas{namespace=\"default\",name=\"helloworld\"} 1\n"
    ));
    assert!(out.contains("k8s_node_status_capacity_cpu{name=\"node-1\"} 4\n"));
    assert!(out.contains(
        "k8s_backup_status_phase{namespace=\"velero\",name=\"daily\",phase=\"Completed\"} 1\n"
    ));
}

#[test]
fn serve_flag_errors_exit_2_before_touching_a_cluster() {
    for (args, needle) in [
        (vec!["serve"], "no resource to watch"),
        (vec!["serve", "--resource", ","], "no resource to watch"),
        (
            vec!["serve", "--resource", "pods=1x"],
            "metric kind after '='",
        ),
        (
            vec!["serve", "--resource", "pods", "--listen", "nope"],
            "invalid --listen",
        ),
        (
            vec![
                "serve",
                "--resource",
                "pods",
                "--discovery-interval",
                "10ms",
            ],
            "invalid --discovery-interval",
        ),
        (
            vec!["serve", "--resource", "pods", "--log-format", "xml"],
            "invalid --log-format",
        ),
        (
            vec!["serve", "--resource", "pods", "--prefix", "__x"],
            "invalid --prefix",
        ),
        (
            vec!["serve", "--resource", "pods", "--page-size", "0"],
            "page-size",
        ),
        (
            vec!["serve", "--resource", "pods", "--include", "("],
            "invalid --include regex",
        ),
    ] {
        let out = run(&args, None);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn serve_with_an_unreadable_kubeconfig_names_the_file_and_exits_1() {
    let out = run(
        &[
            "serve",
            "--resource",
            "pods",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
            "--listen",
            "127.0.0.1:0",
        ],
        None,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/nonexistent/kubeconfig"), "{err}");
}

#[test]
fn serve_help_lists_the_flags() {
    let out = run(&["serve", "--help"], None);
    assert!(out.status.success());
    let help = text(&out.stdout);
    for flag in [
        "--resource",
        "--namespace",
        "--label-selector",
        "--field-selector",
        "--listen",
        "--kubeconfig",
        "--context",
        "--log-format",
        "--prefix",
        "--include",
        "--enum-cap",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}
