//! The live exporter against the project's fake API server (tests/support/fake_api.rs):
//! every test starts its own fake on 127.0.0.1 and an exporter in-process, mutates the
//! fake and asserts what `/metrics`, `/readyz` and the self-metrics show.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::HeaderMap;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube_field_exporter::cli::FlattenConfig;
use kube_field_exporter::discovery::parse_specs;
use kube_field_exporter::flatten::FlattenOptions;
use kube_field_exporter::serve::{self, Running, ServeConfig, ServeError};
use serde_json::{Value, json};
use support::fake_api::{FakeApi, ResourceDef};

fn config(resources: &[&str]) -> ServeConfig {
    let specs: Vec<String> = resources.iter().map(|s| s.to_string()).collect();
    ServeConfig {
        specs: parse_specs(&specs).unwrap(),
        namespaces: vec![],
        label_selector: None,
        field_selector: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        options: FlattenOptions::default(),
        discovery_interval: Duration::from_millis(200),
        page_size: 500,
    }
}

async fn start(fake: &FakeApi, cfg: ServeConfig) -> Running {
    serve::start(cfg, fake.client())
        .await
        .expect("exporter starts")
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

async fn get_with(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::get(format!("http://{addr}{path}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = tokio::time::timeout(
        Duration::from_secs(10),
        client.request(req.body(Empty::new()).unwrap()),
    )
    .await
    .expect("response within 10s")
    .expect("request succeeds");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    Resp {
        status,
        headers,
        body,
    }
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let r = get_with(addr, path, &[]).await;
    (
        r.status,
        String::from_utf8(r.body.to_vec()).expect("utf-8 body"),
    )
}

async fn metrics(addr: SocketAddr) -> String {
    let (status, body) = get(addr, "/metrics").await;
    assert_eq!(status, 200);
    body
}

/// Poll /metrics until `pred` holds; panic with the last body after `timeout`.
async fn eventually(
    addr: SocketAddr,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let m = metrics(addr).await;
        if pred(&m) {
            return m;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}; /metrics:\n{m}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_ready(addr: SocketAddr) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = get(addr, "/readyz").await;
        if status == 200 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not ready after 10s: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The exposition with each family's sample lines sorted (headers in place).
fn family_sorted(text: &str) -> String {
    let mut out = String::new();
    let mut samples: Vec<&str> = Vec::new();
    let flush = |out: &mut String, samples: &mut Vec<&str>| {
        samples.sort_unstable();
        for l in samples.drain(..) {
            out.push_str(l);
            out.push('\n');
        }
    };
    for l in text.lines() {
        if l.starts_with('#') {
            flush(&mut out, &mut samples);
            out.push_str(l);
            out.push('\n');
        } else {
            samples.push(l);
        }
    }
    flush(&mut out, &mut samples);
    out
}

/// Everything but the exporter's own families.
fn user_families(m: &str) -> String {
    m.lines()
        .filter(|l| !l.contains("kube_field_exporter_"))
        .map(|l| format!("{l}\n"))
        .collect()
}

fn deployment(ns: &str, name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"namespace": ns, "name": name, "labels": {"app": name}},
           "spec": {"replicas": replicas},
           "status": {"availableReplicas": replicas}})
}

fn series_line(name: &str, ns: &str, value: i64) -> String {
    format!(
        "k8s_deployment_status_availableReplicas{{namespace=\"{ns}\",name=\"{name}\"}} {value}\n"
    )
}

const SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_update_delete_show_within_a_second() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "web", 3));
    let ex = start(&fake, config(&["deployments"])).await;
    wait_ready(ex.addr).await;
    let m = metrics(ex.addr).await;
    assert!(m.contains(&series_line("web", "default", 3)), "{m}");

    fake.apply(deployment("default", "api", 1));
    eventually(ex.addr, "create", SECOND, |m| {
        m.contains(&series_line("api", "default", 1))
    })
    .await;
    fake.apply(deployment("default", "api", 4));
    eventually(ex.addr, "update", SECOND, |m| {
        m.contains(&series_line("api", "default", 4))
            && !m.contains(&series_line("api", "default", 1))
    })
    .await;
    fake.delete("apps/v1", "Deployment", Some("default"), "api");
    let m = eventually(ex.addr, "delete", SECOND, |m| !m.contains("name=\"api\"")).await;
    assert!(
        m.contains(&series_line("web", "default", 3)),
        "the other object stays: {m}"
    );
    assert!(
        m.contains("kube_field_exporter_objects{resource=\"deployments\"} 1\n"),
        "{m}"
    );
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_lists_are_paginated_and_selectors_are_passed() {
    let fake = FakeApi::start().await;
    for i in 0..5 {
        fake.apply(deployment("default", &format!("d{i}"), i));
    }
    let mut other = deployment("default", "other", 9);
    other["metadata"]["labels"]["app"] = json!("other");
    other["metadata"]["labels"]["tier"] = json!("db");
    fake.apply(other);
    let mut cfg = config(&["deploy"]);
    cfg.page_size = 2;
    cfg.label_selector = Some("!tier".into());
    let ex = start(&fake, cfg).await;
    wait_ready(ex.addr).await;
    let m = metrics(ex.addr).await;
    for i in 0..5 {
        assert!(
            m.contains(&series_line(&format!("d{i}"), "default", i)),
            "d{i} missing: {m}"
        );
    }
    assert!(
        !m.contains("name=\"other\""),
        "label selector not applied: {m}"
    );
    let lists: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("/deployments") && !r.contains("watch=true"))
        .collect();
    assert!(
        lists.len() >= 3,
        "5 objects in pages of 2 need 3 lists: {lists:?}"
    );
    assert!(lists.iter().all(|r| r.contains("limit=2")), "{lists:?}");
    assert!(lists.iter().any(|r| r.contains("continue=")), "{lists:?}");
    assert!(
        lists.iter().all(|r| r.contains("labelSelector=%21tier")),
        "{lists:?}"
    );
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_410_relist_removes_objects_deleted_during_the_gap() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "keep", 1));
    fake.apply(deployment("default", "gone", 1));
    let ex = start(&fake, config(&["deployments.apps"])).await;
    wait_ready(ex.addr).await;
    fake.wait_for_watches(1).await;
    // The watch breaks and cannot come back while the object is deleted; the history is
    // compacted, so the watcher's resume gets 410 Expired and must relist.
    fake.fail("deployments", 500, None);
    fake.drop_watches();
    fake.delete("apps/v1", "Deployment", Some("default"), "gone");
    fake.apply(deployment("default", "changed-in-gap", 7));
    fake.expire_history();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let m = metrics(ex.addr).await;
    assert!(
        m.contains("name=\"gone\""),
        "nothing removed while the watch is down: {m}"
    );
    fake.clear_faults();
    let m = eventually(ex.addr, "relist", Duration::from_secs(10), |m| {
        !m.contains("name=\"gone\"") && m.contains(&series_line("changed-in-gap", "default", 7))
    })
    .await;
    assert!(m.contains(&series_line("keep", "default", 1)), "{m}");
    assert!(
        m.contains("kube_field_exporter_watch_errors_total{resource=\"deployments.apps\",reason=\"expired\"}")
            || m.contains("kube_field_exporter_watch_restarts_total{resource=\"deployments.apps\"} 1"),
        "the relist shows in self-metrics: {m}"
    );
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_resource_leaves_the_others_serving() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "web", 2));
    fake.apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"namespace": "default", "name": "cfg"}, "data": {"a": "1"}}));
    fake.forbid("configmaps");
    let ex = start(&fake, config(&["deployments", "configmaps"])).await;
    let m = eventually(ex.addr, "deployments served", Duration::from_secs(5), |m| {
        m.contains(&series_line("web", "default", 2))
            && m.contains("kube_field_exporter_watch_errors_total{resource=\"configmaps\",reason=\"forbidden\"}")
    })
    .await;
    assert!(
        m.contains("kube_field_exporter_resource_ready{resource=\"deployments\"} 1\n"),
        "{m}"
    );
    assert!(
        m.contains("kube_field_exporter_resource_ready{resource=\"configmaps\"} 0\n"),
        "{m}"
    );
    let (status, body) = get(ex.addr, "/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("configmaps") && body.contains("forbidden"),
        "{body}"
    );
    assert!(!body.contains("deployments"), "{body}");
    let (_, page) = get(ex.addr, "/").await;
    assert!(
        page.contains("configmaps") && page.contains("403"),
        "{page}"
    );

    // Permission granted later: it catches up without a restart.
    fake.clear_faults();
    eventually(ex.addr, "configmaps served", Duration::from_secs(40), |m| {
        m.contains("kube_field_exporter_resource_ready{resource=\"configmaps\"} 1\n")
    })
    .await;
    wait_ready(ex.addr).await;
    ex.shutdown().await;
}

fn widgets(version: &str) -> ResourceDef {
    ResourceDef::new("example.com", version, "widgets", "Widget", true).short(&["wd"])
}

fn widget(version: &str, name: &str, size: i64) -> Value {
    json!({"apiVersion": format!("example.com/{version}"), "kind": "Widget",
           "metadata": {"namespace": "default", "name": name},
           "spec": {"size": size}, "status": {"phase": "Ready"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_named_before_its_crd_exists_is_picked_up() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "web", 2));
    let ex = start(&fake, config(&["deployments", "widgets.example.com"])).await;
    eventually(ex.addr, "deployments", Duration::from_secs(5), |m| {
        m.contains(&series_line("web", "default", 2))
    })
    .await;
    let (status, body) = get(ex.addr, "/readyz").await;
    assert_eq!(status, 503);
    assert!(body.contains("widgets.example.com: waiting"), "{body}");
    let m = metrics(ex.addr).await;
    assert!(
        m.contains("kube_field_exporter_resource_phase{resource=\"widgets.example.com\",phase=\"waiting\"} 1\n"),
        "{m}"
    );

    fake.add_resource(widgets("v1alpha1"));
    fake.apply(widget("v1alpha1", "w1", 3));
    eventually(ex.addr, "the CRD's objects", Duration::from_secs(5), |m| {
        m.contains("k8s_widget_spec_size{namespace=\"default\",name=\"w1\"} 3\n")
    })
    .await;
    wait_ready(ex.addr).await;

    // The CRD moves on to v1 (v1alpha1 no longer served): re-resolved, still exported.
    fake.set_versions("example.com", "widgets", &["v1"], "v1");
    let m = eventually(
        ex.addr,
        "re-resolution to v1",
        Duration::from_secs(5),
        |m| m.contains("resolved=\"widgets.v1.example.com\""),
    )
    .await;
    assert!(
        m.contains("k8s_widget_spec_size{namespace=\"default\",name=\"w1\"} 3\n"),
        "{m}"
    );
    fake.apply(widget("v1", "w2", 5));
    eventually(
        ex.addr,
        "an object created at v1",
        Duration::from_secs(5),
        |m| m.contains("k8s_widget_spec_size{namespace=\"default\",name=\"w2\"} 5\n"),
    )
    .await;

    // The CRD is removed: its series go, the rest stays, and it waits again.
    fake.remove_resource("example.com", "widgets");
    let m = eventually(ex.addr, "CRD removal", Duration::from_secs(5), |m| {
        !m.contains("k8s_widget_")
    })
    .await;
    assert!(m.contains(&series_line("web", "default", 2)), "{m}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = get(ex.addr, "/readyz").await;
        if status == 503 && body.contains("widgets.example.com: waiting") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_and_500s_lose_nothing() {
    let fake = FakeApi::start().await;
    for i in 0..3 {
        fake.apply(deployment("default", &format!("d{i}"), 1));
    }
    let ex = start(&fake, config(&["deployments"])).await;
    wait_ready(ex.addr).await;
    fake.wait_for_watches(1).await;
    for round in 0..3 {
        fake.fail("deployments", 500, Some(2));
        fake.drop_watches();
        fake.apply(deployment("default", "d0", 10 + round));
        fake.apply(deployment("default", &format!("new{round}"), 1));
        let m = eventually(ex.addr, "recovery", Duration::from_secs(10), |m| {
            m.contains(&series_line("d0", "default", 10 + round))
                && m.contains(&series_line(&format!("new{round}"), "default", 1))
        })
        .await;
        for i in 1..3 {
            assert!(
                m.contains(&series_line(&format!("d{i}"), "default", 1)),
                "d{i} lost: {m}"
            );
        }
    }
    let m = metrics(ex.addr).await;
    assert!(
        m.contains("kube_field_exporter_watch_errors_total{resource=\"deployments\",reason=\"server_error\"}"),
        "{m}"
    );
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_is_negotiated_and_decodes_to_the_same_text() {
    use std::io::Read as _;
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "web", 3));
    let ex = start(&fake, config(&["deployments"])).await;
    wait_ready(ex.addr).await;
    let plain = get_with(ex.addr, "/metrics", &[]).await;
    assert_eq!(
        plain.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    assert!(plain.headers.get("content-encoding").is_none());
    let z = get_with(ex.addr, "/metrics", &[("accept-encoding", "gzip")]).await;
    assert_eq!(z.status, 200);
    assert_eq!(z.headers["content-encoding"], "gzip");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&z.body[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    assert_eq!(
        user_families(&text),
        user_families(&String::from_utf8_lossy(&plain.body))
    );
    assert!(text.contains(&series_line("web", "default", 3)));
    let (status, _) = get(ex.addr, "/healthz").await;
    assert_eq!(status, 200);
    let (status, _) = get(ex.addr, "/nope").await;
    assert_eq!(status, 404);
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_get_one_watch_each_and_cluster_scoped_kinds_one() {
    let fake = FakeApi::start().await;
    for ns in ["a", "b", "c"] {
        fake.apply(deployment(ns, "web", 1));
    }
    fake.apply(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
                      "spec": {"unschedulable": true}}),
    );
    let mut cfg = config(&["deployments", "nodes"]);
    cfg.namespaces = vec!["a".into(), "b".into()];
    let ex = start(&fake, cfg).await;
    wait_ready(ex.addr).await;
    let m = metrics(ex.addr).await;
    assert!(m.contains(&series_line("web", "a", 1)), "{m}");
    assert!(m.contains(&series_line("web", "b", 1)), "{m}");
    assert!(!m.contains("namespace=\"c\""), "{m}");
    assert!(
        m.contains("k8s_node_spec_unschedulable{name=\"n1\"} 1\n"),
        "{m}"
    );
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_kinds_with_one_name_refuse_to_start_unless_named() {
    let fake = FakeApi::start().await;
    fake.add_resource(ResourceDef::new("", "v1", "services", "Service", true).short(&["svc"]));
    fake.add_resource(
        ResourceDef::new("serving.knative.dev", "v1", "services", "Service", true).short(&["ksvc"]),
    );
    let mut ex = start(&fake, config(&["services", "services.serving.knative.dev"])).await;
    let err = tokio::time::timeout(Duration::from_secs(10), ex.wait())
        .await
        .expect("refused within 10s");
    match err {
        Err(ServeError::KindConflict(c)) => {
            assert_eq!(c.metric_kind, "service");
            assert_eq!(c.suggestion, "service_serving");
            let msg = c.to_string();
            assert!(
                msg.contains("--resource services.serving.knative.dev=service_serving"),
                "{msg}"
            );
        }
        other => panic!("expected a kind conflict, got {other:?}"),
    }
    ex.shutdown().await;

    fake.apply(
        json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                      "metadata": {"namespace": "default", "name": "hello"},
                      "status": {"observedGeneration": 2}}),
    );
    let ex = start(&fake, config(&["services", "ksvc=knativeservice"])).await;
    wait_ready(ex.addr).await;
    let m = metrics(ex.addr).await;
    assert!(
        m.contains(
            "k8s_knativeservice_status_observedGeneration{namespace=\"default\",name=\"hello\"} 2\n"
        ),
        "{m}"
    );
    ex.shutdown().await;
}

/// One contract: what `serve` exports for objects is what `flatten` prints for them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_metrics_equal_offline_flatten_of_the_same_objects() {
    let corpus = support::corpus();
    let fake = FakeApi::start().await;
    fake.add_resource(ResourceDef::new(
        "cert-manager.io",
        "v1",
        "certificates",
        "Certificate",
        true,
    ));
    let mut loaded = 0;
    for dir in ["builtin", "custom"] {
        let mut files: Vec<_> = std::fs::read_dir(corpus.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let stem = f.file_name().unwrap().to_string_lossy().to_string();
            if !(stem.starts_with("deployment_")
                || stem.starts_with("pod_")
                || stem.starts_with("certificate_"))
            {
                continue;
            }
            let (objs, errs) = kube_field_exporter::input::read_path(&f);
            assert!(errs.is_empty(), "{f:?}: {errs:?}");
            for o in objs {
                let mut v = o.value;
                if v["kind"] == "Deployment" {
                    v["apiVersion"] = json!("apps/v1"); // extensions/v1beta1 in old fixtures
                }
                fake.apply(v);
                loaded += 1;
            }
        }
    }
    assert!(loaded >= 10, "corpus objects loaded: {loaded}");
    let ex = start(
        &fake,
        config(&["deployments", "pods", "certificates.cert-manager.io"]),
    )
    .await;
    wait_ready(ex.addr).await;
    let live = user_families(&metrics(ex.addr).await);
    ex.shutdown().await;

    // The same objects, as stored by the API server, through the offline command.
    let dir = std::env::temp_dir().join(format!("kfe-contract-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut items = Vec::new();
    for (g, p) in [
        ("apps", "deployments"),
        ("", "pods"),
        ("cert-manager.io", "certificates"),
    ] {
        items.extend(fake.objects(g, p));
    }
    let file = dir.join("objects.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&json!({"kind": "List", "apiVersion": "v1", "items": items})).unwrap(),
    )
    .unwrap();
    let cfg = FlattenConfig {
        paths: vec![file],
        options: FlattenOptions::default(),
        kind_names: vec![],
        crds: vec![],
    };
    let mut out = Vec::new();
    let mut err = Vec::new();
    let summary = kube_field_exporter::offline::run(&cfg, &mut out, &mut err).unwrap();
    assert_eq!(summary.skipped, 0, "{}", String::from_utf8_lossy(&err));
    let offline = String::from_utf8(out).unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        offline.lines().count() > 100,
        "a meaningful comparison: {offline}"
    );
    // The order of objects within a family is not part of the contract (the live store
    // keeps arrival order, flatten input order): compare each family's lines sorted.
    let (live, offline) = (family_sorted(&live), family_sorted(&offline));
    if live != offline {
        let l: Vec<&str> = live.lines().collect();
        let o: Vec<&str> = offline.lines().collect();
        let first = l
            .iter()
            .zip(&o)
            .position(|(a, b)| a != b)
            .unwrap_or(l.len().min(o.len()));
        panic!(
            "live and offline differ at line {first}:\nlive:    {:?}\noffline: {:?}\n({} vs {} lines)",
            l.get(first),
            o.get(first),
            l.len(),
            o.len()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resource_that_cannot_be_watched_stops_the_exporter_at_start() {
    let fake = FakeApi::start().await;
    fake.add_resource(ResourceDef::new("", "v1", "bindings", "Binding", true).verbs(&["create"]));
    let mut ex = start(&fake, config(&["deployments", "bindings"])).await;
    let r = tokio::time::timeout(Duration::from_secs(10), ex.wait())
        .await
        .expect("refused within 10s");
    match r {
        Err(ServeError::Resolve(e)) => {
            let msg = e.to_string();
            assert!(
                msg.contains("bindings") && msg.contains("list and watch"),
                "{msg}"
            );
        }
        other => panic!("expected a resolve error, got {other:?}"),
    }
    ex.shutdown().await;
}

/// The whole live exposition, self-metrics included, passes `promtool check metrics`
/// without a single lint, and the strict parser of tests/support accepts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_exposition_passes_promtool_and_the_strict_parser() {
    use std::io::Write as _;
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "web", 3));
    fake.apply(json!({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"namespace": "default", "name": "p"},
                      "status": {"phase": "Running"}}));
    fake.forbid("configmaps");
    // Snake style: as-written names are camelCase, which promtool lints (DESIGN allows).
    let mut cfg = config(&["deployments", "pods", "configmaps", "widgets.example.com"]);
    cfg.options.name_style = kube_field_exporter::flatten::NameStyle::Snake;
    let ex = start(&fake, cfg).await;
    let m = eventually(ex.addr, "some traffic", Duration::from_secs(5), |m| {
        m.contains("reason=\"forbidden\"") && m.contains("k8s_pod_status_phase")
    })
    .await;
    ex.shutdown().await;
    if let Err(e) = support::exposition::parse(&m) {
        panic!("strict parser: {e}\n{m}");
    }
    let Some(promtool) = support::required_binary("promtool") else {
        return;
    };
    let mut child = std::process::Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(m.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool: {report}\n{m}");
    assert!(report.trim().is_empty(), "promtool lints: {report}");
}
