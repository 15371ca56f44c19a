//! The `serve` command: the discovery loop that resolves `--resource` values and keeps
//! one [`Watch`] per resource (and namespace) running, plus the HTTP server.
//!
//! Discovery runs at start and then every `discovery_interval`, and at once when a watch
//! reports a 404. Each pass re-resolves every resource:
//! - newly served (a CRD was installed): its watches start;
//! - resolved to another version (a CRD's served versions moved): its watches restart at
//!   the new version; the new list replaces the objects (nothing missing meanwhile);
//! - no longer served (the CRD was removed): its watches stop, its objects are removed,
//!   and it waits again;
//! - not served yet: it waits (not fatal; shown on /readyz, the status page, logs and
//!   `kube_field_exporter_resource_phase`).
//!
//! The first successful discovery is also where configuration errors that need the API
//! are found, and they stop the exporter ([`ServeError`]): two resources whose kinds
//! give one metric kind name (choose one with `--resource RES=NAME`), or a resource that
//! cannot be listed and watched. Later, the same conditions only fail that resource.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc, watch as signal};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::crd::Crd;
use crate::discovery::{
    DiscoveredResource, Discovery, ResolveError, ResourceSpec, discover, resolve, resource_info,
};
use crate::flatten::{FlattenOptions, ResourceInfo};
use crate::schema::SchemaNode;
use crate::schema_source::{SchemaEvent, fetch_openapi, watch_crds};
use crate::store::{Renderer, Store, StoreEvent};
use crate::telemetry::{Phase, StreamStatus, Telemetry};
use crate::watch::{Shared, Watch};

/// The validated `serve` configuration.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The resources to watch, deduplicated, in flag order.
    pub specs: Vec<ResourceSpec>,
    /// Namespaces to watch (empty: all).
    pub namespaces: Vec<String>,
    /// Label selector for every watch.
    pub label_selector: Option<String>,
    /// Field selector for every watch.
    pub field_selector: Option<String>,
    /// Listen address.
    pub listen: SocketAddr,
    /// Flattening options.
    pub options: FlattenOptions,
    /// Time between discovery passes.
    pub discovery_interval: Duration,
    /// Page size of initial lists.
    pub page_size: u32,
}

/// Why the exporter stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// Two resources would write the same metric names.
    #[error(transparent)]
    KindConflict(Box<KindConflict>),
    /// A resource that cannot be watched.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

/// Two resources whose kinds give one metric kind name.
#[derive(Debug, thiserror::Error)]
#[error(
    "--resource {a} ({a_full}) and --resource {b} ({b_full}) both give metric kind {metric_kind:?}: \
     name one of them, e.g. --resource {b}={suggestion}"
)]
pub struct KindConflict {
    /// First spec.
    pub a: String,
    /// What it resolved to.
    pub a_full: String,
    /// Second spec.
    pub b: String,
    /// What it resolved to.
    pub b_full: String,
    /// The shared metric kind.
    pub metric_kind: String,
    /// A name for the second.
    pub suggestion: String,
}

/// A running exporter.
pub struct Running {
    /// The address the server listens on.
    pub addr: SocketAddr,
    /// Shared state (for tests and the binary).
    pub shared: Arc<Shared>,
    stop: signal::Sender<bool>,
    supervisor: Option<JoinHandle<Result<(), ServeError>>>,
    server: JoinHandle<()>,
}

impl Running {
    /// Wait until the exporter fails (it does not stop by itself otherwise).
    pub async fn wait(&mut self) -> Result<(), ServeError> {
        let Some(handle) = self.supervisor.as_mut() else {
            return Ok(());
        };
        let r = handle.await;
        self.supervisor = None;
        r.unwrap_or(Ok(()))
    }

    /// Stop: finish in-flight scrapes, stop the watches.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
        if let Some(s) = self.supervisor {
            s.abort();
            let _ = s.await;
        }
    }
}

/// Bind the listener and start discovery, the watches and the server.
pub async fn start(cfg: ServeConfig, client: Client) -> Result<Running, ServeError> {
    let listener = TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServeError::Bind {
            addr: cfg.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| ServeError::Bind {
        addr: cfg.listen,
        source,
    })?;
    let mut store = Store::new();
    let per_resource = cfg.namespaces.len().max(1);
    let streams = cfg
        .specs
        .iter()
        .map(|_| (0..per_resource).map(|_| store.add_stream()).collect())
        .collect();
    let shared = Arc::new(Shared {
        store: Mutex::new(store),
        telemetry: Mutex::new(Telemetry::new(cfg.specs.iter().map(|s| s.raw.as_str()))),
        renderer: Renderer::new(cfg.options.clone()),
        streams,
    });
    let (stop, stopped) = signal::channel(false);
    let mut server_stop = stopped.clone();
    let server = tokio::spawn(crate::server::serve(listener, shared.clone(), async move {
        let _ = server_stop.wait_for(|s| *s).await;
    }));
    info!(%addr, "serving /metrics");
    let supervisor = Supervisor {
        cfg,
        client,
        shared: shared.clone(),
        active: Vec::new(),
        gone: Arc::new(Notify::new()),
        crds: HashMap::new(),
        openapi: HashMap::new(),
    };
    let supervisor = tokio::spawn(supervisor.run(stopped));
    Ok(Running {
        addr,
        shared,
        stop,
        supervisor: Some(supervisor),
        server,
    })
}

struct Active {
    resolved: DiscoveredResource,
    info: ResourceInfo,
    schema: Option<Arc<SchemaNode>>,
    tasks: Vec<JoinHandle<()>>,
}

/// The schemas of one CRD, by version.
struct CrdSchemas {
    versions: BTreeMap<String, Option<Arc<SchemaNode>>>,
    /// The storage version, used for versions the CRD does not list.
    default: Option<String>,
}

/// Schemas of the kinds of one group-version, by kind.
type KindSchemas = BTreeMap<String, Arc<SchemaNode>>;

/// How long the first discovery waits for the first list of CRDs (their schemas).
const CRD_WAIT: Duration = Duration::from_secs(10);

impl Drop for Active {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

struct Supervisor {
    cfg: ServeConfig,
    client: Client,
    shared: Arc<Shared>,
    /// Per spec: its running watches, if resolved.
    active: Vec<Option<Active>>,
    gone: Arc<Notify>,
    /// CRD schemas by (group, kind).
    crds: HashMap<(String, String), CrdSchemas>,
    /// OpenAPI v3 schemas by (group, version), fetched once; `Err` is remembered too.
    openapi: HashMap<(String, String), Result<KindSchemas, String>>,
}

impl Supervisor {
    async fn run(mut self, mut stopped: signal::Receiver<bool>) -> Result<(), ServeError> {
        self.active = self.cfg.specs.iter().map(|_| None).collect();
        let (tx, mut schema_events) = mpsc::channel(64);
        let specs = self.cfg.specs.clone();
        let crd_task = tokio::spawn(watch_crds(self.client.clone(), tx, move |crd: &Crd| {
            specs.iter().any(|s| {
                s.could_name(
                    &crd.group,
                    &crd.plural,
                    &crd.singular,
                    &crd.kind,
                    &crd.short_names,
                )
            })
        }));
        let _crd_task = AbortOnDrop(crd_task);
        // Schemas before the first list, so objects are rendered with them once.
        let deadline = tokio::time::sleep(CRD_WAIT);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                ev = schema_events.recv() => match ev {
                    Some(ev @ (SchemaEvent::CrdsSynced | SchemaEvent::CrdsUnavailable(_))) => {
                        self.schema_event(ev);
                        break;
                    }
                    Some(ev) => {
                        self.schema_event(ev);
                    }
                    None => break,
                },
                () = &mut deadline => {
                    warn!("CRDs not listed within {CRD_WAIT:?}; starting without their schemas");
                    break;
                }
                () = until_stopped(&mut stopped) => return Ok(()),
            }
        }
        let mut first = true;
        let mut retry = Duration::from_millis(500);
        let mut last: Option<Discovery> = None;
        loop {
            let wait = match discover(&self.client).await {
                Ok(d) => {
                    for (gv, e) in &d.failed {
                        warn!(group_version = %gv, error = %e, "discovery of a group version failed; its resources are skipped");
                    }
                    self.shared.telemetry().discovery_error = None;
                    self.reconcile(&d, first).await?;
                    last = Some(d);
                    first = false;
                    retry = Duration::from_millis(500);
                    self.cfg.discovery_interval
                }
                Err(e) => {
                    warn!(error = %e, "API discovery failed; retrying");
                    let mut t = self.shared.telemetry();
                    t.discovery_error = Some(e.to_string());
                    for r in &mut t.resources {
                        if r.phase == Phase::Waiting {
                            r.reason = Some(format!("API discovery failed: {e}"));
                        }
                    }
                    retry = (retry * 2).min(self.cfg.discovery_interval);
                    retry
                }
            };
            let sleep = tokio::time::sleep(wait);
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    () = self.gone.notified() => {
                        // Let a burst of 404s settle into one discovery pass.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        break;
                    }
                    Some(ev) = schema_events.recv() => {
                        if self.schema_event(ev) && let Some(d) = &last {
                            // A CRD changed: resources whose schema moved restart.
                            self.reconcile(d, false).await?;
                        }
                    }
                    () = until_stopped(&mut stopped) => return Ok(()),
                }
            }
        }
    }

    /// Take in a schema event; true when schemas changed.
    fn schema_event(&mut self, ev: SchemaEvent) -> bool {
        match ev {
            SchemaEvent::Crd(crd) => {
                let versions = crd
                    .versions
                    .iter()
                    .map(|v| (v.name.clone(), v.schema.clone().map(Arc::new)))
                    .collect();
                let default = crd.default_version().map(|v| v.name.clone());
                debug!(crd = %crd.name, "CRD schema read");
                self.crds.insert(
                    (crd.group.clone(), crd.kind.clone()),
                    CrdSchemas { versions, default },
                );
                true
            }
            SchemaEvent::CrdDeleted { group, kind } => self.crds.remove(&(group, kind)).is_some(),
            SchemaEvent::CrdsSynced => false,
            SchemaEvent::CrdsUnavailable(reason) => {
                self.shared.telemetry().schema_error = Some(reason);
                false
            }
        }
    }

    /// The schema for a resolved resource and where it came from: its CRD if the CRD is
    /// known, else the group-version's OpenAPI v3 document, else none.
    async fn schema_for(
        &mut self,
        r: &DiscoveredResource,
    ) -> (Option<Arc<SchemaNode>>, &'static str) {
        if let Some(c) = self.crds.get(&(r.group.clone(), r.kind.clone())) {
            let schema = match c.versions.get(&r.version) {
                Some(s) => s.clone(),
                None => c
                    .default
                    .as_ref()
                    .and_then(|d| c.versions.get(d))
                    .cloned()
                    .flatten(),
            };
            return (
                schema.clone(),
                if schema.is_some() { "crd" } else { "none" },
            );
        }
        let key = (r.group.clone(), r.version.clone());
        if !self.openapi.contains_key(&key) {
            let fetched = fetch_openapi(&self.client, &r.group, &r.version)
                .await
                .map(|kinds| kinds.into_iter().map(|(k, v)| (k, Arc::new(v))).collect());
            if let Err(e) = &fetched {
                warn!(group_version = %r.api_version(), error = %e, "no OpenAPI v3 schema; enums and HELP come from the heuristics");
            }
            self.openapi.insert(key.clone(), fetched);
        }
        match self.openapi.get(&key) {
            Some(Ok(kinds)) => match kinds.get(&r.kind) {
                Some(s) => (Some(s.clone()), "openapi"),
                None => (None, "none"),
            },
            _ => (None, "none"),
        }
    }

    async fn reconcile(&mut self, d: &Discovery, first: bool) -> Result<(), ServeError> {
        for i in 0..self.cfg.specs.len() {
            let spec = self.cfg.specs[i].clone();
            match resolve(&spec, d) {
                Ok(r) => self.resolved(i, &spec, r, first).await?,
                Err(e @ ResolveError::NotWatchable { .. }) => {
                    if first {
                        return Err(e.into());
                    }
                    self.stop(i, Phase::Failed, e.to_string());
                }
                Err(e @ ResolveError::NotFound(_)) => {
                    if self.active[i].is_some() {
                        warn!(resource = %spec, "no longer served by the API server; its series are removed until it is back");
                    } else if first {
                        info!(resource = %spec, "not served by the API server yet; waiting for it");
                    }
                    self.stop(i, Phase::Waiting, e.to_string());
                }
            }
        }
        Ok(())
    }

    async fn resolved(
        &mut self,
        i: usize,
        spec: &ResourceSpec,
        r: &DiscoveredResource,
        first: bool,
    ) -> Result<(), ServeError> {
        let (schema, schema_source) = self.schema_for(r).await;
        if self.active[i]
            .as_ref()
            .is_some_and(|a| a.resolved == *r && a.schema == schema)
        {
            return Ok(());
        }
        let same = |a: &DiscoveredResource| a.group == r.group && a.plural == r.plural;
        if let Some(j) =
            (0..i).find(|&j| self.active[j].as_ref().is_some_and(|a| same(&a.resolved)))
        {
            let other = self.cfg.specs[j].raw.clone();
            if self.active[i].is_none() && first {
                warn!(resource = %spec, same_as = %other, "the same resource is named twice; watched once");
            }
            self.stop(
                i,
                Phase::Duplicate,
                format!("same resource as --resource {other}"),
            );
            return Ok(());
        }
        let info = resource_info(spec, r);
        let conflict = self.active.iter().enumerate().find(|(j, a)| {
            *j != i
                && a.as_ref()
                    .is_some_and(|a| a.info.metric_kind == info.metric_kind && !same(&a.resolved))
        });
        if let Some((j, Some(a))) = conflict {
            let err = ServeError::KindConflict(Box::new(KindConflict {
                a: self.cfg.specs[j].raw.clone(),
                a_full: a.resolved.full_name(),
                b: spec.raw.clone(),
                b_full: r.full_name(),
                metric_kind: info.metric_kind.clone(),
                suggestion: suggestion(r),
            }));
            if first {
                return Err(err);
            }
            warn!(error = %err, "resource not watched");
            self.stop(i, Phase::Failed, err.to_string());
            return Ok(());
        }
        let restarted = self.active[i].take();
        match &restarted {
            Some(old) if old.resolved != *r => {
                info!(resource = %spec, from = %old.resolved.full_name(), to = %r.full_name(), "re-resolved; restarting its watches")
            }
            Some(_) => {
                info!(resource = %spec, schema = schema_source, "schema changed; relisting to re-render")
            }
            None => {
                info!(resource = %spec, resolved = %r.full_name(), metric_kind = %info.metric_kind, schema = schema_source, "watching")
            }
        }
        let namespaces: Vec<Option<String>> = if r.namespaced && !self.cfg.namespaces.is_empty() {
            self.cfg.namespaces.iter().cloned().map(Some).collect()
        } else {
            vec![None]
        };
        let ids = self.shared.streams[i].clone();
        {
            let mut t = self.shared.telemetry();
            let st = &mut t.resources[i];
            if restarted.is_some() {
                st.restarts += 1;
            }
            st.resolved = Some(r.full_name());
            st.schema = Some(schema_source);
            st.kind = Some((r.kind.clone(), info.metric_kind.clone()));
            st.phase = Phase::Syncing;
            st.reason = Some("initial list in progress".into());
            st.streams = namespaces
                .iter()
                .map(|ns| StreamStatus {
                    namespace: ns.clone(),
                    ..StreamStatus::default()
                })
                .collect();
        }
        // Streams this resolution does not use (a cluster-scoped resource with
        // --namespace) hold nothing.
        let epochs: Vec<u64> = {
            let mut store = self.shared.store();
            for id in &ids[namespaces.len()..] {
                store.retire(*id);
                store.apply(*id, StoreEvent::Clear);
            }
            ids[..namespaces.len()]
                .iter()
                .map(|id| store.retire(*id))
                .collect()
        };
        let ar = r.api_resource();
        let mut config = watcher::Config::default().page_size(self.cfg.page_size);
        if let Some(l) = &self.cfg.label_selector {
            config = config.labels(l);
        }
        if let Some(f) = &self.cfg.field_selector {
            config = config.fields(f);
        }
        let tasks = namespaces
            .iter()
            .enumerate()
            .map(|(k, ns)| {
                let api: Api<DynamicObject> = match ns {
                    Some(ns) => Api::namespaced_with(self.client.clone(), ns, &ar),
                    None => Api::all_with(self.client.clone(), &ar),
                };
                let label = match ns {
                    Some(ns) => format!("{}@{ns}", spec.raw),
                    None => spec.raw.clone(),
                };
                let w = Watch {
                    shared: self.shared.clone(),
                    resource: i,
                    index: k,
                    stream: ids[k],
                    epoch: epochs[k],
                    info: info.clone(),
                    api,
                    config: config.clone(),
                    gone: self.gone.clone(),
                    label,
                    schema: schema.clone(),
                };
                tokio::spawn(w.run())
            })
            .collect();
        self.active[i] = Some(Active {
            resolved: r.clone(),
            info,
            schema,
            tasks,
        });
        Ok(())
    }

    /// Stop resource `i`'s watches (if any), remove its objects, set its phase.
    fn stop(&mut self, i: usize, phase: Phase, reason: String) {
        if self.active[i].take().is_some() {
            let mut store = self.shared.store();
            for id in &self.shared.streams[i] {
                store.retire(*id);
                store.apply(*id, StoreEvent::Clear);
            }
        }
        let mut t = self.shared.telemetry();
        let st = &mut t.resources[i];
        st.resolved = None;
        st.kind = None;
        st.schema = None;
        st.phase = phase;
        st.reason = Some(reason);
        st.streams.clear();
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn until_stopped(rx: &mut signal::Receiver<bool>) {
    let _ = rx.wait_for(|s| *s).await;
}

/// A metric kind name to suggest for a conflicting resource: kind and the group's first
/// label, lowercased (`Service` of `serving.knative.dev` → `service_serving`).
fn suggestion(r: &DiscoveredResource) -> String {
    let first = r.group.split('.').next().unwrap_or("core");
    let first: String = first
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!(
        "{}_{}",
        r.kind.to_ascii_lowercase(),
        if first.is_empty() {
            "core".into()
        } else {
            first
        }
    )
}

/// Remove repeated specs (same text), keeping the first.
pub fn dedup_specs(specs: Vec<ResourceSpec>) -> Vec<ResourceSpec> {
    let mut seen = HashSet::new();
    specs
        .into_iter()
        .filter(|s| seen.insert(s.raw.to_ascii_lowercase()))
        .collect()
}
