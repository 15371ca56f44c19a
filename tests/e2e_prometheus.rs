//! End to end: the real binary (`serve --kubeconfig`) against the fake API server, scraped
//! by a real Prometheus (Debian package), queried through Prometheus' HTTP API. Also
//! checks that SIGTERM stops the exporter cleanly. Needs `prometheus` on PATH; in CI a
//! missing binary fails the test.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use support::fake_api::FakeApi;

/// Kills its child on drop (a failing test leaves no process behind).
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

async fn get(url: &str) -> Option<(u16, String)> {
    let client: Client<HttpConnector, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::get(url).body(Empty::new()).unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(5), client.request(req))
        .await
        .ok()?
        .ok()?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// Poll until `f` returns Some, or panic with `what` after `timeout`.
async fn until<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn deployment(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
           "metadata": {"namespace": "default", "name": "web"},
           "spec": {"replicas": replicas},
           "status": {"availableReplicas": replicas}})
}

/// The value Prometheus returns for an instant query with one result.
async fn query(prom: SocketAddr, q: &str) -> Option<String> {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = get(&format!("http://{prom}/api/v1/query?query={enc}")).await?;
    if status != 200 {
        return None;
    }
    let v: Value = serde_json::from_str(&body).ok()?;
    let result = v["data"]["result"].as_array()?;
    if result.len() != 1 {
        return None;
    }
    result[0]["value"][1].as_str().map(str::to_string)
}

/// The exporter binary (against the fake API server) and a Prometheus scraping it every
/// second, evaluating `rule_files`.
struct Stack {
    exporter: Guard,
    _prom: Guard,
    exporter_addr: SocketAddr,
    prom_addr: SocketAddr,
    dir: std::path::PathBuf,
}

async fn start_stack(
    prometheus: &Path,
    fake: &FakeApi,
    name: &str,
    resources: &[&str],
    rule_files: &[std::path::PathBuf],
) -> Stack {
    let dir = std::env::temp_dir().join(format!("kfe-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    write(&kubeconfig, &fake.kubeconfig_yaml());
    let exporter_addr = free_port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kube-field-exporter"));
    cmd.args(["serve", "--kubeconfig"]).arg(&kubeconfig);
    for r in resources {
        cmd.args(["--resource", r]);
    }
    let exporter = cmd
        .arg("--listen")
        .arg(exporter_addr.to_string())
        .args(["--discovery-interval", "1s", "--log-format", "json"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the exporter");
    let exporter = Guard(Some(exporter));
    until(
        "the exporter to be ready",
        Duration::from_secs(20),
        || async {
            get(&format!("http://{exporter_addr}/readyz"))
                .await
                .filter(|(s, _)| *s == 200)
        },
    )
    .await;
    let prom_addr = free_port();
    let config = dir.join("prometheus.yml");
    let rules: String = rule_files
        .iter()
        .map(|f| format!("  - '{}'\n", f.display()))
        .collect();
    let rules = if rules.is_empty() {
        String::new()
    } else {
        format!("rule_files:\n{rules}")
    };
    write(
        &config,
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n{rules}\
             scrape_configs:\n  - job_name: kube-field-exporter\n    honor_labels: true\n    static_configs:\n      - targets: ['{exporter_addr}']\n"
        ),
    );
    let prom = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    Stack {
        exporter,
        _prom: Guard(Some(prom)),
        exporter_addr,
        prom_addr,
        dir,
    }
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_exporter_and_sees_changes() {
    let Some(prometheus) = support::required_binary("prometheus") else {
        return;
    };
    let fake = FakeApi::start().await;
    fake.apply(deployment(3));
    let stack = start_stack(&prometheus, &fake, "scrape", &["deployments"], &[]).await;
    let prom_addr = stack.prom_addr;
    let mut exporter = stack.exporter;
    let dir = stack.dir;
    let q = "k8s_deployment_status_availableReplicas{namespace=\"default\",name=\"web\"}";
    let v = until(
        "Prometheus to scrape the series",
        Duration::from_secs(60),
        || async { query(prom_addr, q).await.filter(|v| v == "3") },
    )
    .await;
    assert_eq!(v, "3");
    let up = query(prom_addr, "up{job=\"kube-field-exporter\"}").await;
    assert_eq!(up.as_deref(), Some("1"), "the target is up");
    let built = query(prom_addr, "kube_field_exporter_build_info").await;
    assert_eq!(built.as_deref(), Some("1"), "self-metrics are scraped too");

    // A change in the cluster reaches Prometheus.
    fake.apply(deployment(5));
    until(
        "Prometheus to see the update",
        Duration::from_secs(30),
        || async { query(prom_addr, q).await.filter(|v| v == "5") },
    )
    .await;

    // SIGTERM: a clean exit with status 0.
    let mut child = exporter.0.take().unwrap();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("the exporter did not stop within 15s of SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut logs = String::new();
    if let Some(mut e) = child.stderr.take() {
        use std::io::Read as _;
        let _ = e.read_to_string(&mut logs);
    }
    assert!(exit.success(), "exit status {exit:?}; logs:\n{logs}");
    // --log-format json: every log line is a JSON object.
    let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the exporter logged something");
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v.get("level").is_some(), "{l}");
    }
    assert!(logs.contains("initial list complete"), "{logs}");
    let _ = std::fs::remove_dir_all(&dir);
    let _ = stack.exporter_addr;
}

/// The backups example end to end: its CRD and objects in the fake API server, the
/// exporter, and a real Prometheus evaluating the example's own rules file: the
/// `BackupFailed` alert fires for the failed backup, and only for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backups_example_alert_fires_in_prometheus() {
    let Some(prometheus) = support::required_binary("prometheus") else {
        return;
    };
    let example = std::env::current_dir().unwrap().join("examples/backups");
    let read = |f: &str| -> Vec<Value> {
        let (objs, errs) = kube_field_exporter::input::read_path(&example.join(f));
        assert!(errs.is_empty(), "{f}: {errs:?}");
        objs.into_iter().map(|o| o.value).collect()
    };
    let crd = read("crd.yaml").remove(0);
    let resource = format!(
        "{}.{}",
        crd["spec"]["names"]["plural"].as_str().unwrap(),
        crd["spec"]["group"].as_str().unwrap()
    );
    let fake = FakeApi::start().await;
    fake.install_crd(crd);
    for o in read("objects.yaml") {
        fake.apply(o);
    }
    let stack = start_stack(
        &prometheus,
        &fake,
        "alert",
        &[&resource],
        &[example.join("rules.yaml")],
    )
    .await;
    let prom = stack.prom_addr;
    let firing = until("BackupFailed to fire", Duration::from_secs(60), || async {
        let (status, body) = get(&format!("http://{prom}/api/v1/alerts")).await?;
        if status != 200 {
            return None;
        }
        let v: Value = serde_json::from_str(&body).ok()?;
        let alerts: Vec<Value> = v["data"]["alerts"]
            .as_array()?
            .iter()
            .filter(|a| a["labels"]["alertname"] == "BackupFailed" && a["state"] == "firing")
            .cloned()
            .collect();
        (!alerts.is_empty()).then_some(alerts)
    })
    .await;
    assert_eq!(firing.len(), 1, "only the failed backup: {firing:?}");
    assert_eq!(firing[0]["labels"]["name"], "nightly-db", "{firing:?}");
    assert_eq!(firing[0]["labels"]["namespace"], "prod", "{firing:?}");
    let _ = std::fs::remove_dir_all(&stack.dir);
}
