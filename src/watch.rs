//! One watch: kube-runtime's `watcher` on `Api<DynamicObject>` for one resource (in one
//! namespace or all), its events rendered and applied to the store.
//!
//! Semantics: `Init`/`InitApply`/`InitDone` map one to one onto the store's relist
//! cycle (see [`crate::store`]); `Apply` and `Delete` replace or remove one object.
//! Rendering happens before the store lock is taken. Errors never end the watch: the
//! stream is wrapped in kube-runtime's default backoff and retried forever; each error
//! is counted by reason, kept as the resource's last error, and logged. A 404 (the
//! resource stopped being served, e.g. its CRD was removed or its version is no longer
//! served) also wakes the discovery loop so the resource is re-resolved at once. An
//! object that cannot be flattened is logged and counted; its previous lines are kept.

use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::Notify;
use tracing::{debug, info, warn};

use crate::flatten::ResourceInfo;
use crate::store::{ObjectRef, Renderer, Store, StoreEvent, StreamId};
use crate::telemetry::{Phase, ResourceStatus, StreamStatus, Telemetry};

/// State shared by the watchers and the server, each part behind its own short lock
/// (never both at once, never across an await).
#[derive(Debug)]
pub struct Shared {
    /// The rendered objects.
    pub store: Mutex<Store>,
    /// Per-resource state and counters.
    pub telemetry: Mutex<Telemetry>,
    /// Flattening and encoding.
    pub renderer: Renderer,
    /// The store streams of each resource (index as in `Telemetry::resources`).
    pub streams: Vec<Vec<StreamId>>,
}

impl Shared {
    /// Lock the store (a poisoned lock is used as is: the store's invariants hold
    /// between calls).
    pub fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lock the telemetry.
    pub fn telemetry(&self) -> std::sync::MutexGuard<'_, Telemetry> {
        self.telemetry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Copy the store's per-stream sizes into the telemetry.
    pub fn copy_stats(&self, t: &mut Telemetry, stats: &[Vec<crate::store::StreamStats>]) {
        for (r, s) in t.resources.iter_mut().zip(stats) {
            for (status, st) in r.streams.iter_mut().zip(s) {
                status.objects = st.objects;
                status.series = st.series;
                status.dropped = st.dropped;
            }
        }
    }

    /// Every stream's size, read under the store lock.
    pub fn stream_stats(&self, store: &Store) -> Vec<Vec<crate::store::StreamStats>> {
        self.streams
            .iter()
            .map(|ids| ids.iter().map(|id| store.stream_stats(*id)).collect())
            .collect()
    }
}

/// Objects listed between progress log lines during an initial list.
const PROGRESS_EVERY: u64 = 10_000;

/// One watch (see the module docs).
#[derive(Clone)]
pub struct Watch {
    /// Shared state.
    pub shared: Arc<Shared>,
    /// Index of the resource in the telemetry.
    pub resource: usize,
    /// Index of the stream within the resource.
    pub index: usize,
    /// The store stream.
    pub stream: StreamId,
    /// The stream epoch this watch owns (from `Store::retire`); once the stream is
    /// retired again, this watch's late events are ignored.
    pub epoch: u64,
    /// The flattener's view of the resource.
    pub info: ResourceInfo,
    /// The API to watch.
    pub api: Api<DynamicObject>,
    /// Watcher configuration (selectors, page size).
    pub config: watcher::Config,
    /// Woken on a 404.
    pub gone: Arc<Notify>,
    /// Label for logs: the spec, and the namespace if any.
    pub label: String,
    /// The schema of the resource's objects at the watched version, if known.
    pub schema: Option<Arc<crate::schema::SchemaNode>>,
}

impl Watch {
    /// Run until aborted.
    pub async fn run(self) {
        let mut events = watcher::watcher(self.api.clone(), self.config.clone())
            .default_backoff()
            .boxed();
        let mut inits = 0u64;
        let mut listed = 0u64;
        while let Some(item) = events.next().await {
            match item {
                Ok(Event::Init) => {
                    inits += 1;
                    listed = 0;
                    self.store(StoreEvent::Init);
                    self.status(|r, s| {
                        r.event("init");
                        if inits > 1 {
                            r.restarts += 1;
                        }
                        s.listed = 0;
                    });
                    debug!(resource = %self.label, "initial list started");
                }
                Ok(Event::InitApply(obj)) => {
                    listed += 1;
                    self.upsert(obj, true);
                    self.status(|_, s| s.listed = listed);
                    if listed.is_multiple_of(PROGRESS_EVERY) {
                        info!(resource = %self.label, listed, "initial list in progress");
                    }
                }
                Ok(Event::InitDone) => {
                    self.store(StoreEvent::InitDone);
                    let mut first = false;
                    self.status(|r, s| {
                        r.event("init_done");
                        first = !s.synced;
                        s.synced = true;
                    });
                    self.status(|r, _| r.update_phase());
                    if first {
                        info!(resource = %self.label, objects = listed, "initial list complete");
                    } else {
                        debug!(resource = %self.label, objects = listed, "relist complete");
                    }
                }
                Ok(Event::Apply(obj)) => self.upsert(obj, false),
                Ok(Event::Delete(obj)) => {
                    if let Some(name) = obj.metadata.name {
                        let key = ObjectRef {
                            namespace: obj.metadata.namespace.unwrap_or_default(),
                            name,
                        };
                        self.shared
                            .store()
                            .apply(self.stream, StoreEvent::Delete(key));
                    }
                    self.status(|r, _| r.event("delete"));
                }
                Err(e) => self.error(&e),
            }
        }
    }

    /// Apply an event to this watch's stream, unless the watch was stopped.
    fn store(&self, event: StoreEvent) -> bool {
        self.shared
            .store()
            .apply_current(self.stream, self.epoch, event)
    }

    /// Update this watch's resource and stream status, unless the watch was stopped.
    fn status(&self, f: impl FnOnce(&mut ResourceStatus, &mut StreamStatus)) {
        if !self.shared.store().is_current(self.stream, self.epoch) {
            return;
        }
        let mut t = self.shared.telemetry();
        let Some(r) = t.resources.get_mut(self.resource) else {
            return;
        };
        let Some(mut s) = r.streams.get(self.index).cloned() else {
            return;
        };
        f(r, &mut s);
        if let Some(slot) = r.streams.get_mut(self.index) {
            *slot = s;
        }
    }

    fn upsert(&self, obj: DynamicObject, listing: bool) {
        let kind = if listing { "init_apply" } else { "apply" };
        let value = into_value(obj);
        let key = value.as_ref().and_then(ObjectRef::of);
        let rendered = value
            .as_ref()
            .ok_or_else(|| "not serialisable".to_string())
            .and_then(|v| {
                self.shared
                    .renderer
                    .render(v, &self.info, self.schema.as_deref())
                    .map_err(|e| e.to_string())
            });
        match rendered {
            Ok((r, capped)) => {
                let ev = if listing {
                    StoreEvent::InitApply(r)
                } else {
                    StoreEvent::Apply(r)
                };
                self.store(ev);
                self.status(|r, _| r.event(kind));
                for family in capped {
                    warn!(
                        resource = %self.label,
                        family,
                        cap = self.shared.renderer.options().enum_cap,
                        "more distinct enum values than the cap; further values are dropped \
                         (raise --enum-cap, or --exclude the field)"
                    );
                }
            }
            Err(e) => {
                let name = key
                    .as_ref()
                    .map_or_else(|| "<unnamed>".into(), |k| k.to_string());
                warn!(resource = %self.label, object = %name, error = %e, "object not exported");
                if let (true, Some(k)) = (listing, key) {
                    // Keep what was served for it through the relist's sweep.
                    self.store(StoreEvent::Touch(k));
                }
                self.status(|r, _| {
                    r.event(kind);
                    r.object_errors += 1;
                });
            }
        }
    }

    fn error(&self, e: &watcher::Error) {
        let (reason, code) = classify(e);
        let message = e.to_string();
        self.status(|r, _| {
            r.error(reason, message.clone());
            if r.phase == Phase::Syncing {
                r.reason = Some(format!("{reason}: {message}"));
            }
        });
        match code {
            Some(403) | Some(401) => {
                warn!(resource = %self.label, reason, error = %message, "watch not permitted (check RBAC); retrying with backoff")
            }
            Some(404) => {
                warn!(resource = %self.label, error = %message, "resource not found; re-resolving");
                self.gone.notify_one();
            }
            Some(410) => debug!(resource = %self.label, "resource version expired; relisting"),
            _ => {
                warn!(resource = %self.label, reason, error = %message, "watch error; retrying with backoff")
            }
        }
    }
}

/// The object as JSON, as `serde_json::to_value` would give it, but moving `data`
/// instead of copying it (a deep copy cost about as much as parsing the object).
/// Fields of `data` win over `metadata`, `apiVersion` and `kind`, as with serialization
/// (where the flattened `data` comes last). `None` if `data` is not an object.
fn into_value(obj: DynamicObject) -> Option<Value> {
    let DynamicObject {
        types,
        metadata,
        data,
    } = obj;
    let mut map = match data {
        Value::Object(map) => map,
        Value::Null => serde_json::Map::new(),
        _ => return None,
    };
    if let Some(t) = types {
        map.entry("apiVersion")
            .or_insert(Value::String(t.api_version));
        map.entry("kind").or_insert(Value::String(t.kind));
    }
    if !map.contains_key("metadata") {
        map.insert("metadata".to_string(), serde_json::to_value(metadata).ok()?);
    }
    Some(Value::Object(map))
}

/// A watch error's reason label and HTTP status code, if any.
pub fn classify(e: &watcher::Error) -> (&'static str, Option<u16>) {
    let code = match e {
        watcher::Error::InitialListFailed(k)
        | watcher::Error::WatchStartFailed(k)
        | watcher::Error::WatchFailed(k) => match k {
            kube::Error::Api(s) => Some(s.code),
            _ => None,
        },
        watcher::Error::WatchError(s) => Some(s.code),
        watcher::Error::NoResourceVersion => return ("no_resource_version", None),
    };
    let reason = match code {
        Some(401) => "unauthorized",
        Some(403) => "forbidden",
        Some(404) => "not_found",
        Some(410) => "expired",
        Some(429) => "throttled",
        Some(c) if c >= 500 => "server_error",
        Some(_) => "api_error",
        None => "transport",
    };
    (reason, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn into_value_is_the_serialized_object() {
        let json = serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"},
                         "creationTimestamp": "2026-01-01T00:00:00Z", "generation": 3},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c"}]}}},
            "status": {"availableReplicas": 2, "conditions": [{"type": "Available"}]},
        });
        let obj: DynamicObject = serde_json::from_value(json.clone()).expect("object");
        let expected = serde_json::to_value(&obj).expect("serializes");
        assert_eq!(into_value(obj), Some(expected.clone()));
        assert_eq!(expected, json);
        // Without type meta (as some lists return items).
        let bare = serde_json::json!({"metadata": {"name": "x"}, "data": {"k": "v"}});
        let obj: DynamicObject = serde_json::from_value(bare.clone()).expect("object");
        assert_eq!(into_value(obj), Some(bare));
    }
}
