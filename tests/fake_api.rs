//! The fake API server (tests/support/fake_api.rs) against a real kube client and
//! kube-runtime watcher.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures::{Stream, StreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams, ResourceExt, WatchEvent, WatchParams};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Discovery};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use support::fake_api::{FakeApi, ResourceDef};
use tokio::sync::mpsc;

const STEP: Duration = Duration::from_secs(10);

fn deployment(ns: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"namespace": ns, "name": name, "labels": labels},
        "spec": {"replicas": 1},
    })
}

fn widget(name: &str) -> Value {
    json!({
        "apiVersion": "example.com/v1",
        "kind": "Widget",
        "metadata": {"namespace": "default", "name": name},
        "spec": {"size": 3},
    })
}

fn widgets_def() -> ResourceDef {
    ResourceDef::new("example.com", "v1", "widgets", "Widget", true).short(&["wd"])
}

fn deployments_ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps", "v1", "Deployment"),
        "deployments",
    )
}

fn dyn_api(api: &FakeApi, ar: &ApiResource) -> Api<DynamicObject> {
    Api::all_with(api.client(), ar)
}

/// A watcher event as a short string, objects as `label` gives them, errors as
/// `Err(<code>)`.
fn describe<K>(ev: &Result<Event<K>, watcher::Error>, label: impl Fn(&K) -> String) -> String {
    match ev {
        Ok(Event::Init) => "Init".into(),
        Ok(Event::InitApply(o)) => format!("InitApply({})", label(o)),
        Ok(Event::InitDone) => "InitDone".into(),
        Ok(Event::Apply(o)) => format!("Apply({})", label(o)),
        Ok(Event::Delete(o)) => format!("Delete({})", label(o)),
        Err(e) => format!(
            "Err({})",
            error_code(e).map_or_else(|| e.to_string(), |c| c.to_string())
        ),
    }
}

fn error_code(e: &watcher::Error) -> Option<u16> {
    match e {
        watcher::Error::InitialListFailed(kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(kube::Error::Api(s))
        | watcher::Error::WatchFailed(kube::Error::Api(s)) => Some(s.code),
        watcher::Error::WatchError(s) => Some(s.code),
        _ => None,
    }
}

/// The watcher driven on its own task (as the exporter does), its events described.
struct Events(mpsc::UnboundedReceiver<String>);

/// Objects described by name.
fn spawn_watcher<S>(stream: S) -> Events
where
    S: Stream<Item = Result<Event<DynamicObject>, watcher::Error>> + Send + 'static,
{
    spawn_watcher_with(stream, |o: &DynamicObject| o.name_any())
}

fn spawn_watcher_with<K, S, F>(stream: S, label: F) -> Events
where
    K: Send + 'static,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Send + 'static,
    F: Fn(&K) -> String + Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut stream = Box::pin(stream);
        while let Some(ev) = stream.next().await {
            if tx.send(describe(&ev, &label)).is_err() {
                break;
            }
        }
    });
    Events(rx)
}

/// Read events until one equals `want`; returns everything read (including it).
async fn read_until(events: &mut Events, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        match tokio::time::timeout(STEP, events.0.recv()).await {
            Ok(Some(d)) => {
                seen.push(d.clone());
                if d == want {
                    return seen;
                }
            }
            Ok(None) => panic!("watcher stream ended while waiting for {want}; saw {seen:?}"),
            Err(_) => panic!("timed out waiting for {want}; saw {seen:?}"),
        }
    }
}

fn names(list: &kube::core::ObjectList<DynamicObject>) -> Vec<String> {
    list.items.iter().map(|o| o.name_any()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_paginates_with_limit_and_continue() {
    let fake = FakeApi::start().await;
    for (ns, name) in [
        ("b", "d3"),
        ("a", "d1"),
        ("b", "d4"),
        ("a", "d0"),
        ("a", "d2"),
    ] {
        fake.apply(deployment(ns, name, json!({})));
    }
    let discovery = tokio::time::timeout(STEP, Discovery::new(fake.client()).run())
        .await
        .expect("discovery in time")
        .expect("discovery");
    let (ar, _caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("apps", "v1", "Deployment"))
        .expect("deployments discovered");
    let api = dyn_api(&fake, &ar);
    fake.clear_requests();

    let mut lp = ListParams::default().limit(2);
    let mut pages = Vec::new();
    let mut rvs = Vec::new();
    loop {
        let page = tokio::time::timeout(STEP, api.list(&lp))
            .await
            .unwrap()
            .expect("list page");
        pages.push(names(&page));
        rvs.push(page.metadata.resource_version.clone().unwrap());
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(c) => lp = lp.continue_token(&c),
            None => break,
        }
    }
    assert_eq!(pages, vec![vec!["d0", "d1"], vec!["d2", "d3"], vec!["d4"]]);
    assert!(
        rvs.iter().all(|rv| rv == &rvs[0]),
        "one snapshot rv: {rvs:?}"
    );
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert_eq!(
        reqs[0], "GET /apis/apps/v1/deployments?&limit=2",
        "{reqs:?}"
    );
    assert!(
        reqs[1..].iter().all(|r| r.contains("limit=2&continue=")),
        "{reqs:?}"
    );

    // Items carry the apiVersion/kind; namespaced listing filters.
    let page = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(page.items[0].types.as_ref().unwrap().api_version, "apps/v1");
    let ns_api: Api<DynamicObject> = Api::namespaced_with(fake.client(), "b", &ar);
    assert_eq!(
        names(&ns_api.list(&ListParams::default()).await.unwrap()),
        vec!["d3", "d4"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_token_is_a_consistent_snapshot_and_expires() {
    let fake = FakeApi::start().await;
    for name in ["a", "b", "c", "d"] {
        fake.apply(deployment("default", name, json!({})));
    }
    let api = dyn_api(&fake, &deployments_ar());
    let first = api.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.metadata.remaining_item_count, Some(2));
    let token = first.metadata.continue_.clone().unwrap();
    // Changes after the first page do not show in the next one.
    fake.delete("apps/v1", "Deployment", Some("default"), "c");
    fake.apply(deployment("default", "bb", json!({})));
    let second = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(names(&second), vec!["c", "d"]);
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );

    fake.expire_history();
    let err = api
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .expect_err("expired continue token");
    match err {
        kube::Error::Api(s) => assert_eq!((s.code, s.reason.as_str()), (410, "Expired")),
        other => panic!("unexpected error {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_finds_short_names_and_new_crds() {
    let fake = FakeApi::start().await;
    let client = fake.client();
    let apps = client.list_api_group_resources("apps/v1").await.unwrap();
    let deploy = apps
        .resources
        .iter()
        .find(|r| {
            r.short_names
                .as_ref()
                .is_some_and(|s| s.iter().any(|n| n == "deploy"))
        })
        .expect("a resource with short name deploy");
    assert_eq!(
        (deploy.name.as_str(), deploy.kind.as_str()),
        ("deployments", "Deployment")
    );
    assert!(deploy.namespaced);
    let core = client.list_core_api_resources("v1").await.unwrap();
    let nodes = core
        .resources
        .iter()
        .find(|r| r.name == "nodes")
        .expect("nodes");
    assert!(!nodes.namespaced);

    let d = Discovery::new(client.clone()).run().await.unwrap();
    assert!(!d.has_group("example.com"));
    assert!(d.has_group("apps") && d.has_group(""));

    fake.add_resource(widgets_def());
    fake.add_resource(widgets_def()); // idempotent
    let d = Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = d
        .resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("CRD discovered after add_resource");
    assert_eq!(ar.plural, "widgets");
    assert!(caps.supports_operation("watch"));
    assert_eq!(
        d.get("example.com").unwrap().recommended_resources().len(),
        1,
        "idempotent add_resource"
    );

    // Aggregated discovery agrees.
    let agg = Discovery::new(client.clone())
        .run_aggregated()
        .await
        .unwrap();
    assert!(
        agg.resolve_gvk(&GroupVersionKind::gvk("example.com", "v1", "Widget"))
            .is_some()
    );
    assert!(
        agg.resolve_gvk(&GroupVersionKind::gvk("", "v1", "Pod"))
            .is_some()
    );

    let unknown = client
        .list_api_group_resources("nope.io/v1")
        .await
        .expect_err("404");
    assert!(matches!(unknown, kube::Error::Api(s) if s.code == 404 && s.reason == "NotFound"));
    let info = client.apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "33"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_sees_init_then_apply_and_delete() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "b", json!({})));
    fake.apply(deployment("default", "a", json!({})));
    let api = dyn_api(&fake, &deployments_ar());
    let mut w = spawn_watcher(watcher(api, watcher::Config::default()));
    let init = read_until(&mut w, "InitDone").await;
    assert_eq!(
        init,
        vec!["Init", "InitApply(a)", "InitApply(b)", "InitDone"]
    );
    fake.wait_for_watches(1).await;

    fake.apply(deployment("default", "c", json!({})));
    assert_eq!(read_until(&mut w, "Apply(c)").await, vec!["Apply(c)"]);
    fake.apply(deployment("default", "a", json!({"v": "2"})));
    assert_eq!(read_until(&mut w, "Apply(a)").await, vec!["Apply(a)"]);
    assert!(fake.delete("apps/v1", "Deployment", Some("default"), "b"));
    assert!(!fake.delete("apps/v1", "Deployment", Some("default"), "b"));
    assert_eq!(read_until(&mut w, "Delete(b)").await, vec!["Delete(b)"]);

    let reqs = fake.requests();
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("GET /apis/apps/v1/deployments?&limit=500")),
        "{reqs:?}"
    );
    assert!(
        reqs.iter().any(|r| r
            .contains("watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=")),
        "{reqs:?}"
    );
}

fn watcher(
    api: Api<DynamicObject>,
    config: watcher::Config,
) -> impl Stream<Item = Result<Event<DynamicObject>, watcher::Error>> + Send {
    kube::runtime::watcher(api, config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_paginates_its_initial_list() {
    let fake = FakeApi::start().await;
    for i in 0..5 {
        fake.apply(deployment("default", &format!("d{i}"), json!({})));
    }
    let api = dyn_api(&fake, &deployments_ar());
    let mut w = spawn_watcher(watcher(api, watcher::Config::default().page_size(2)));
    let init = read_until(&mut w, "InitDone").await;
    assert_eq!(init.len(), 7, "{init:?}");
    let lists: Vec<String> = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("limit=2"))
        .collect();
    assert_eq!(lists.len(), 3, "{lists:?}");
    assert_eq!(
        lists.iter().filter(|r| r.contains("continue=")).count(),
        2,
        "{lists:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watch_resumes_without_relist() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "a", json!({})));
    let api = dyn_api(&fake, &deployments_ar());
    let mut w = spawn_watcher(watcher(api, watcher::Config::default()));
    read_until(&mut w, "InitDone").await;
    fake.wait_for_watches(1).await;
    fake.drop_watches();
    assert_eq!(fake.open_watches(), 0);
    // Changes made while disconnected are replayed from history on resume.
    fake.apply(deployment("default", "b", json!({})));
    let seen = read_until(&mut w, "Apply(b)").await;
    assert!(!seen.contains(&"Init".to_string()), "no relist: {seen:?}");
    fake.wait_for_watches(1).await;
    let watches = fake
        .requests()
        .into_iter()
        .filter(|r| r.contains("watch=true"))
        .count();
    assert!(watches >= 2, "re-watched: {:?}", fake.requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_history_makes_the_watcher_relist() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "a", json!({})));
    let api = dyn_api(&fake, &deployments_ar());
    let mut w = spawn_watcher(watcher(api, watcher::Config::default()));
    read_until(&mut w, "InitDone").await;
    fake.wait_for_watches(1).await;
    fake.apply(deployment("default", "b", json!({})));
    read_until(&mut w, "Apply(b)").await;

    fake.expire_history();
    fake.drop_watches();
    let seen = read_until(&mut w, "InitDone").await;
    assert_eq!(seen[0], "Err(410)", "{seen:?}");
    assert!(seen.contains(&"Init".to_string()), "{seen:?}");
    assert!(seen.contains(&"InitApply(b)".to_string()), "{seen:?}");
    // Still alive.
    fake.wait_for_watches(1).await;
    fake.apply(deployment("default", "c", json!({})));
    read_until(&mut w, "Apply(c)").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_watch_from_expired_rv_gets_error_event_410() {
    let fake = FakeApi::start().await;
    let old = fake.apply(deployment("default", "a", json!({})));
    fake.expire_history();
    let api = dyn_api(&fake, &deployments_ar());
    let mut s = api
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    let ev = tokio::time::timeout(STEP, s.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match ev {
        WatchEvent::Error(e) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
    assert!(
        tokio::time::timeout(STEP, s.next())
            .await
            .unwrap()
            .is_none(),
        "then closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_watch_bookmarks_and_timeout() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "a", json!({})));
    let api = dyn_api(&fake, &deployments_ar());
    let start = Instant::now();
    let mut s = api
        .watch(&WatchParams::default().timeout(2), "0")
        .await
        .unwrap()
        .boxed();
    let mut kinds = Vec::new();
    while let Some(ev) = tokio::time::timeout(STEP, s.next())
        .await
        .expect("closes in time")
    {
        kinds.push(match ev.unwrap() {
            WatchEvent::Added(o) => format!("ADDED {}", o.name_any()),
            WatchEvent::Bookmark(b) => {
                assert_eq!(b.metadata.resource_version, fake.resource_version());
                "BOOKMARK".to_string()
            }
            other => format!("{other:?}"),
        });
    }
    let took = start.elapsed();
    assert_eq!(
        kinds[..2],
        ["ADDED a".to_string(), "BOOKMARK".to_string()],
        "{kinds:?}"
    );
    assert!(kinds.len() >= 3, "a bookmark each second: {kinds:?}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_list_watcher() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "a", json!({})));
    let api = dyn_api(&fake, &deployments_ar());
    let mut w = spawn_watcher(watcher(api, watcher::Config::default().streaming_lists()));
    assert_eq!(
        read_until(&mut w, "InitDone").await,
        vec!["Init", "InitApply(a)", "InitDone"]
    );
    fake.apply(deployment("default", "b", json!({})));
    read_until(&mut w, "Apply(b)").await;
    assert!(
        fake.requests()
            .iter()
            .any(|r| r.contains("sendInitialEvents=true"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_500_then_recovery_with_backoff() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "a", json!({})));
    fake.fail("deployments", 500, Some(1));
    let api = dyn_api(&fake, &deployments_ar());
    let mut w = spawn_watcher(watcher(api, watcher::Config::default()).default_backoff());
    let seen = read_until(&mut w, "InitDone").await;
    assert_eq!(
        seen,
        vec!["Init", "Err(500)", "Init", "InitApply(a)", "InitDone"],
        "exactly one error, then recovery"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_resource_gives_403() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "a", json!({})));
    fake.forbid("deployments");
    let api = dyn_api(&fake, &deployments_ar());
    for _ in 0..2 {
        match api.list(&ListParams::default()).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
                assert!(
                    s.message.contains("cannot list resource \"deployments\""),
                    "{}",
                    s.message
                );
            }
            other => panic!("expected 403, got {other:?}"),
        }
    }
    let mut w = spawn_watcher(watcher(api.clone(), watcher::Config::default()));
    assert_eq!(
        read_until(&mut w, "Err(403)").await,
        vec!["Init", "Err(403)"]
    );
    // Other resources are unaffected; clearing restores access.
    let pods: Api<DynamicObject> = Api::all_with(
        fake.client(),
        &ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Pod"), "pods"),
    );
    pods.list(&ListParams::default())
        .await
        .expect("pods still listable");
    fake.clear_faults();
    assert_eq!(
        names(&api.list(&ListParams::default()).await.unwrap()),
        vec!["a"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_resource_deletes_objects_and_404s() {
    let fake = FakeApi::start().await;
    fake.add_resource(widgets_def());
    fake.apply(widget("w1"));
    fake.apply(widget("w2"));
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    );
    let api = dyn_api(&fake, &ar);
    let mut w = spawn_watcher(watcher(api.clone(), watcher::Config::default()));
    read_until(&mut w, "InitDone").await;
    fake.wait_for_watches(1).await;

    fake.remove_resource("example.com", "widgets");
    let seen = read_until(&mut w, "Delete(w2)").await;
    assert_eq!(seen, vec!["Delete(w1)", "Delete(w2)"]);
    assert_eq!(fake.open_watches(), 0);
    match api.list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!((s.code, s.reason.as_str()), (404, "NotFound")),
        other => panic!("expected 404, got {other:?}"),
    }
    let d = Discovery::new(fake.client()).run().await.unwrap();
    assert!(!d.has_group("example.com"));
    assert!(fake.objects("example.com", "widgets").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_versions_rewrites_api_version_and_closes_old_watches() {
    let fake = FakeApi::start().await;
    fake.add_resource(widgets_def());
    fake.apply(widget("w1"));
    let gvk = |v: &str| GroupVersionKind::gvk("example.com", v, "Widget");
    let v1 = ApiResource::from_gvk_with_plural(&gvk("v1"), "widgets");
    let v2 = ApiResource::from_gvk_with_plural(&gvk("v2"), "widgets");

    let mut raw = dyn_api(&fake, &v1)
        .watch(&WatchParams::default(), &fake.resource_version())
        .await
        .unwrap()
        .boxed();
    fake.wait_for_watches(1).await;

    fake.set_versions("example.com", "widgets", &["v1", "v2"], "v2");
    let d = Discovery::new(fake.client()).run().await.unwrap();
    assert_eq!(
        d.get("example.com").unwrap().preferred_version_or_latest(),
        "v2"
    );
    let at_v2 = dyn_api(&fake, &v2)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(
        at_v2.items[0].types.as_ref().unwrap().api_version,
        "example.com/v2"
    );
    assert_eq!(fake.open_watches(), 1, "v1 still served");

    fake.set_versions("example.com", "widgets", &["v2"], "v2");
    loop {
        match tokio::time::timeout(STEP, raw.next())
            .await
            .expect("v1 watch closed in time")
        {
            None => break,
            Some(Ok(WatchEvent::Bookmark(_))) => {}
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    match dyn_api(&fake, &v1).list(&ListParams::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        other => panic!("expected 404 at v1, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_stalls_every_response() {
    let fake = FakeApi::start().await;
    let client = fake.client();
    client.apiserver_version().await.unwrap(); // connection warm
    let delay = Duration::from_millis(400);
    fake.set_delay(delay);
    let start = Instant::now();
    client.list_api_groups().await.unwrap();
    assert!(start.elapsed() >= delay, "{:?}", start.elapsed());
    let api = dyn_api(&fake, &deployments_ar());
    let start = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(start.elapsed() >= delay, "{:?}", start.elapsed());
    fake.set_delay(Duration::ZERO);
    let start = Instant::now();
    api.list(&ListParams::default()).await.unwrap();
    assert!(start.elapsed() < delay, "{:?}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selectors_filter_lists_and_watches() {
    let fake = FakeApi::start().await;
    fake.apply(deployment(
        "default",
        "web",
        json!({"app": "web", "tier": "front"}),
    ));
    fake.apply(deployment(
        "default",
        "db",
        json!({"app": "db", "tier": "back"}),
    ));
    fake.apply(deployment("other", "cache", json!({"app": "cache"})));
    let api = dyn_api(&fake, &deployments_ar());
    let list = |sel: &str| {
        let api = api.clone();
        let lp = ListParams::default().labels(sel);
        async move { names(&api.list(&lp).await.unwrap()) }
    };
    assert_eq!(list("app=web").await, vec!["web"]);
    assert_eq!(list("app==db").await, vec!["db"]);
    assert_eq!(
        list("app!=web").await,
        vec!["db", "cache"],
        "sorted by namespace/name"
    );
    assert_eq!(list("tier").await, vec!["db", "web"]);
    assert_eq!(list("!tier").await, vec!["cache"]);
    assert_eq!(list("app in (web, cache)").await, vec!["web", "cache"]);
    assert_eq!(list("app notin (web,cache),tier").await, vec!["db"]);
    let fields = |sel: &str| {
        let api = api.clone();
        let lp = ListParams::default().fields(sel);
        async move { names(&api.list(&lp).await.unwrap()) }
    };
    assert_eq!(fields("metadata.namespace=other").await, vec!["cache"]);
    assert_eq!(
        fields("metadata.name!=db,metadata.namespace==default").await,
        vec!["web"]
    );
    let bad = api.list(&ListParams::default().labels("a in b)")).await;
    assert!(matches!(bad, Err(kube::Error::Api(s)) if s.code == 400));

    let mut w = spawn_watcher(watcher(
        api.clone(),
        watcher::Config::default().labels("tier=front"),
    ));
    assert_eq!(
        read_until(&mut w, "InitDone").await,
        vec!["Init", "InitApply(web)", "InitDone"]
    );
    fake.wait_for_watches(1).await;
    fake.apply(deployment(
        "default",
        "db",
        json!({"app": "db", "tier": "front"}),
    ));
    assert_eq!(
        read_until(&mut w, "Apply(db)").await,
        vec!["Apply(db)"],
        "started matching"
    );
    fake.apply(deployment("default", "web", json!({"app": "web"})));
    assert_eq!(
        read_until(&mut w, "Delete(web)").await,
        vec!["Delete(web)"],
        "stopped matching"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_assigns_metadata_and_get_works() {
    let fake = FakeApi::start().await;
    let rv1 = fake.apply(deployment("default", "a", json!({})));
    let rv2 = fake.apply(deployment("default", "a", json!({"x": "y"})));
    assert!(rv2.parse::<u64>().unwrap() > rv1.parse::<u64>().unwrap());
    let node = fake.apply(
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1", "namespace": "x"}}),
    );
    assert!(!node.is_empty());
    let objs = fake.objects("apps", "deployments");
    assert_eq!(objs.len(), 1);
    let meta = &objs[0]["metadata"];
    assert_eq!(meta["resourceVersion"], json!(rv2));
    assert!(meta["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(
        meta["creationTimestamp"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );

    let api: Api<DynamicObject> = Api::namespaced_with(fake.client(), "default", &deployments_ar());
    let got = api.get("a").await.unwrap();
    assert_eq!(got.labels().get("x").map(String::as_str), Some("y"));
    assert!(matches!(api.get("zzz").await, Err(kube::Error::Api(s)) if s.code == 404));
    let nodes = fake.objects("", "nodes");
    assert!(
        nodes[0]["metadata"].get("namespace").is_none(),
        "cluster-scoped"
    );
    // Typed access with k8s-openapi types works too.
    let typed: Api<k8s_openapi::api::apps::v1::Deployment> = Api::default_namespaced(fake.client());
    assert_eq!(
        typed.get("a").await.unwrap().spec.unwrap().replicas,
        Some(1)
    );
    let meta_list = typed.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(meta_list.items[0].name_any(), "a");
}

#[test]
#[should_panic(expected = "is not registered")]
fn apply_of_unknown_kind_panics() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fake = FakeApi::start().await;
        fake.apply(widget("w"));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubeconfig_points_at_the_fake() {
    let fake = FakeApi::start().await;
    let kc = kube::config::Kubeconfig::from_yaml(&fake.kubeconfig_yaml()).unwrap();
    assert_eq!(kc.current_context.as_deref(), Some("fake"));
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    assert_eq!(
        client.apiserver_version().await.unwrap().git_version,
        "v1.33.0"
    );
    assert!(fake.requests().contains(&"GET /version".to_string()));
}

/// Raw HTTP/1.1 watch over a blocking socket: returns everything read before the server
/// ended the connection, after calling `then` once the first event has arrived.
async fn raw_watch(fake: &FakeApi, query: &str, then: impl FnOnce() + Send + 'static) -> String {
    use std::io::{Read, Write};
    let addr = fake.addr();
    let request = format!(
        "GET /apis/apps/v1/deployments?{query} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    let read = tokio::task::spawn_blocking(move || {
        let mut sock = std::net::TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(STEP)).unwrap();
        sock.write_all(request.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let mut then = Some(then);
        loop {
            match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut =>
                {
                    panic!(
                        "server did not end the connection: {}",
                        String::from_utf8_lossy(&got)
                    )
                }
                Err(_) => break, // reset
            }
            if String::from_utf8_lossy(&got).contains("\"ADDED\"")
                && let Some(f) = then.take()
            {
                f();
            }
        }
        String::from_utf8(got).unwrap()
    });
    tokio::time::timeout(STEP * 2, read).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_watches_cuts_the_connection_mid_stream() {
    let fake = FakeApi::start().await;
    fake.apply(deployment("default", "a", json!({})));
    let f = fake.clone();
    let dropped = raw_watch(&fake, "watch=1&resourceVersion=0", move || f.drop_watches()).await;
    assert!(dropped.starts_with("HTTP/1.1 200 OK\r\n"), "{dropped}");
    assert!(
        dropped
            .to_lowercase()
            .contains("transfer-encoding: chunked"),
        "{dropped}"
    );
    assert!(dropped.contains("\"ADDED\""), "{dropped}");
    assert!(
        !dropped.ends_with("0\r\n\r\n"),
        "no terminating chunk: {dropped:?}"
    );
    assert_eq!(fake.open_watches(), 0);

    // A watch that times out ends cleanly instead.
    let timed_out = raw_watch(
        &fake,
        "watch=true&resourceVersion=0&timeoutSeconds=1",
        || {},
    )
    .await;
    assert!(timed_out.contains("\"ADDED\""), "{timed_out}");
    assert!(
        timed_out.ends_with("0\r\n\r\n"),
        "terminating chunk: {timed_out:?}"
    );
}

// ---------------------------------------------------------------------------------------
// CustomResourceDefinitions
// ---------------------------------------------------------------------------------------

/// The openAPIV3Schema of a Widget version: `spec.size`, and `spec.color` of these values.
fn widget_schema(colors: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {
                    "size": {"type": "integer"},
                    "color": {"type": "string", "enum": colors},
                },
            },
        },
    })
}

/// widgets.example.com (Widget, namespaced, short name `wd`); versions as
/// `(name, served, storage, colors)`.
fn widget_crd(versions: &[(&str, bool, bool, &[&str])]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|(name, served, storage, colors)| {
            json!({
                "name": name,
                "served": served,
                "storage": storage,
                "schema": {"openAPIV3Schema": widget_schema(colors)},
            })
        })
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "names": {
                "plural": "widgets",
                "singular": "widget",
                "kind": "Widget",
                "shortNames": ["wd"],
            },
            "scope": "Namespaced",
            "versions": versions,
        },
    })
}

/// gadgets.tools.example.org (Gadget, cluster-scoped), v1 only; no metadata.name given.
fn gadget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {},
        "spec": {
            "group": "tools.example.org",
            "names": {"plural": "gadgets", "kind": "Gadget"},
            "scope": "Cluster",
            "versions": [{
                "name": "v1",
                "served": true,
                "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "x-kubernetes-preserve-unknown-fields": true,
                }},
            }],
        },
    })
}

/// A CRD as `name[colors of spec.color in every version]`.
fn crd_label(crd: &CustomResourceDefinition) -> String {
    let colors: Vec<String> = crd
        .spec
        .versions
        .iter()
        .filter_map(|v| {
            v.schema
                .as_ref()?
                .open_api_v3_schema
                .as_ref()?
                .properties
                .as_ref()?
                .get("spec")?
                .properties
                .as_ref()?
                .get("color")?
                .enum_
                .clone()
        })
        .flatten()
        .map(|j| j.0.as_str().unwrap_or("?").to_string())
        .collect();
    format!("{}[{}]", crd.name_any(), colors.join(","))
}

fn widgets_at(fake: &FakeApi, version: &str) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", version, "Widget"),
        "widgets",
    );
    dyn_api(fake, &ar)
}

fn api_error_code<T: std::fmt::Debug>(r: Result<T, kube::Error>) -> (u16, String) {
    match r {
        Err(kube::Error::Api(s)) => (s.code, s.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_watcher_sees_install_and_reinstall() {
    let fake = FakeApi::start().await;
    fake.install_crd(gadget_crd());
    let crds: Api<CustomResourceDefinition> = Api::all(fake.client());
    let mut w = spawn_watcher_with(
        kube::runtime::watcher(crds.clone(), watcher::Config::default()),
        crd_label,
    );
    assert_eq!(
        read_until(&mut w, "InitDone").await,
        vec!["Init", "InitApply(gadgets.tools.example.org[])", "InitDone"]
    );
    fake.wait_for_watches(1).await;

    let small_large: &[&str] = &["small", "large"];
    fake.install_crd(widget_crd(&[("v1", true, true, small_large)]));
    assert_eq!(
        read_until(&mut w, "Apply(widgets.example.com[small,large])").await,
        vec!["Apply(widgets.example.com[small,large])"]
    );
    fake.install_crd(widget_crd(&[(
        "v1",
        true,
        true,
        &["small", "large", "huge"],
    )]));
    assert_eq!(
        read_until(&mut w, "Apply(widgets.example.com[small,large,huge])").await,
        vec!["Apply(widgets.example.com[small,large,huge])"],
        "a re-install is one more Apply with the new schema"
    );

    // Stored as a real server would: defaults, status, generation bumped by the change.
    let stored = crds.get("widgets.example.com").await.unwrap();
    assert_eq!(stored.metadata.generation, Some(2));
    assert_eq!(stored.spec.names.list_kind.as_deref(), Some("WidgetList"));
    let status = stored.status.expect("status");
    assert_eq!(status.stored_versions, Some(vec!["v1".to_string()]));
    assert!(
        status
            .conditions
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True")
    );
    let gadget = crds.get("gadgets.tools.example.org").await.unwrap();
    assert_eq!(gadget.spec.names.singular.as_deref(), Some("gadget"));
    assert_eq!(gadget.metadata.generation, Some(1));
    assert_eq!(
        names_of(&crds.list(&ListParams::default()).await.unwrap()),
        vec!["gadgets.tools.example.org", "widgets.example.com"]
    );
}

fn names_of<K: kube::Resource + Clone>(list: &kube::core::ObjectList<K>) -> Vec<String> {
    list.items.iter().map(|o| o.name_any()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_crd_is_discovered_and_served() {
    let fake = FakeApi::start().await;
    let client = fake.client();
    let colors: &[&str] = &["red"];
    fake.install_crd(widget_crd(&[
        ("v1alpha1", false, false, colors),
        ("v1", true, false, colors),
        ("v2", true, true, colors),
    ]));
    fake.install_crd(gadget_crd());

    let d = Discovery::new(client.clone()).run().await.unwrap();
    let gvk = |v: &str| GroupVersionKind::gvk("example.com", v, "Widget");
    let example = d.get("example.com").expect("group example.com discovered");
    assert_eq!(
        example.preferred_version_or_latest(),
        "v2",
        "the storage version"
    );
    let (ar, caps) = d.resolve_gvk(&gvk("v2")).expect("v2 served");
    assert_eq!(ar.plural, "widgets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    assert!(d.resolve_gvk(&gvk("v1")).is_some(), "v1 served");
    assert!(
        d.resolve_gvk(&gvk("v1alpha1")).is_none(),
        "v1alpha1 not served"
    );
    let (_, gadget_caps) = d
        .resolve_gvk(&GroupVersionKind::gvk("tools.example.org", "v1", "Gadget"))
        .expect("gadgets discovered");
    assert_eq!(gadget_caps.scope, kube::discovery::Scope::Cluster);
    let (crd_ar, _) = d
        .resolve_gvk(&GroupVersionKind::gvk(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
        ))
        .expect("customresourcedefinitions discovered");
    assert_eq!(crd_ar.plural, "customresourcedefinitions");
    let v2 = client
        .list_api_group_resources("example.com/v2")
        .await
        .unwrap();
    let widgets = &v2.resources[0];
    assert_eq!(
        (widgets.singular_name.as_str(), widgets.short_names.clone()),
        ("widget", Some(vec!["wd".to_string()]))
    );

    fake.apply(json!({
        "apiVersion": "example.com/v2",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 1, "color": "red"},
    }));
    fake.apply(widget("w2")); // apiVersion example.com/v1: the same resource
    let at_v2 = widgets_at(&fake, "v2")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(names(&at_v2), vec!["w1", "w2"]);
    assert_eq!(
        at_v2.items[1].types.as_ref().unwrap().api_version,
        "example.com/v2"
    );
    assert_eq!(
        names(
            &widgets_at(&fake, "v1")
                .list(&ListParams::default())
                .await
                .unwrap()
        ),
        vec!["w1", "w2"]
    );
    assert_eq!(
        api_error_code(
            widgets_at(&fake, "v1alpha1")
                .list(&ListParams::default())
                .await
        )
        .0,
        404
    );

    // Re-installing with v1 no longer served: its watches close, it 404s, objects stay.
    let mut raw = widgets_at(&fake, "v1")
        .watch(&WatchParams::default(), &fake.resource_version())
        .await
        .unwrap()
        .boxed();
    fake.wait_for_watches(1).await;
    fake.install_crd(widget_crd(&[
        ("v1alpha1", false, false, colors),
        ("v1", false, false, colors),
        ("v2", true, true, colors),
    ]));
    loop {
        match tokio::time::timeout(STEP, raw.next())
            .await
            .expect("v1 watch closed in time")
        {
            None => break,
            Some(Ok(WatchEvent::Bookmark(_))) => {}
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        api_error_code(widgets_at(&fake, "v1").list(&ListParams::default()).await).0,
        404
    );
    assert_eq!(
        names(
            &widgets_at(&fake, "v2")
                .list(&ListParams::default())
                .await
                .unwrap()
        ),
        vec!["w1", "w2"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_crd_deletes_objects_then_the_crd() {
    let fake = FakeApi::start().await;
    fake.install_crd(widget_crd(&[("v1", true, true, &["red"])]));
    fake.apply(widget("w1"));
    fake.apply(widget("w2"));
    let mut widgets = spawn_watcher(watcher(widgets_at(&fake, "v1"), watcher::Config::default()));
    read_until(&mut widgets, "InitDone").await;
    let crds: Api<CustomResourceDefinition> = Api::all(fake.client());
    let mut w = spawn_watcher_with(
        kube::runtime::watcher(crds.clone(), watcher::Config::default()),
        crd_label,
    );
    read_until(&mut w, "InitDone").await;
    fake.wait_for_watches(2).await;

    fake.uninstall_crd("widgets.example.com");
    assert_eq!(
        read_until(&mut widgets, "Delete(w2)").await,
        vec!["Delete(w1)", "Delete(w2)"]
    );
    assert_eq!(
        read_until(&mut w, "Delete(widgets.example.com[red])").await,
        vec!["Delete(widgets.example.com[red])"]
    );
    assert_eq!(fake.open_watches(), 1, "only the CRD watch is left");
    assert_eq!(
        api_error_code(widgets_at(&fake, "v1").list(&ListParams::default()).await),
        (404, "NotFound".to_string())
    );
    assert!(
        !Discovery::new(fake.client())
            .run()
            .await
            .unwrap()
            .has_group("example.com")
    );
    assert!(
        crds.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(
        fake.objects("apiextensions.k8s.io", "customresourcedefinitions")
            .is_empty()
    );
    fake.uninstall_crd("widgets.example.com"); // unknown now: ignored
    fake.uninstall_crd("nodots");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_crds_give_403() {
    let fake = FakeApi::start().await;
    fake.install_crd(gadget_crd());
    fake.forbid("customresourcedefinitions");
    let crds: Api<CustomResourceDefinition> = Api::all(fake.client());
    let (code, reason) = api_error_code(crds.list(&ListParams::default()).await);
    assert_eq!((code, reason.as_str()), (403, "Forbidden"));
    let mut w = spawn_watcher_with(
        kube::runtime::watcher(crds.clone(), watcher::Config::default()),
        crd_label,
    );
    assert_eq!(
        read_until(&mut w, "Err(403)").await,
        vec!["Init", "Err(403)"]
    );
    let (code, _) = api_error_code(crds.watch(&WatchParams::default(), "0").await.map(|_| ()));
    assert_eq!(code, 403);
    // The custom resource itself is still served.
    let gadgets = dyn_api(
        &fake,
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("tools.example.org", "v1", "Gadget"),
            "gadgets",
        ),
    );
    gadgets
        .list(&ListParams::default())
        .await
        .expect("gadgets listable");
    fake.clear_faults();
    assert_eq!(
        names_of(&crds.list(&ListParams::default()).await.unwrap()),
        vec!["gadgets.tools.example.org"]
    );
}

#[test]
#[should_panic(expected = "metadata.name must be")]
fn install_crd_with_a_wrong_name_panics() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let fake = FakeApi::start().await;
        let mut crd = gadget_crd();
        crd["metadata"]["name"] = json!("gadgets");
        fake.install_crd(crd);
    });
}

// ---------------------------------------------------------------------------------------
// OpenAPI v3
// ---------------------------------------------------------------------------------------

async fn get_json(client: &kube::Client, url: &str) -> Result<Value, kube::Error> {
    let text = client
        .request_text(hyper::Request::get(url).body(Vec::new()).unwrap())
        .await?;
    Ok(serde_json::from_str(&text).expect("JSON"))
}

/// The `serverRelativeURL` of each group-version `/openapi/v3` lists.
async fn openapi_index(client: &kube::Client) -> BTreeMap<String, String> {
    let index = get_json(client, "/openapi/v3").await.unwrap();
    index["paths"]
        .as_object()
        .expect("paths")
        .iter()
        .map(|(k, v)| {
            let url = v["serverRelativeURL"].as_str().expect("serverRelativeURL");
            (k.clone(), url.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v3_serves_crd_schemas_and_set_documents() {
    let fake = FakeApi::start().await;
    let client = fake.client();
    fake.install_crd(widget_crd(&[
        ("v1", true, false, &["red"]),
        ("v2", true, true, &["red", "blue"]),
    ]));

    let index = openapi_index(&client).await;
    assert_eq!(
        index.keys().collect::<Vec<_>>(),
        vec![
            "api/v1",
            "apis/apiextensions.k8s.io/v1",
            "apis/apps/v1",
            "apis/example.com/v1",
            "apis/example.com/v2",
        ]
    );
    for (gv, url) in &index {
        let prefix = format!("/openapi/v3/{gv}?hash=");
        let hash = url.strip_prefix(&prefix).unwrap_or_else(|| panic!("{url}"));
        assert!(
            !hash.is_empty() && hash.chars().all(|c| c.is_ascii_hexdigit()),
            "{url}"
        );
    }

    for (version, colors) in [("v1", json!(["red"])), ("v2", json!(["red", "blue"]))] {
        let doc = get_json(&client, &index[&format!("apis/example.com/{version}")])
            .await
            .unwrap();
        assert_eq!(doc["openapi"], "3.0.0");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        assert_eq!(
            schemas.keys().collect::<Vec<_>>(),
            vec![&format!("com.example.{version}.Widget")]
        );
        let schema = &schemas[&format!("com.example.{version}.Widget")];
        assert_eq!(
            schema["x-kubernetes-group-version-kind"],
            json!([{"group": "example.com", "version": version, "kind": "Widget"}])
        );
        let mut expected = widget_schema(&[]);
        expected["properties"]["spec"]["properties"]["color"]["enum"] = colors;
        expected["x-kubernetes-group-version-kind"] =
            schema["x-kubernetes-group-version-kind"].clone();
        assert_eq!(schema, &expected, "the CRD's openAPIV3Schema plus the GVK");
    }
    // The query string is ignored.
    let no_hash = get_json(&client, "/openapi/v3/apis/example.com/v2")
        .await
        .unwrap();
    assert!(no_hash["components"]["schemas"]["com.example.v2.Widget"].is_object());

    // Built-in group-versions: empty schemas, until a test sets a document.
    let apps = get_json(&client, &index["apis/apps/v1"]).await.unwrap();
    assert_eq!(apps["components"]["schemas"], json!({}));
    let core = get_json(&client, "/openapi/v3/api/v1").await.unwrap();
    assert_eq!(core["components"]["schemas"], json!({}));
    let custom = json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": {},
        "components": {"schemas": {"io.k8s.api.apps.v1.Deployment": {"type": "object"}}},
    });
    fake.set_openapi("apps", "v1", custom.clone());
    let after = openapi_index(&client).await;
    assert_ne!(
        after["apis/apps/v1"], index["apis/apps/v1"],
        "hash follows content"
    );
    assert_eq!(
        after["apis/example.com/v1"], index["apis/example.com/v1"],
        "stable"
    );
    assert_eq!(
        get_json(&client, &after["apis/apps/v1"]).await.unwrap(),
        custom
    );

    // Not served: 404.
    assert_eq!(
        api_error_code(get_json(&client, "/openapi/v3/apis/nope.io/v1").await),
        (404, "NotFound".to_string())
    );
    fake.uninstall_crd("widgets.example.com");
    assert!(
        !openapi_index(&client)
            .await
            .contains_key("apis/example.com/v2")
    );
    assert_eq!(
        api_error_code(get_json(&client, &index["apis/example.com/v2"]).await).0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_faults() {
    let fake = FakeApi::start().await;
    let client = fake.client();
    fake.fail("openapi", 404, None);
    for url in [
        "/openapi/v3",
        "/openapi/v3/api/v1",
        "/openapi/v3/apis/apps/v1",
    ] {
        assert_eq!(api_error_code(get_json(&client, url).await).0, 404, "{url}");
    }
    // Only OpenAPI is affected.
    dyn_api(&fake, &deployments_ar())
        .list(&ListParams::default())
        .await
        .expect("deployments listable");
    fake.forbid("openapi");
    assert_eq!(
        api_error_code(get_json(&client, "/openapi/v3").await),
        (403, "Forbidden".to_string())
    );
    fake.clear_faults();
    assert!(openapi_index(&client).await.contains_key("apis/apps/v1"));
    fake.fail("openapi", 500, Some(1));
    assert_eq!(
        api_error_code(get_json(&client, "/openapi/v3/apis/apps/v1").await).0,
        500
    );
    get_json(&client, "/openapi/v3/apis/apps/v1")
        .await
        .expect("one failure only");
}
