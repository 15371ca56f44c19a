//! A fake Kubernetes API server for integration tests.
//!
//! It serves discovery (`/api`, `/apis`, group-versions, also aggregated discovery v2),
//! `/version`, list (with `limit`/`continue`, `resourceVersion`/`resourceVersionMatch`,
//! label and field selectors), get, and watch streams (initial events, replay from a
//! resource version, bookmarks, `timeoutSeconds`, `410 Expired` after compaction), all
//! as JSON on 127.0.0.1 with a random port. Tests mutate its state (`apply`, `delete`,
//! `add_resource`, `remove_resource`, `set_versions`) and inject faults (`drop_watches`,
//! `fail`, `forbid`, `set_delay`, `expire_history`).
//!
//! CustomResourceDefinitions work as on a real server: [`FakeApi::install_crd`] stores the
//! CRD object (served as `apiextensions.k8s.io/v1` `customresourcedefinitions`) and
//! registers the custom resource it defines; [`FakeApi::uninstall_crd`] undoes both.
//! OpenAPI v3 is served at `/openapi/v3` (an index of every served group-version) and
//! `/openapi/v3/api/v1`, `/openapi/v3/apis/{group}/{version}` (the documents: set with
//! [`FakeApi::set_openapi`], generated from installed CRDs, or empty).
//!
//! `FakeApi` is a cheap `Clone` handle; the server runs on the tokio runtime that was
//! current when [`FakeApi::start`] was called and stops with it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::ops::Bound;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, header};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Retained watch history (events); older events are compacted away as by etcd.
const MAX_HISTORY: usize = 100_000;
/// First bookmark on a watch that asked for them, then one per `BOOKMARK_EVERY`.
const FIRST_BOOKMARK: Duration = Duration::from_millis(100);
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);

type Body = UnsyncBoxBody<Bytes, std::io::Error>;

const CRD_GROUP: &str = "apiextensions.k8s.io";
const CRD_PLURAL: &str = "customresourcedefinitions";
/// The fault key ([`FakeApi::fail`]) of every `/openapi/v3` request.
const OPENAPI_FAULT: &str = "openapi";

// ---------------------------------------------------------------------------------------
// Resource definitions
// ---------------------------------------------------------------------------------------

/// An API resource the fake serves (a built-in type or an installed CRD).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceDef {
    /// API group; `""` is the core group.
    pub group: String,
    /// The version it is first served at (see [`FakeApi::set_versions`]).
    pub version: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub namespaced: bool,
    pub short_names: Vec<String>,
    /// Default `get`, `list`, `watch`.
    pub verbs: Vec<String>,
}

impl ResourceDef {
    /// `singular` is `kind` lowercased, verbs are get/list/watch, no short names.
    pub fn new(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        ResourceDef {
            group: group.to_string(),
            version: version.to_string(),
            plural: plural.to_string(),
            singular: kind.to_lowercase(),
            kind: kind.to_string(),
            namespaced,
            short_names: Vec::new(),
            verbs: default_verbs(),
        }
    }

    /// Replace the short names (`kubectl get deploy`).
    pub fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| s.to_string()).collect();
        self
    }

    /// Replace the verbs shown in discovery and enforced on requests
    /// (a resource without `watch` answers watch requests with 405).
    pub fn verbs(mut self, verbs: &[&str]) -> Self {
        self.verbs = verbs.iter().map(|s| s.to_string()).collect();
        self
    }

    /// apps/v1 deployments (Deployment), short name `deploy`.
    pub fn deployments() -> Self {
        Self::new("apps", "v1", "deployments", "Deployment", true).short(&["deploy"])
    }

    /// core v1 pods (Pod), short name `po`.
    pub fn pods() -> Self {
        Self::new("", "v1", "pods", "Pod", true).short(&["po"])
    }

    /// core v1 configmaps (ConfigMap), short name `cm`.
    pub fn configmaps() -> Self {
        Self::new("", "v1", "configmaps", "ConfigMap", true).short(&["cm"])
    }

    /// core v1 nodes (Node), cluster-scoped, short name `no`.
    pub fn nodes() -> Self {
        Self::new("", "v1", "nodes", "Node", false).short(&["no"])
    }

    /// core v1 namespaces (Namespace), cluster-scoped, short name `ns`.
    /// Not registered by [`FakeApi::start`].
    pub fn namespaces() -> Self {
        Self::new("", "v1", "namespaces", "Namespace", false).short(&["ns"])
    }

    /// apiextensions.k8s.io/v1 customresourcedefinitions (CustomResourceDefinition),
    /// cluster-scoped, short names `crd`, `crds`. Registered by [`FakeApi::start`]; the
    /// objects are maintained by [`FakeApi::install_crd`] and [`FakeApi::uninstall_crd`].
    pub fn crds() -> Self {
        Self::new(
            CRD_GROUP,
            "v1",
            CRD_PLURAL,
            "CustomResourceDefinition",
            false,
        )
        .short(&["crd", "crds"])
    }

    fn has_verb(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }

    /// `deployments.apps`, or `pods` for the core group.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

fn default_verbs() -> Vec<String> {
    ["get", "list", "watch"].map(String::from).to_vec()
}

fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// The group of an `apiVersion` (`apps/v1` -> `apps`, `v1` -> ``).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

// ---------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------

/// (namespace or "", name)
type Key = (String, String);

struct Resource {
    def: ResourceDef,
    /// Served versions, in registration order.
    versions: Vec<String>,
    objects: BTreeMap<Key, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum EvKind {
    Added,
    Modified,
    Deleted,
}

struct HistEvent {
    rv: u64,
    group: String,
    plural: String,
    kind: EvKind,
    /// The object as sent: the new state, or for DELETED the last state with the
    /// deletion's resourceVersion.
    obj: Value,
    /// The state before the event (None for ADDED).
    prev: Option<Value>,
}

enum WatchMsg {
    Event(Arc<HistEvent>),
    /// End the stream cleanly (terminating chunk).
    Close,
    /// End the connection mid-stream.
    Abort,
}

struct WatchReg {
    group: String,
    plural: String,
    version: String,
    tx: mpsc::UnboundedSender<WatchMsg>,
}

struct Fault {
    status: u16,
    remaining: Option<usize>,
}

struct State {
    resources: Vec<Resource>,
    group_preferred: HashMap<String, String>,
    /// Global resourceVersion counter: the last one issued.
    rv: u64,
    /// Watches (and exact lists, continue tokens) from a resourceVersion below this get 410.
    floor: u64,
    history: VecDeque<Arc<HistEvent>>,
    faults: HashMap<String, Fault>,
    delay: Duration,
    requests: Vec<String>,
    watches: HashMap<u64, WatchReg>,
    next_watch: u64,
    next_uid: u64,
    /// CRDs installed with `install_crd`, by name (`<plural>.<group>`), as stored.
    crds: BTreeMap<String, Value>,
    /// OpenAPI v3 documents set with `set_openapi`, by (group, version).
    openapi: HashMap<(String, String), Value>,
}

impl State {
    fn find(&self, group: &str, plural: &str) -> Option<usize> {
        self.resources
            .iter()
            .position(|r| r.def.group == group && r.def.plural == plural)
    }

    fn find_kind(&self, group: &str, kind: &str) -> Option<usize> {
        self.resources
            .iter()
            .position(|r| r.def.group == group && r.def.kind == kind)
    }

    /// The resource served at group/version/plural.
    fn find_served(&self, group: &str, version: &str, plural: &str) -> Option<usize> {
        self.resources.iter().position(|r| {
            r.def.group == group
                && r.def.plural == plural
                && r.versions.iter().any(|v| v == version)
        })
    }

    fn registered_kinds(&self) -> Vec<String> {
        self.resources
            .iter()
            .map(|r| format!("{}/{}", r.def.group, r.def.kind))
            .collect()
    }

    /// Versions of a group, preferred first.
    fn group_versions(&self, group: &str) -> Vec<String> {
        let mut vs: Vec<String> = Vec::new();
        for r in self.resources.iter().filter(|r| r.def.group == group) {
            for v in &r.versions {
                if !vs.contains(v) {
                    vs.push(v.clone());
                }
            }
        }
        if let Some(p) = self.group_preferred.get(group)
            && let Some(pos) = vs.iter().position(|v| v == p)
        {
            let p = vs.remove(pos);
            vs.insert(0, p);
        }
        vs
    }

    /// Non-core groups in registration order.
    fn groups(&self) -> Vec<String> {
        let mut gs: Vec<String> = Vec::new();
        for r in &self.resources {
            if !r.def.group.is_empty() && !gs.contains(&r.def.group) && !r.versions.is_empty() {
                gs.push(r.def.group.clone());
            }
        }
        gs
    }

    /// Record an event (the global rv must already be bumped) and send it to the
    /// watches of that resource.
    fn emit(&mut self, idx: usize, kind: EvKind, obj: Value, prev: Option<Value>) {
        let def = &self.resources[idx].def;
        let ev = Arc::new(HistEvent {
            rv: self.rv,
            group: def.group.clone(),
            plural: def.plural.clone(),
            kind,
            obj,
            prev,
        });
        for w in self.watches.values() {
            if w.group == ev.group && w.plural == ev.plural {
                let _ = w.tx.send(WatchMsg::Event(ev.clone()));
            }
        }
        self.history.push_back(ev);
        while self.history.len() > MAX_HISTORY {
            if let Some(old) = self.history.pop_front() {
                self.floor = self.floor.max(old.rv);
            }
        }
    }

    /// The objects of a resource as they were at resourceVersion `at` (>= floor).
    fn snapshot(&self, idx: usize, at: u64) -> BTreeMap<Key, Value> {
        let r = &self.resources[idx];
        let mut objs = r.objects.clone();
        for ev in self.history.iter().rev() {
            if ev.rv <= at {
                break;
            }
            if ev.group != r.def.group || ev.plural != r.def.plural {
                continue;
            }
            match ev.kind {
                EvKind::Added => {
                    objs.remove(&key_of(&ev.obj));
                }
                EvKind::Modified | EvKind::Deleted => {
                    if let Some(prev) = &ev.prev {
                        objs.insert(key_of(prev), prev.clone());
                    }
                }
            }
        }
        objs
    }

    /// Close (cleanly or not) and unregister the watches matching `pred`.
    fn end_watches(&mut self, abort: bool, pred: impl Fn(&WatchReg) -> bool) {
        let ids: Vec<u64> = self
            .watches
            .iter()
            .filter(|(_, w)| pred(w))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            if let Some(w) = self.watches.remove(&id) {
                let _ = w.tx.send(if abort {
                    WatchMsg::Abort
                } else {
                    WatchMsg::Close
                });
            }
        }
    }

    fn new_uid(&mut self) -> String {
        self.next_uid += 1;
        format!("fa4e0000-0000-4000-8000-{:012x}", self.next_uid)
    }

    /// See [`FakeApi::add_resource`]. Returns the resource's index.
    fn add_resource(&mut self, def: ResourceDef) -> usize {
        if let Some(i) = self.find(&def.group, &def.plural) {
            let r = &mut self.resources[i];
            if !r.versions.contains(&def.version) {
                r.versions.push(def.version.clone());
            }
            r.def = def;
            i
        } else {
            self.resources.push(Resource {
                versions: vec![def.version.clone()],
                def,
                objects: BTreeMap::new(),
            });
            self.resources.len() - 1
        }
    }

    /// See [`FakeApi::remove_resource`].
    fn remove_resource(&mut self, group: &str, plural: &str) {
        let Some(idx) = self.find(group, plural) else {
            return;
        };
        let keys: Vec<Key> = self.resources[idx].objects.keys().cloned().collect();
        for k in keys {
            self.delete_at(idx, &k);
        }
        self.end_watches(false, |w| w.group == group && w.plural == plural);
        self.history
            .retain(|e| !(e.group == group && e.plural == plural));
        self.resources.remove(idx);
        if !self.resources.iter().any(|r| r.def.group == group) {
            self.group_preferred.remove(group);
        }
    }

    /// See [`FakeApi::set_versions`].
    fn set_versions(&mut self, idx: usize, versions: Vec<String>, preferred: &str) {
        let group = self.resources[idx].def.group.clone();
        let plural = self.resources[idx].def.plural.clone();
        self.group_preferred
            .insert(group.clone(), preferred.to_string());
        self.end_watches(false, |w| {
            w.group == group && w.plural == plural && !versions.contains(&w.version)
        });
        self.resources[idx].versions = versions;
    }

    /// Create or update an object of resource `idx` (see [`FakeApi::apply`]); `obj` has
    /// a `metadata.name`. Returns the new resourceVersion.
    fn upsert(&mut self, idx: usize, mut obj: Value) -> String {
        let namespaced = self.resources[idx].def.namespaced;
        let meta = obj["metadata"]
            .as_object_mut()
            .expect("fake api: apply: metadata is an object");
        if namespaced {
            let ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .unwrap_or("default")
                .to_string();
            meta.insert("namespace".into(), json!(ns));
        } else {
            meta.remove("namespace");
        }
        let key = key_of(&obj);
        let prev = self.resources[idx].objects.get(&key).cloned();
        self.rv += 1;
        let rv = self.rv.to_string();
        let uid = match prev.as_ref().and_then(|p| p["metadata"]["uid"].as_str()) {
            Some(u) => u.to_string(),
            None => self.new_uid(),
        };
        let meta = obj["metadata"].as_object_mut().expect("metadata object");
        meta.insert("resourceVersion".into(), json!(rv));
        if !meta.contains_key("uid") {
            meta.insert("uid".into(), json!(uid));
        }
        if !meta.contains_key("creationTimestamp") {
            let ts = prev
                .as_ref()
                .and_then(|p| p["metadata"].get("creationTimestamp").cloned())
                .unwrap_or_else(|| json!(now_rfc3339()));
            meta.insert("creationTimestamp".into(), ts);
        }
        if !meta.contains_key("generation") {
            let generation = match &prev {
                None => 1,
                Some(p) => {
                    let g = p["metadata"]["generation"].as_i64().unwrap_or(1);
                    if p.get("spec") != obj.get("spec") {
                        g + 1
                    } else {
                        g
                    }
                }
            };
            obj["metadata"]["generation"] = json!(generation);
        }
        self.resources[idx].objects.insert(key, obj.clone());
        let kind = if prev.is_some() {
            EvKind::Modified
        } else {
            EvKind::Added
        };
        self.emit(idx, kind, obj, prev);
        rv
    }

    /// Delete an object of resource `idx` with a DELETED event; whether it existed.
    fn delete_at(&mut self, idx: usize, key: &Key) -> bool {
        let Some(prev) = self.resources[idx].objects.remove(key) else {
            return false;
        };
        self.rv += 1;
        let mut obj = prev.clone();
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.emit(idx, EvKind::Deleted, obj, Some(prev));
        true
    }

    /// The status of an injected fault for this key, counting it down.
    fn take_fault(&mut self, key: &str) -> Option<u16> {
        let f = self.faults.get_mut(key)?;
        let status = f.status;
        if let Some(n) = f.remaining.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.faults.remove(key);
            }
        }
        Some(status)
    }

    /// Whether any resource of the group-version is served (core v1 always is).
    fn serves(&self, group: &str, version: &str) -> bool {
        (group.is_empty() && version == "v1")
            || self.group_versions(group).iter().any(|v| v == version)
    }
}

fn key_of(obj: &Value) -> Key {
    let m = &obj["metadata"];
    (
        m["namespace"].as_str().unwrap_or("").to_string(),
        m["name"].as_str().unwrap_or("").to_string(),
    )
}

struct Inner {
    addr: SocketAddr,
    state: Mutex<State>,
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not make every later call panic too.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

// ---------------------------------------------------------------------------------------
// Public handle
// ---------------------------------------------------------------------------------------

/// Handle to a running fake API server. Clones share the same server.
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Inner>,
}

impl FakeApi {
    /// Start a server with the built-in resources pods, configmaps, nodes (core v1),
    /// deployments (apps/v1) and customresourcedefinitions (apiextensions.k8s.io/v1)
    /// registered, no objects. Binds 127.0.0.1:0 and serves on the current tokio runtime.
    pub async fn start() -> FakeApi {
        Self::start_with(vec![
            ResourceDef::pods(),
            ResourceDef::configmaps(),
            ResourceDef::nodes(),
            ResourceDef::deployments(),
            ResourceDef::crds(),
        ])
        .await
    }

    /// Start a server with exactly these resources registered.
    pub async fn start_with(defs: Vec<ResourceDef>) -> FakeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("fake api: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("fake api: local_addr");
        let inner = Arc::new(Inner {
            addr,
            state: Mutex::new(State {
                resources: Vec::new(),
                group_preferred: HashMap::new(),
                rv: 1,
                floor: 0,
                history: VecDeque::new(),
                faults: HashMap::new(),
                delay: Duration::ZERO,
                requests: Vec::new(),
                watches: HashMap::new(),
                next_watch: 0,
                next_uid: 0,
                crds: BTreeMap::new(),
                openapi: HashMap::new(),
            }),
        });
        let api = FakeApi { inner };
        for d in defs {
            api.add_resource(d);
        }
        let weak = Arc::downgrade(&api.inner);
        tokio::spawn(accept_loop(listener, weak));
        api
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// A kube client for this server (default namespace `default`).
    pub fn client(&self) -> kube::Client {
        let uri = self.url().parse().expect("fake api: url parses as a URI");
        kube::Client::try_from(kube::Config::new(uri)).expect("fake api: build kube client")
    }

    /// A kubeconfig with one cluster, user and context (named `fake`, the current
    /// context, namespace `default`) pointing at this server.
    pub fn kubeconfig_yaml(&self) -> String {
        format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: fake\n\
             \x20 cluster:\n\
             \x20   server: {url}\n\
             contexts:\n\
             - name: fake\n\
             \x20 context:\n\
             \x20   cluster: fake\n\
             \x20   user: fake\n\
             \x20   namespace: default\n\
             current-context: fake\n\
             users:\n\
             - name: fake\n\
             \x20 user:\n\
             \x20   token: fake-token\n\
             preferences: {{}}\n",
            url = self.url()
        )
    }

    /// Register a resource (a CRD being installed): it appears in discovery. Registering
    /// the same group/plural again updates its definition and adds its version to the
    /// served versions, keeping its objects.
    pub fn add_resource(&self, def: ResourceDef) {
        self.inner.lock().add_resource(def);
    }

    /// Remove a resource (CRD deleted): its objects are deleted (DELETED to open
    /// watches), its watches are closed, it leaves discovery and its URLs answer 404.
    /// Unknown resources are ignored.
    pub fn remove_resource(&self, group: &str, plural: &str) {
        self.inner.lock().remove_resource(group, plural);
    }

    /// Serve the resource at exactly these versions (same objects, apiVersion rewritten
    /// per version); `preferred` becomes the group's preferredVersion. Watches at versions
    /// no longer served are closed and further requests to them get 404.
    pub fn set_versions(&self, group: &str, plural: &str, versions: &[&str], preferred: &str) {
        let mut st = self.inner.lock();
        let idx = st
            .find(group, plural)
            .unwrap_or_else(|| panic!("fake api: set_versions: no resource {plural}.{group}"));
        let versions: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
        st.set_versions(idx, versions, preferred);
    }

    /// Install (or update) a CustomResourceDefinition, given as the full
    /// `apiextensions.k8s.io/v1` object (`spec.group`, `spec.names`, `spec.scope`,
    /// `spec.versions[].{name,served,storage,schema.openAPIV3Schema}`), as a real server
    /// does when it is created or updated:
    ///
    /// - The custom resource is registered (or updated, keeping its objects) for
    ///   discovery and serving, with the CRD's kind, singular, short names and scope, at
    ///   exactly the versions with `served: true`, the preferred one (the group's
    ///   preferredVersion) being the storage version, or the first served one if that
    ///   is not served. As with [`set_versions`], watches at versions no longer served
    ///   are closed and those versions answer 404.
    /// - Then the CRD object is stored as `customresourcedefinitions/<plural>.<group>`
    ///   (ADDED, or MODIFIED on re-install, as [`apply`] does; only if that resource is
    ///   registered, see [`ResourceDef::crds`]). `metadata.name` is set to
    ///   `<plural>.<group>`; the defaults a real server fills in are added when absent
    ///   (`spec.names.singular` = lowercased kind, `spec.names.listKind` = kind + `List`,
    ///   `spec.conversion.strategy` = `None`), and `status` (when absent) says the names
    ///   are accepted and the CRD is Established, with `storedVersions`.
    /// - OpenAPI v3 documents of its served group-versions get its schemas (see
    ///   [`set_openapi`]).
    ///
    /// Both happen at once under the server's lock: a client that sees the CRD event
    /// already finds the resource in discovery.
    ///
    /// Panics on a CRD a real server would reject: no group, plural or kind, a scope
    /// other than `Namespaced`/`Cluster` (or a changed scope on re-install), no
    /// versions, a version without `name`, `served` or `storage`, or a `metadata.name`
    /// other than `<plural>.<group>`.
    ///
    /// [`set_versions`]: FakeApi::set_versions
    /// [`apply`]: FakeApi::apply
    /// [`set_openapi`]: FakeApi::set_openapi
    pub fn install_crd(&self, crd: Value) {
        let info = CrdInfo::parse(&crd);
        let name = info.name();
        let mut st = self.inner.lock();
        let prev = st.crds.get(&name).cloned();
        let crd = crd_as_stored(crd, &info, prev.as_ref());
        let existing = st.find(&info.group, &info.plural);
        if let Some(i) = existing {
            let r = &st.resources[i];
            if r.def.namespaced != info.namespaced && prev.is_some() {
                drop(st);
                panic!("fake api: install_crd {name}: spec.scope is immutable");
            }
        }
        let verbs = existing.map_or_else(default_verbs, |i| st.resources[i].def.verbs.clone());
        let def = ResourceDef {
            group: info.group.clone(),
            version: info.preferred.clone(),
            plural: info.plural.clone(),
            singular: info.singular.clone(),
            kind: info.kind.clone(),
            namespaced: info.namespaced,
            short_names: info.short_names.clone(),
            verbs,
        };
        let idx = st.add_resource(def);
        st.set_versions(idx, info.served.clone(), &info.preferred);
        st.crds.insert(name, crd.clone());
        if let Some(ci) = st.find(CRD_GROUP, CRD_PLURAL) {
            st.upsert(ci, crd);
        }
    }

    /// Delete the CRD named `<plural>.<group>`: the custom resource goes as with
    /// [`remove_resource`] (its objects deleted with DELETED events, its watches closed,
    /// 404 and gone from discovery and OpenAPI afterwards), then the CRD object is
    /// deleted (DELETED on CRD watches). Unknown names are ignored.
    ///
    /// [`remove_resource`]: FakeApi::remove_resource
    pub fn uninstall_crd(&self, name: &str) {
        let mut st = self.inner.lock();
        let (group, plural) = match st.crds.remove(name) {
            Some(crd) => {
                let info = CrdInfo::parse(&crd);
                (info.group, info.plural)
            }
            None => match name.split_once('.') {
                Some((plural, group)) => (group.to_string(), plural.to_string()),
                None => return,
            },
        };
        st.remove_resource(&group, &plural);
        if let Some(ci) = st.find(CRD_GROUP, CRD_PLURAL) {
            st.delete_at(ci, &(String::new(), name.to_string()));
        }
    }

    /// Serve this OpenAPI v3 document at `/openapi/v3/apis/<group>/<version>` (or
    /// `/openapi/v3/api/v1` for group `""`), as is, instead of the generated one. The
    /// group-version is still listed (and answered) only while it is served. Without
    /// it, the document of a group-version is
    /// `{"openapi": "3.0.0", "info": {..}, "paths": {}, "components": {"schemas": S}}`
    /// where S has, for each CRD installed with [`install_crd`] served there, a schema
    /// named `<reversed group>.<version>.<Kind>` (`com.example.v1.Widget` for group
    /// `example.com`): the version's `schema.openAPIV3Schema` plus
    /// `"x-kubernetes-group-version-kind": [{"group", "version", "kind"}]`; for other
    /// group-versions S is empty.
    ///
    /// [`install_crd`]: FakeApi::install_crd
    pub fn set_openapi(&self, group: &str, version: &str, doc: Value) {
        self.inner
            .lock()
            .openapi
            .insert((group.to_string(), version.to_string()), doc);
    }

    /// Create or update an object. The resource is found by the group of `apiVersion` and
    /// `kind` (any version); namespaced objects without `metadata.namespace` go to
    /// `default`. Assigns `metadata.uid` on create, a new `metadata.resourceVersion`,
    /// `creationTimestamp` and `generation` if absent; emits ADDED or MODIFIED (always,
    /// even when nothing changed). Returns the new resourceVersion.
    ///
    /// Panics if the kind is not registered or the object has no `metadata.name`.
    /// (A CRD applied this way is only stored; use [`install_crd`] to serve it.)
    ///
    /// [`install_crd`]: FakeApi::install_crd
    pub fn apply(&self, obj: Value) -> String {
        let api_version = obj["apiVersion"]
            .as_str()
            .unwrap_or_else(|| panic!("fake api: apply: object has no apiVersion: {obj}"))
            .to_string();
        let kind = obj["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("fake api: apply: object has no kind: {obj}"))
            .to_string();
        assert!(
            obj["metadata"]["name"]
                .as_str()
                .is_some_and(|n| !n.is_empty()),
            "fake api: apply: object has no metadata.name: {obj}"
        );
        let mut st = self.inner.lock();
        let Some(idx) = st.find_kind(group_of(&api_version), &kind) else {
            let known = st.registered_kinds();
            drop(st);
            panic!(
                "fake api: apply: kind {kind} of apiVersion {api_version} is not registered \
                 (call add_resource first); registered: {known:?}"
            )
        };
        st.upsert(idx, obj)
    }

    /// Delete an object (namespace `None` = cluster-scoped, or `default` for a namespaced
    /// resource). Emits DELETED with its last state and a new resourceVersion. Returns
    /// whether it existed.
    pub fn delete(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> bool {
        let mut st = self.inner.lock();
        let Some(idx) = st.find_kind(group_of(api_version), kind) else {
            return false;
        };
        let ns = if st.resources[idx].def.namespaced {
            namespace.unwrap_or("default").to_string()
        } else {
            String::new()
        };
        st.delete_at(idx, &(ns, name.to_string()))
    }

    /// The stored objects of a resource, sorted by namespace/name (empty if unknown).
    pub fn objects(&self, group: &str, plural: &str) -> Vec<Value> {
        let st = self.inner.lock();
        st.find(group, plural)
            .map(|i| st.resources[i].objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The last resourceVersion issued.
    pub fn resource_version(&self) -> String {
        self.inner.lock().rv.to_string()
    }

    // --- faults ---------------------------------------------------------------------

    /// Close every open watch stream now, mid-stream (no terminating chunk).
    pub fn drop_watches(&self) {
        self.inner.lock().end_watches(true, |_| true);
    }

    /// Answer list, watch and get requests of resources with this plural (any group)
    /// with a Status of this HTTP code, `times` times or until [`clear_faults`].
    /// The pseudo-plural `openapi` does so for every `/openapi/v3` request
    /// (`fail("openapi", 404, None)`: a server without OpenAPI v3).
    /// NB: kube's default client retries 429, 503 and 504 by itself.
    ///
    /// [`clear_faults`]: FakeApi::clear_faults
    pub fn fail(&self, plural: &str, status: u16, times: Option<usize>) {
        if times == Some(0) {
            self.inner.lock().faults.remove(plural);
            return;
        }
        self.inner.lock().faults.insert(
            plural.to_string(),
            Fault {
                status,
                remaining: times,
            },
        );
    }

    /// `fail(plural, 403, None)`: 403 Forbidden with reason Forbidden.
    pub fn forbid(&self, plural: &str) {
        self.fail(plural, 403, None);
    }

    pub fn clear_faults(&self) {
        self.inner.lock().faults.clear();
    }

    /// Delay every response (discovery included) by `d`; `Duration::ZERO` turns it off.
    pub fn set_delay(&self, d: Duration) {
        self.inner.lock().delay = d;
    }

    /// Compaction: every resourceVersion issued so far becomes too old. Watches (and
    /// lists with `resourceVersionMatch=Exact`, and continue tokens) from them get 410
    /// Expired; open watches are dropped so clients must resume.
    pub fn expire_history(&self) {
        let mut st = self.inner.lock();
        st.rv += 1;
        st.floor = st.rv;
        st.history.clear();
        st.end_watches(true, |_| true);
    }

    /// `"METHOD path?query"` of every request received, in order, query as sent
    /// (percent-encoded, e.g. `labelSelector=app%3Dweb`).
    pub fn requests(&self) -> Vec<String> {
        self.inner.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.inner.lock().requests.clear();
    }

    /// Watch streams currently open (registered for events).
    pub fn open_watches(&self) -> usize {
        self.inner.lock().watches.len()
    }

    /// Wait until at least `n` watches are open; panics after 10 s.
    pub async fn wait_for_watches(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.open_watches() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fake api: timed out waiting for {n} open watches (have {})",
                self.open_watches()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

// ---------------------------------------------------------------------------------------
// CustomResourceDefinitions
// ---------------------------------------------------------------------------------------

/// What the fake needs of a CRD.
struct CrdInfo {
    group: String,
    plural: String,
    singular: String,
    kind: String,
    short_names: Vec<String>,
    namespaced: bool,
    /// Versions with `served: true`, in the CRD's order.
    served: Vec<String>,
    storage: Option<String>,
    /// The storage version if served, else the first served one (else the first).
    preferred: String,
}

impl CrdInfo {
    /// Panics (with the reason) on a CRD a real API server would reject.
    fn parse(crd: &Value) -> CrdInfo {
        let bad = |what: &str| -> ! { panic!("fake api: install_crd: {what}: {crd}") };
        let spec = &crd["spec"];
        let names = &spec["names"];
        let text = |v: &Value, what: &str| match v.as_str() {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => bad(&format!("{what} is required")),
        };
        let group = text(&spec["group"], "spec.group");
        let plural = text(&names["plural"], "spec.names.plural");
        let kind = text(&names["kind"], "spec.names.kind");
        let singular = names["singular"]
            .as_str()
            .filter(|s| !s.is_empty())
            .map_or_else(|| kind.to_lowercase(), str::to_string);
        let short_names = names["shortNames"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let namespaced = match spec["scope"].as_str() {
            Some("Namespaced") => true,
            Some("Cluster") => false,
            _ => bad("spec.scope must be Namespaced or Cluster"),
        };
        let versions = match spec["versions"].as_array() {
            Some(vs) if !vs.is_empty() => vs,
            _ => bad("spec.versions must not be empty"),
        };
        let mut served = Vec::new();
        let mut storage = None;
        for (i, v) in versions.iter().enumerate() {
            let name = text(&v["name"], &format!("spec.versions[{i}].name"));
            let flag = |f: &str| {
                v[f].as_bool()
                    .unwrap_or_else(|| bad(&format!("spec.versions[{i}].{f} is required")))
            };
            if flag("served") {
                served.push(name.clone());
            }
            if flag("storage") && storage.is_none() {
                storage = Some(name);
            }
        }
        let preferred = storage
            .clone()
            .filter(|s| served.contains(s))
            .or_else(|| served.first().cloned())
            .unwrap_or_else(|| text(&versions[0]["name"], "spec.versions[0].name"));
        let info = CrdInfo {
            group,
            plural,
            singular,
            kind,
            short_names,
            namespaced,
            served,
            storage,
            preferred,
        };
        if let Some(n) = crd["metadata"]["name"].as_str()
            && n != info.name()
        {
            bad(&format!(
                "metadata.name must be spec.names.plural+\".\"+spec.group ({})",
                info.name()
            ));
        }
        info
    }

    /// `<plural>.<group>`
    fn name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

/// The CRD object as a real server stores it: name set, defaults and status filled in.
fn crd_as_stored(mut crd: Value, info: &CrdInfo, prev: Option<&Value>) -> Value {
    let obj = crd
        .as_object_mut()
        .expect("fake api: install_crd: the CRD is an object");
    obj.entry("apiVersion")
        .or_insert_with(|| json!("apiextensions.k8s.io/v1"));
    obj.entry("kind")
        .or_insert_with(|| json!("CustomResourceDefinition"));
    if !crd["metadata"].is_object() {
        crd["metadata"] = json!({});
    }
    crd["metadata"]["name"] = json!(info.name());
    let names = &mut crd["spec"]["names"];
    if names["singular"].as_str().is_none_or(str::is_empty) {
        names["singular"] = json!(info.singular);
    }
    if names["listKind"].as_str().is_none_or(str::is_empty) {
        names["listKind"] = json!(format!("{}List", info.kind));
    }
    if crd["spec"]["conversion"].is_null() {
        crd["spec"]["conversion"] = json!({"strategy": "None"});
    }
    if crd["status"].is_null() {
        let prev_status = prev.map(|p| &p["status"]);
        let mut stored: Vec<String> = prev_status
            .and_then(|s| s["storedVersions"].as_array())
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Some(s) = &info.storage
            && !stored.contains(s)
        {
            stored.push(s.clone());
        }
        let conditions = prev_status
            .map(|s| s["conditions"].clone())
            .filter(Value::is_array)
            .unwrap_or_else(|| {
                let now = now_rfc3339();
                json!([
                    {
                        "type": "NamesAccepted",
                        "status": "True",
                        "lastTransitionTime": now,
                        "reason": "NoConflicts",
                        "message": "no conflicts found",
                    },
                    {
                        "type": "Established",
                        "status": "True",
                        "lastTransitionTime": now,
                        "reason": "InitialNamesAccepted",
                        "message": "the initial names have been accepted",
                    },
                ])
            });
        crd["status"] = json!({
            "acceptedNames": crd["spec"]["names"].clone(),
            "conditions": conditions,
            "storedVersions": stored,
        });
    }
    crd
}

// ---------------------------------------------------------------------------------------
// OpenAPI v3
// ---------------------------------------------------------------------------------------

/// `/openapi/v3` and below; `rest` is the path after it.
fn openapi(st: &mut State, rest: &[&str], path: &str) -> Response<Body> {
    if let Some(status) = st.take_fault(OPENAPI_FAULT) {
        return match status {
            404 => not_found(),
            403 => status_response(
                403,
                &format!(
                    "forbidden: User \"system:serviceaccount:default:kube-field-exporter\" \
                     cannot get path \"{path}\""
                ),
                Some(json!({})),
            ),
            500 => status_response(500, "Internal error occurred: injected fault", None),
            s => status_response(s, &format!("injected fault: HTTP {s}"), None),
        };
    }
    let doc = match rest {
        [] => return json_response(StatusCode::OK, &openapi_index(st)),
        ["api", version] => openapi_doc(st, "", version),
        ["apis", group, version] => openapi_doc(st, group, version),
        _ => None,
    };
    match doc {
        Some(d) => json_response(StatusCode::OK, &d),
        None => not_found(),
    }
}

/// `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=.."}, ..}}`
fn openapi_index(st: &State) -> Value {
    let mut gvs: Vec<(String, String)> = vec![(String::new(), "v1".to_string())];
    for v in st.group_versions("") {
        if v != "v1" {
            gvs.push((String::new(), v));
        }
    }
    for g in st.groups() {
        for v in st.group_versions(&g) {
            gvs.push((g.clone(), v));
        }
    }
    let mut paths = serde_json::Map::new();
    for (g, v) in gvs {
        let Some(doc) = openapi_doc(st, &g, &v) else {
            continue;
        };
        let key = if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        };
        let url = format!("/openapi/v3/{key}?hash={}", doc_hash(&doc));
        paths.insert(key, json!({"serverRelativeURL": url}));
    }
    json!({"paths": paths})
}

/// The document of a group-version (None if it is not served).
fn openapi_doc(st: &State, group: &str, version: &str) -> Option<Value> {
    if !st.serves(group, version) {
        return None;
    }
    if let Some(d) = st.openapi.get(&(group.to_string(), version.to_string())) {
        return Some(d.clone());
    }
    let mut schemas = serde_json::Map::new();
    let mut any_crd = false;
    for crd in st.crds.values() {
        let spec = &crd["spec"];
        if spec["group"].as_str() != Some(group) {
            continue;
        }
        any_crd = true;
        let plural = spec["names"]["plural"].as_str().unwrap_or("");
        let kind = spec["names"]["kind"].as_str().unwrap_or("");
        if st.find_served(group, version, plural).is_none() {
            continue;
        }
        let Some(v) = spec["versions"]
            .as_array()
            .and_then(|vs| vs.iter().find(|v| v["name"].as_str() == Some(version)))
        else {
            continue;
        };
        let mut schema = v["schema"]["openAPIV3Schema"].clone();
        if !schema.is_object() {
            schema = json!({});
        }
        schema["x-kubernetes-group-version-kind"] =
            json!([{"group": group, "version": version, "kind": kind}]);
        schemas.insert(
            format!("{}.{version}.{kind}", reversed_group(group)),
            schema,
        );
    }
    let info = if any_crd {
        json!({"title": "Kubernetes CRD Swagger", "version": "v0.1.0"})
    } else {
        json!({"title": "Kubernetes", "version": "v1.33.0"})
    };
    Some(json!({
        "openapi": "3.0.0",
        "info": info,
        "paths": {},
        "components": {"schemas": schemas},
    }))
}

/// `example.com` -> `com.example`
fn reversed_group(group: &str) -> String {
    group.split('.').rev().collect::<Vec<_>>().join(".")
}

/// Stable for a document's content (within a build), as hex.
fn doc_hash(doc: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    serde_json::to_string(doc)
        .expect("serialize json")
        .hash(&mut h);
    format!("{:016X}", h.finish())
}

// ---------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------

async fn accept_loop(listener: tokio::net::TcpListener, weak: Weak<Inner>) {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Some(inner) = weak.upgrade() else {
            return;
        };
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(inner.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(inner: Arc<Inner>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let delay = {
        let mut st = inner.lock();
        let pq = req
            .uri()
            .path_and_query()
            .map_or_else(|| path.clone(), |pq| pq.as_str().to_string());
        st.requests.push(format!("{method} {pq}"));
        st.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Ok(route(&inner, &method, &path, &query, &accept))
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed_unsync()
}

fn json_response(code: StatusCode, v: &Value) -> Response<Body> {
    json_response_typed(code, v, "application/json")
}

fn json_response_typed(code: StatusCode, v: &Value, content_type: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header(header::CONTENT_TYPE, content_type)
        .body(full(serde_json::to_vec(v).expect("serialize json")))
        .expect("build response")
}

fn reason_for(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "",
    }
}

/// A `metav1.Status` failure object.
fn status_json(code: u16, message: &str, details: Option<Value>) -> Value {
    let mut v = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason_for(code),
        "code": code,
    });
    if let Some(d) = details {
        v["details"] = d;
    }
    v
}

fn status_response(code: u16, message: &str, details: Option<Value>) -> Response<Body> {
    let sc = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(sc, &status_json(code, message, details))
}

fn not_found() -> Response<Body> {
    status_response(
        404,
        "the server could not find the requested resource",
        Some(json!({})),
    )
}

fn route(
    inner: &Arc<Inner>,
    method: &Method,
    path: &str,
    query: &str,
    accept: &str,
) -> Response<Body> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if method != Method::GET {
        return status_response(
            405,
            &format!("the fake API server only serves GET, not {method}"),
            None,
        );
    }
    let params = parse_query(query);
    let aggregated = accept.contains("as=APIGroupDiscoveryList");
    let mut st = inner.lock();
    match segs.as_slice() {
        [] => json_response(
            StatusCode::OK,
            &json!({"paths": [
                "/api", "/api/v1", "/apis", "/openapi/v3", "/version", "/healthz", "/readyz",
                "/livez",
            ]}),
        ),
        ["openapi", "v3", rest @ ..] => openapi(&mut st, rest, path),
        ["version"] => json_response(
            StatusCode::OK,
            &json!({
                "major": "1",
                "minor": "33",
                "emulationMajor": "1",
                "emulationMinor": "33",
                "gitVersion": "v1.33.0",
                "gitCommit": "0000000000000000000000000000000000000000",
                "gitTreeState": "clean",
                "buildDate": "2025-04-23T00:00:00Z",
                "goVersion": "go1.24.2",
                "compiler": "gc",
                "platform": "linux/amd64",
            }),
        ),
        ["healthz" | "readyz" | "livez"] => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(full("ok"))
            .expect("build response"),
        ["api"] if aggregated => aggregated_discovery(&st, true),
        ["api"] => json_response(
            StatusCode::OK,
            &json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": inner.addr.to_string()}
                ],
            }),
        ),
        ["apis"] if aggregated => aggregated_discovery(&st, false),
        ["apis"] => {
            let groups: Vec<Value> = st.groups().iter().map(|g| api_group_json(&st, g)).collect();
            json_response(
                StatusCode::OK,
                &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
            )
        }
        ["apis", group] => {
            if st.group_versions(group).is_empty() {
                not_found()
            } else {
                let mut g = api_group_json(&st, group);
                g["kind"] = json!("APIGroup");
                g["apiVersion"] = json!("v1");
                json_response(StatusCode::OK, &g)
            }
        }
        ["api", version] => resource_list(&st, "", version),
        ["apis", group, version] => resource_list(&st, group, version),
        ["api", version, rest @ ..] => {
            collection(inner, &mut st, "", version, rest, &params, accept)
        }
        ["apis", group, version, rest @ ..] => {
            collection(inner, &mut st, group, version, rest, &params, accept)
        }
        _ => not_found(),
    }
}

// ---------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------

fn api_group_json(st: &State, group: &str) -> Value {
    let versions: Vec<Value> = st
        .group_versions(group)
        .iter()
        .map(|v| json!({"groupVersion": group_version(group, v), "version": v}))
        .collect();
    let preferred = versions.first().cloned().unwrap_or(Value::Null);
    json!({"name": group, "versions": versions, "preferredVersion": preferred})
}

fn api_resource_json(def: &ResourceDef) -> Value {
    let mut v = json!({
        "name": def.plural,
        "singularName": def.singular,
        "namespaced": def.namespaced,
        "kind": def.kind,
        "verbs": def.verbs,
    });
    if !def.short_names.is_empty() {
        v["shortNames"] = json!(def.short_names);
    }
    v
}

fn resource_list(st: &State, group: &str, version: &str) -> Response<Body> {
    let resources: Vec<Value> = st
        .resources
        .iter()
        .filter(|r| r.def.group == group && r.versions.iter().any(|v| v == version))
        .map(|r| api_resource_json(&r.def))
        .collect();
    if resources.is_empty() && !(group.is_empty() && version == "v1") {
        return not_found();
    }
    json_response(
        StatusCode::OK,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version(group, version),
            "resources": resources,
        }),
    )
}

/// Aggregated discovery (apidiscovery.k8s.io/v2) for the core group or all other groups.
fn aggregated_discovery(st: &State, core: bool) -> Response<Body> {
    let groups = if core {
        vec![String::new()]
    } else {
        st.groups()
    };
    let items: Vec<Value> = groups
        .iter()
        .map(|g| {
            let mut versions = st.group_versions(g);
            if core && versions.is_empty() {
                versions.push("v1".into());
            }
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| {
                    let resources: Vec<Value> = st
                        .resources
                        .iter()
                        .filter(|r| &r.def.group == g && r.versions.contains(v))
                        .map(|r| {
                            json!({
                                "resource": r.def.plural,
                                "responseKind": {"group": g, "version": v, "kind": r.def.kind},
                                "scope": if r.def.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": r.def.singular,
                                "verbs": r.def.verbs,
                                "shortNames": r.def.short_names,
                            })
                        })
                        .collect();
                    json!({"version": v, "resources": resources, "freshness": "Current"})
                })
                .collect();
            let mut metadata = json!({"creationTimestamp": null});
            if !g.is_empty() {
                metadata["name"] = json!(g);
            }
            json!({"metadata": metadata, "versions": versions})
        })
        .collect();
    json_response_typed(
        StatusCode::OK,
        &json!({
            "kind": "APIGroupDiscoveryList",
            "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {},
            "items": items,
        }),
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    )
}

// ---------------------------------------------------------------------------------------
// Collections: list, get, watch
// ---------------------------------------------------------------------------------------

/// How objects are rendered for one request.
#[derive(Clone)]
struct View {
    group: String,
    version: String,
    kind: String,
    metadata_only: bool,
}

impl View {
    fn api_version(&self) -> String {
        group_version(&self.group, &self.version)
    }

    fn present(&self, obj: &Value) -> Value {
        if self.metadata_only {
            json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": obj["metadata"],
            })
        } else {
            let mut o = obj.clone();
            o["apiVersion"] = json!(self.api_version());
            o["kind"] = json!(self.kind);
            o
        }
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Value {
        let (kind, api_version) = if self.metadata_only {
            (
                "PartialObjectMetadata".to_string(),
                "meta.k8s.io/v1".to_string(),
            )
        } else {
            (self.kind.clone(), self.api_version())
        };
        let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
        if initial_events_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        json!({"kind": kind, "apiVersion": api_version, "metadata": metadata})
    }
}

fn collection(
    inner: &Arc<Inner>,
    st: &mut State,
    group: &str,
    version: &str,
    rest: &[&str],
    params: &HashMap<String, String>,
    accept: &str,
) -> Response<Body> {
    let (namespace, plural, name) = match rest {
        [plural] => (None, *plural, None),
        [plural, name] => (None, *plural, Some(*name)),
        ["namespaces", ns, plural] => (Some(*ns), *plural, None),
        ["namespaces", ns, plural, name] => (Some(*ns), *plural, Some(*name)),
        _ => return not_found(),
    };
    let Some(idx) = st.find_served(group, version, plural) else {
        return not_found();
    };
    let def = st.resources[idx].def.clone();
    if namespace.is_some() && !def.namespaced {
        return not_found();
    }
    let watch = matches!(params.get("watch").map(String::as_str), Some("true" | "1"));
    let verb = match (name, watch) {
        (Some(_), _) => "get",
        (None, true) => "watch",
        (None, false) => "list",
    };
    if let Some(status) = st.take_fault(plural) {
        return injected_fault(status, &def, verb, namespace);
    }
    if !def.has_verb(verb) {
        return status_response(
            405,
            &format!(
                "the server does not allow this method on the requested resource ({verb} {})",
                def.qualified()
            ),
            None,
        );
    }
    let view = View {
        group: group.to_string(),
        version: version.to_string(),
        kind: def.kind.clone(),
        metadata_only: accept.contains("as=PartialObjectMetadata"),
    };
    let filter = match Filter::new(namespace, params) {
        Ok(f) => f,
        Err(msg) => return status_response(400, &msg, None),
    };
    if let Some(name) = name {
        let key = (namespace.unwrap_or("").to_string(), name.to_string());
        return match st.resources[idx].objects.get(&key) {
            Some(obj) if def.namespaced == namespace.is_some() => {
                json_response(StatusCode::OK, &view.present(obj))
            }
            _ => status_response(
                404,
                &format!("{} \"{name}\" not found", def.qualified()),
                Some(json!({"name": name, "group": def.group, "kind": def.plural})),
            ),
        };
    }
    if watch {
        start_watch(inner, st, idx, view, filter, params)
    } else {
        list(st, idx, &view, &filter, params)
    }
}

fn injected_fault(
    status: u16,
    def: &ResourceDef,
    verb: &str,
    namespace: Option<&str>,
) -> Response<Body> {
    let message = match status {
        403 => {
            let scope = match namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".to_string(),
            };
            format!(
                "{} is forbidden: User \"system:serviceaccount:default:kube-field-exporter\" \
                 cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
                def.qualified(),
                def.plural,
                def.group
            )
        }
        500 => "Internal error occurred: injected fault".to_string(),
        _ => format!("injected fault: HTTP {status}"),
    };
    status_response(
        status,
        &message,
        Some(json!({"group": def.group, "kind": def.plural})),
    )
}

fn too_old(rv: u64, floor: u64) -> String {
    format!("too old resource version: {rv} ({floor})")
}

fn list(
    st: &State,
    idx: usize,
    view: &View,
    filter: &Filter,
    params: &HashMap<String, String>,
) -> Response<Body> {
    let limit = params
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .filter(|l| *l > 0);
    let (at, start_after) = match params.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => {
            let Some((rv, key)) = decode_continue(token) else {
                return status_response(400, "continue key is not valid", None);
            };
            if rv < st.floor {
                return status_response(
                    410,
                    "The provided continue parameter is too old to display a consistent list \
                     result. You can start a new list without the continue parameter.",
                    None,
                );
            }
            (rv, Some(key))
        }
        None => {
            let exact = params.get("resourceVersionMatch").map(String::as_str) == Some("Exact");
            match params.get("resourceVersion").map(String::as_str) {
                Some(rv) if exact && !rv.is_empty() && rv != "0" => {
                    let Ok(rv) = rv.parse::<u64>() else {
                        return status_response(
                            400,
                            &format!("invalid resource version: {rv}"),
                            None,
                        );
                    };
                    if rv < st.floor {
                        return status_response(410, &too_old(rv, st.floor), None);
                    }
                    (rv.min(st.rv), None)
                }
                _ => (st.rv, None),
            }
        }
    };
    let snapshot;
    let objects = if at >= st.rv {
        &st.resources[idx].objects
    } else {
        snapshot = st.snapshot(idx, at);
        &snapshot
    };
    // From the continue key on (not a scan from the start for every page).
    let from = start_after.map_or(Bound::Unbounded, Bound::Excluded);
    let matching: Vec<(&Key, &Value)> = objects
        .range((from, Bound::Unbounded))
        .filter(|(_, v)| filter.matches(v))
        .collect();
    let take = limit.unwrap_or(usize::MAX).min(matching.len());
    let remaining = matching.len() - take;
    let items: Vec<Presented<'_>> = matching[..take]
        .iter()
        .map(|(_, obj)| Presented { view, obj })
        .collect();
    let mut metadata = json!({"resourceVersion": at.to_string()});
    if remaining > 0 {
        let last = matching[take - 1].0;
        metadata["continue"] = json!(encode_continue(at, last));
        if filter.labels.is_empty() && filter.fields.is_empty() {
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    let (kind, api_version) = if view.metadata_only {
        (
            "PartialObjectMetadataList".to_string(),
            "meta.k8s.io/v1".to_string(),
        )
    } else {
        (format!("{}List", view.kind), view.api_version())
    };
    // The same bytes as `json!({"kind", "apiVersion", "metadata", "items"})` (a BTreeMap:
    // keys sorted), without cloning every object of the page first.
    let list = ListBody {
        api_version: &api_version,
        items: &items,
        kind: &kind,
        metadata: &metadata,
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full(serde_json::to_vec(&list).expect("serialize json")))
        .expect("build response")
}

/// A list response, serialized with its keys in `serde_json::Map` order.
struct ListBody<'a> {
    api_version: &'a str,
    items: &'a [Presented<'a>],
    kind: &'a str,
    metadata: &'a Value,
}

impl serde::Serialize for ListBody<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("apiVersion", self.api_version)?;
        m.serialize_entry("items", self.items)?;
        m.serialize_entry("kind", self.kind)?;
        m.serialize_entry("metadata", self.metadata)?;
        m.end()
    }
}

/// `view.present(obj)` as it serializes, without the clone: the stored object's entries
/// with `apiVersion` and `kind` replaced by the view's (stored objects always have both;
/// otherwise, and for metadata-only views, it falls back to `present`).
struct Presented<'a> {
    view: &'a View,
    obj: &'a Value,
}

impl serde::Serialize for Presented<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let map = match self.obj.as_object() {
            Some(m)
                if !self.view.metadata_only
                    && m.contains_key("apiVersion")
                    && m.contains_key("kind") =>
            {
                m
            }
            _ => return self.view.present(self.obj).serialize(s),
        };
        let api_version = self.view.api_version();
        let mut out = s.serialize_map(Some(map.len()))?;
        for (k, v) in map {
            match k.as_str() {
                "apiVersion" => out.serialize_entry(k, &api_version)?,
                "kind" => out.serialize_entry(k, &self.view.kind)?,
                _ => out.serialize_entry(k, v)?,
            }
        }
        out.end()
    }
}

fn encode_continue(rv: u64, key: &Key) -> String {
    format!("{rv}/{}/{}", key.0, key.1)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_continue(token: &str) -> Option<(u64, Key)> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(token.get(i..i + 2)?, 16).ok())
        .collect();
    let s = String::from_utf8(bytes?).ok()?;
    let mut parts = s.splitn(3, '/');
    let rv = parts.next()?.parse().ok()?;
    let ns = parts.next()?.to_string();
    let name = parts.next()?.to_string();
    Some((rv, (ns, name)))
}

// ---------------------------------------------------------------------------------------
// Watch
// ---------------------------------------------------------------------------------------

/// A response body fed by a channel; an `Err` item aborts the connection.
struct ChannelBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}

fn event_line(kind: &str, object: Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).expect("json");
    line.push(b'\n');
    Bytes::from(line)
}

fn start_watch(
    inner: &Arc<Inner>,
    st: &mut State,
    idx: usize,
    view: View,
    filter: Filter,
    params: &HashMap<String, String>,
) -> Response<Body> {
    let bookmarks = params.get("allowWatchBookmarks").map(String::as_str) == Some("true");
    let send_initial = params.get("sendInitialEvents").map(String::as_str) == Some("true");
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|t| *t > 0)
        .map(Duration::from_secs);
    let rv_param = params.get("resourceVersion").map_or("", String::as_str);

    let mut initial: Vec<Bytes> = Vec::new();
    let mut register = true;
    let mut last_rv = st.rv;
    if rv_param.is_empty() || rv_param == "0" || send_initial {
        for obj in st.resources[idx].objects.values() {
            if filter.matches(obj) {
                initial.push(event_line("ADDED", view.present(obj)));
            }
        }
        if send_initial {
            initial.push(event_line("BOOKMARK", view.bookmark(st.rv, true)));
        }
    } else {
        let Ok(from) = rv_param.parse::<u64>() else {
            return status_response(400, &format!("invalid resource version: {rv_param}"), None);
        };
        if from < st.floor {
            initial.push(event_line(
                "ERROR",
                status_json(410, &too_old(from, st.floor), None),
            ));
            register = false;
        } else {
            let def = &st.resources[idx].def;
            for ev in st.history.iter().filter(|e| e.rv > from) {
                if ev.group == def.group
                    && ev.plural == def.plural
                    && let Some(line) = filtered_event(ev, &view, &filter)
                {
                    initial.push(line);
                }
            }
            last_rv = last_rv.max(from);
        }
    }

    let (out_tx, out_rx) = mpsc::channel(64);
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    let id = st.next_watch;
    st.next_watch += 1;
    if register {
        st.watches.insert(
            id,
            WatchReg {
                group: view.group.clone(),
                plural: st.resources[idx].def.plural.clone(),
                version: view.version.clone(),
                tx: ev_tx,
            },
        );
    }
    let task = WatchTask {
        id,
        inner: inner.clone(),
        rx: ev_rx,
        out: out_tx,
        view,
        filter,
        bookmarks,
        timeout,
        last_rv,
    };
    tokio::spawn(task.run(initial, register));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(ChannelBody(out_rx).boxed_unsync())
        .expect("build response")
}

/// The line a watch with this view/filter gets for an event, if any.
fn filtered_event(ev: &HistEvent, view: &View, filter: &Filter) -> Option<Bytes> {
    let kind = match ev.kind {
        EvKind::Added => filter.matches(&ev.obj).then_some("ADDED"),
        EvKind::Modified => {
            let was = ev.prev.as_ref().is_some_and(|p| filter.matches(p));
            match (was, filter.matches(&ev.obj)) {
                (true, true) => Some("MODIFIED"),
                (false, true) => Some("ADDED"),
                (true, false) => Some("DELETED"),
                (false, false) => None,
            }
        }
        EvKind::Deleted => filter
            .matches(ev.prev.as_ref().unwrap_or(&ev.obj))
            .then_some("DELETED"),
    }?;
    Some(event_line(kind, view.present(&ev.obj)))
}

struct WatchTask {
    id: u64,
    inner: Arc<Inner>,
    rx: mpsc::UnboundedReceiver<WatchMsg>,
    out: mpsc::Sender<Result<Bytes, std::io::Error>>,
    view: View,
    filter: Filter,
    bookmarks: bool,
    timeout: Option<Duration>,
    /// Highest resourceVersion this stream has been brought up to.
    last_rv: u64,
}

enum Flow {
    Continue,
    /// Client went away.
    Gone,
    Close,
    Abort,
}

impl WatchTask {
    async fn run(mut self, initial: Vec<Bytes>, registered: bool) {
        let flow = self.serve(initial, registered).await;
        if let Flow::Abort = flow {
            let _ = self
                .out
                .send(Err(std::io::Error::other(
                    "fake api: watch connection dropped",
                )))
                .await;
        }
        self.inner.lock().watches.remove(&self.id);
    }

    async fn serve(&mut self, initial: Vec<Bytes>, registered: bool) -> Flow {
        for line in initial {
            if self.out.send(Ok(line)).await.is_err() {
                return Flow::Gone;
            }
        }
        if !registered {
            return Flow::Close;
        }
        let deadline = tokio::time::sleep(self.timeout.unwrap_or(Duration::from_secs(365 * 86400)));
        tokio::pin!(deadline);
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + FIRST_BOOKMARK, BOOKMARK_EVERY);
        loop {
            enum Wake {
                Timeout,
                Tick,
                Msg(Option<WatchMsg>),
                Gone,
            }
            let wake = tokio::select! {
                _ = &mut deadline => Wake::Timeout,
                _ = ticker.tick(), if self.bookmarks => Wake::Tick,
                m = self.rx.recv() => Wake::Msg(m),
                _ = self.out.closed() => Wake::Gone,
            };
            let flow = match wake {
                Wake::Timeout => Flow::Close,
                Wake::Gone => Flow::Gone,
                Wake::Msg(m) => self.deliver(m).await,
                Wake::Tick => self.bookmark().await,
            };
            if !matches!(flow, Flow::Continue) {
                return flow;
            }
        }
    }

    async fn deliver(&mut self, msg: Option<WatchMsg>) -> Flow {
        match msg {
            Some(WatchMsg::Event(ev)) => {
                self.last_rv = self.last_rv.max(ev.rv);
                if let Some(line) = filtered_event(&ev, &self.view, &self.filter)
                    && self.out.send(Ok(line)).await.is_err()
                {
                    return Flow::Gone;
                }
                Flow::Continue
            }
            Some(WatchMsg::Close) => Flow::Close,
            Some(WatchMsg::Abort) | None => Flow::Abort,
        }
    }

    /// Bring the stream up to the current resourceVersion, then send a BOOKMARK.
    async fn bookmark(&mut self) -> Flow {
        // Every event up to `current` was queued on `rx` under the lock before it was
        // issued, so draining the queue makes the bookmark truthful.
        let current = self.inner.lock().rv;
        loop {
            match self.rx.try_recv() {
                Ok(msg) => {
                    let flow = self.deliver(Some(msg)).await;
                    if !matches!(flow, Flow::Continue) {
                        return flow;
                    }
                }
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) => return Flow::Abort,
            }
        }
        self.last_rv = self.last_rv.max(current);
        let line = event_line("BOOKMARK", self.view.bookmark(self.last_rv, false));
        if self.out.send(Ok(line)).await.is_err() {
            return Flow::Gone;
        }
        Flow::Continue
    }
}

// ---------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------

#[derive(Debug)]
enum LabelReq {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Gt(String, i64),
    Lt(String, i64),
}

#[derive(Debug)]
struct FieldReq {
    path: String,
    value: String,
    negate: bool,
}

struct Filter {
    namespace: Option<String>,
    labels: Vec<LabelReq>,
    fields: Vec<FieldReq>,
}

impl Filter {
    fn new(namespace: Option<&str>, params: &HashMap<String, String>) -> Result<Filter, String> {
        let labels = match params.get("labelSelector") {
            Some(s) => parse_label_selector(s)?,
            None => Vec::new(),
        };
        let fields = match params.get("fieldSelector") {
            Some(s) => parse_field_selector(s)?,
            None => Vec::new(),
        };
        Ok(Filter {
            namespace: namespace.map(str::to_string),
            labels,
            fields,
        })
    }

    fn matches(&self, obj: &Value) -> bool {
        let meta = &obj["metadata"];
        if let Some(ns) = &self.namespace
            && meta["namespace"].as_str() != Some(ns.as_str())
        {
            return false;
        }
        let labels = meta["labels"].as_object();
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        let labels_ok = self.labels.iter().all(|r| match r {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::Ne(k, v) => label(k) != Some(v.as_str()),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => !label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::Gt(k, n) => label(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l > *n),
            LabelReq::Lt(k, n) => label(k)
                .and_then(|l| l.parse::<i64>().ok())
                .is_some_and(|l| l < *n),
        });
        labels_ok
            && self
                .fields
                .iter()
                .all(|f| (field_value(obj, &f.path) == f.value) != f.negate)
    }
}

/// A field's value as a string ("" when absent), by dotted path.
fn field_value(obj: &Value, path: &str) -> String {
    let mut v = obj;
    for part in path.split('.') {
        v = &v[part];
    }
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Split on commas outside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

fn parse_label_selector(s: &str) -> Result<Vec<LabelReq>, String> {
    let bad =
        |term: &str| format!("unable to parse requirement: invalid label selector term {term:?}");
    let mut reqs = Vec::new();
    for term in split_top_level(s).into_iter().map(str::trim) {
        if term.is_empty() {
            continue;
        }
        let req = if let Some(k) = term.strip_prefix('!') {
            LabelReq::NotExists(k.trim().to_string())
        } else if let Some(open) = term.find('(') {
            let close = term
                .rfind(')')
                .filter(|c| *c > open)
                .ok_or_else(|| bad(term))?;
            let head: Vec<&str> = term[..open].split_whitespace().collect();
            let values: Vec<String> = term[open + 1..close]
                .split(',')
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .collect();
            match head.as_slice() {
                [k, "in"] => LabelReq::In(k.to_string(), values),
                [k, "notin"] => LabelReq::NotIn(k.to_string(), values),
                _ => return Err(bad(term)),
            }
        } else if let Some((k, v)) = term.split_once("!=") {
            LabelReq::Ne(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = term.split_once("==") {
            LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = term.split_once('=') {
            LabelReq::Eq(k.trim().to_string(), v.trim().to_string())
        } else if let Some((k, v)) = term.split_once('>') {
            LabelReq::Gt(
                k.trim().to_string(),
                v.trim().parse().map_err(|_| bad(term))?,
            )
        } else if let Some((k, v)) = term.split_once('<') {
            LabelReq::Lt(
                k.trim().to_string(),
                v.trim().parse().map_err(|_| bad(term))?,
            )
        } else {
            if term.contains(char::is_whitespace) {
                return Err(bad(term));
            }
            LabelReq::Exists(term.to_string())
        };
        let key = match &req {
            LabelReq::Eq(k, _)
            | LabelReq::Ne(k, _)
            | LabelReq::Exists(k)
            | LabelReq::NotExists(k)
            | LabelReq::In(k, _)
            | LabelReq::NotIn(k, _)
            | LabelReq::Gt(k, _)
            | LabelReq::Lt(k, _) => k,
        };
        if key.is_empty() {
            return Err(bad(term));
        }
        reqs.push(req);
    }
    Ok(reqs)
}

fn parse_field_selector(s: &str) -> Result<Vec<FieldReq>, String> {
    let mut reqs = Vec::new();
    for term in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let (path, value, negate) = if let Some((k, v)) = term.split_once("!=") {
            (k, v, true)
        } else if let Some((k, v)) = term.split_once("==") {
            (k, v, false)
        } else if let Some((k, v)) = term.split_once('=') {
            (k, v, false)
        } else {
            return Err(format!(
                "invalid selector: '{s}'; can't understand '{term}'"
            ));
        };
        reqs.push(FieldReq {
            path: path.trim().to_string(),
            value: value.trim().to_string(),
            negate,
        });
    }
    Ok(reqs)
}

// ---------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------

fn parse_query(q: &str) -> HashMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if hex(i + 1).is_some() && hex(i + 2).is_some() => {
                let hi = hex(i + 1).unwrap_or(0);
                let lo = hex(i + 2).unwrap_or(0);
                out.push((hi * 16 + lo) as u8);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Now as RFC 3339 UTC with second precision (`2025-01-02T03:04:05Z`).
fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}
