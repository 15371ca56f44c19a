//! Schemas in the live exporter, against the fake API server: CRD schemas (watched, a
//! change applies without a restart), OpenAPI v3 for built-ins, and the fallbacks when
//! CRDs or OpenAPI cannot be read.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube_field_exporter::discovery::parse_specs;
use kube_field_exporter::flatten::FlattenOptions;
use kube_field_exporter::serve::{self, Running, ServeConfig};
use serde_json::{Value, json};
use support::fake_api::FakeApi;

async fn start(fake: &FakeApi, resources: &[&str]) -> Running {
    start_with_interval(fake, resources, Duration::from_millis(200)).await
}

async fn start_with_interval(fake: &FakeApi, resources: &[&str], interval: Duration) -> Running {
    let specs: Vec<String> = resources.iter().map(|s| s.to_string()).collect();
    let cfg = ServeConfig {
        specs: parse_specs(&specs).unwrap(),
        namespaces: vec![],
        label_selector: None,
        field_selector: None,
        listen: "127.0.0.1:0".parse().unwrap(),
        options: FlattenOptions::default(),
        discovery_interval: interval,
        page_size: 500,
    };
    serve::start(cfg, fake.client())
        .await
        .expect("exporter starts")
}

async fn metrics(addr: SocketAddr) -> String {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::get(format!("http://{addr}/metrics"))
        .body(Empty::new())
        .unwrap();
    let resp = client.request(req).await.expect("scrape");
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

async fn eventually(addr: SocketAddr, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let m = metrics(addr).await;
        if pred(&m) {
            return m;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}; /metrics:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn widget_crd(phases: &[&str]) -> Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "widgets.example.com"},
           "spec": {"group": "example.com", "scope": "Namespaced",
                    "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"]},
                    "versions": [{"name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                            "spec": {"type": "object", "properties": {
                                "size": {"type": "integer", "description": "Size of the widget. In units."}}},
                            "status": {"type": "object", "properties": {
                                "phase": {"type": "string", "description": "Phase of the widget.",
                                          "enum": phases}}}}}}}]}})
}

fn widget(phase: &str) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"namespace": "default", "name": "w1"},
           "spec": {"size": 3}, "status": {"phase": phase}})
}

fn phase_line(phase: &str, v: u8) -> String {
    format!("k8s_widget_status_phase{{namespace=\"default\",name=\"w1\",phase=\"{phase}\"}} {v}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_enum_change_shows_on_metrics_without_a_restart() {
    let fake = FakeApi::start().await;
    fake.install_crd(widget_crd(&["Pending", "Ready"]));
    fake.apply(widget("Ready"));
    // Discovery every minute: only the CRD watch can bring the change in time.
    let ex = start_with_interval(&fake, &["widgets.example.com"], Duration::from_secs(60)).await;
    let m = eventually(ex.addr, "the schema enum", |m| {
        m.contains(&phase_line("Ready", 1))
    })
    .await;
    assert!(
        m.contains(&phase_line("Pending", 0)),
        "every schema value is listed: {m}"
    );
    assert!(
        m.contains("# HELP k8s_widget_spec_size Size of the widget.\n"),
        "{m}"
    );
    assert!(
        m.contains("# HELP k8s_widget_status_phase Phase of the widget.\n"),
        "{m}"
    );
    assert!(m.contains("schema=\"crd\""), "{m}");

    // The CRD gains a value (and a new description): the objects are re-rendered with
    // the new enum, and the family's HELP follows.
    let mut crd = widget_crd(&["Pending", "Ready", "Retired"]);
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]["properties"]
        ["phase"]["description"] = json!("Lifecycle phase.");
    fake.install_crd(crd);
    let m = eventually(ex.addr, "the new enum value", |m| {
        m.contains(&phase_line("Retired", 0))
    })
    .await;
    assert!(
        m.contains("# HELP k8s_widget_status_phase Lifecycle phase.\n"),
        "{m}"
    );
    assert!(m.contains(&phase_line("Ready", 1)), "{m}");
    assert!(m.contains(&phase_line("Pending", 0)), "{m}");
    // And a new object gets it too.
    let mut w2 = widget("Retired");
    w2["metadata"]["name"] = json!("w2");
    fake.apply(w2);
    eventually(ex.addr, "a new object", |m| {
        m.contains(
            "k8s_widget_status_phase{namespace=\"default\",name=\"w2\",phase=\"Retired\"} 1\n",
        ) && m.contains(
            "k8s_widget_status_phase{namespace=\"default\",name=\"w2\",phase=\"Pending\"} 0\n",
        )
    })
    .await;
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_crds_fall_back_to_openapi_and_then_to_the_heuristics() {
    // CRDs forbidden: the API server's OpenAPI v3 document (which has the CRD's schema).
    let fake = FakeApi::start().await;
    fake.forbid("customresourcedefinitions");
    fake.install_crd(widget_crd(&["Pending", "Ready"]));
    fake.apply(widget("Ready"));
    let ex = start(&fake, &["widgets"]).await;
    let m = eventually(ex.addr, "widgets via OpenAPI", |m| {
        m.contains(&phase_line("Ready", 1))
    })
    .await;
    assert!(m.contains(&phase_line("Pending", 0)), "{m}");
    assert!(m.contains("schema=\"openapi\""), "{m}");
    ex.shutdown().await;

    // OpenAPI off as well: heuristics (only the current CamelCase value), still serving.
    let fake = FakeApi::start().await;
    fake.forbid("customresourcedefinitions");
    fake.fail("openapi", 404, None);
    fake.install_crd(widget_crd(&["Pending", "Ready"]));
    fake.apply(widget("Ready"));
    let ex = start(&fake, &["widgets"]).await;
    let m = eventually(ex.addr, "widgets without schemas", |m| {
        m.contains(&phase_line("Ready", 1))
    })
    .await;
    assert!(!m.contains("phase=\"Pending\""), "{m}");
    assert!(m.contains("schema=\"none\""), "{m}");
    assert!(
        m.contains("# HELP k8s_widget_spec_size Widget field spec.size\n"),
        "{m}"
    );
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_kinds_get_help_and_enums_from_openapi_v3() {
    let fake = FakeApi::start().await;
    fake.set_openapi(
        "apps",
        "v1",
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.33.0"}, "paths": {},
               "components": {"schemas": {
                   "io.k8s.api.apps.v1.Deployment": {
                       "type": "object",
                       "x-kubernetes-group-version-kind": [{"group": "apps", "version": "v1", "kind": "Deployment"}],
                       "properties": {
                           "spec": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"}],
                                    "description": "Specification of the desired behavior of the Deployment."},
                           "status": {"allOf": [{"$ref": "#/components/schemas/io.k8s.api.apps.v1.DeploymentStatus"}]}}},
                   "io.k8s.api.apps.v1.DeploymentSpec": {"type": "object", "properties": {
                       "replicas": {"type": "integer", "format": "int32",
                                    "description": "Number of desired pods. Defaults to 1."},
                       "strategy": {"type": "object", "properties": {
                           "type": {"type": "string", "enum": ["Recreate", "RollingUpdate"],
                                    "description": "Type of deployment."}}}}},
                   "io.k8s.api.apps.v1.DeploymentStatus": {"type": "object", "properties": {
                       "replicas": {"type": "integer", "description": "Total number of non-terminated pods."}}}}}}),
    );
    fake.apply(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                      "metadata": {"namespace": "default", "name": "web"},
                      "spec": {"replicas": 2, "strategy": {"type": "RollingUpdate"}},
                      "status": {"replicas": 2}}));
    let ex = start(&fake, &["deploy"]).await;
    let m = eventually(ex.addr, "deployments", |m| {
        m.contains("k8s_deployment_spec_replicas{")
    })
    .await;
    assert!(
        m.contains("# HELP k8s_deployment_spec_replicas Number of desired pods.\n"),
        "{m}"
    );
    assert!(
        m.contains("# HELP k8s_deployment_status_replicas Total number of non-terminated pods.\n"),
        "{m}"
    );
    assert!(
        m.contains("k8s_deployment_spec_strategy_type{namespace=\"default\",name=\"web\",type=\"Recreate\"} 0\n"),
        "{m}"
    );
    assert!(m.contains("schema=\"openapi\""), "{m}");
    ex.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_command_describes_cluster_resources() {
    let fake = FakeApi::start().await;
    fake.install_crd(widget_crd(&["Pending", "Ready"]));
    let dir = std::env::temp_dir().join(format!("kfe-schema-cluster-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, fake.kubeconfig_yaml()).unwrap();
    let run = |args: Vec<String>| {
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_kube-field-exporter"))
                .args(args)
                .output()
                .unwrap()
        })
    };
    let out = run(vec![
        "schema".into(),
        "--kubeconfig".into(),
        kubeconfig.display().to_string(),
        "--resource".into(),
        "wd,nosuchthing".into(),
        "--format".into(),
        "json".into(),
    ])
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "one resource does not resolve: {stderr}"
    );
    assert!(stderr.contains("nosuchthing"), "{stderr}");
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(v[0]["kind"], "Widget");
    let phase = v[0]["series"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "k8s_widget_status_phase")
        .expect("phase listed");
    assert_eq!(phase["enum_values"], json!(["Pending", "Ready"]));
    assert_eq!(phase["labels"], json!(["namespace", "name", "phase"]));
    let _ = std::fs::remove_dir_all(&dir);
}
