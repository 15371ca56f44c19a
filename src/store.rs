//! The live store: every object's series pre-rendered once per event, indexed by metric
//! family so that a scrape writes each family contiguously without re-walking objects
//! (the kube-state-metrics design, DESIGN.md §1).
//!
//! Two halves, split at the lock:
//! - [`Renderer::render`] (no store lock): flatten one object, apply the per-family enum
//!   cap, encode its samples as exposition lines grouped by family into one buffer. The
//!   result, a [`RenderedObject`], holds one `Bytes` slice per family, all sharing one
//!   allocation.
//! - [`Store::apply`] (under the caller's lock, pure and fast): insert, replace or remove
//!   those slices. Each family keeps its members sorted by (namespace, name) and a cached
//!   concatenation of its header and members; only families whose members changed are
//!   re-concatenated at the next scrape ([`Store::snapshot`]), and a replacement whose
//!   bytes are unchanged (say, only `resourceVersion` moved) invalidates nothing.
//!
//! Streams: each watch (one resource, or one resource in one namespace) is a stream with
//! its own objects. The `Init`/`InitApply`/`InitDone` cycle of a relist is a mark and
//! sweep: `Init` starts a new generation, every listed object is stamped with it, and
//! `InitDone` removes the stream's objects of older generations. So objects stay served
//! during a relist (nothing missing), and objects deleted while the watch was down are
//! gone after it (nothing stale), without holding a second copy of the stream.
//!
//! Failure modes: none; `apply` cannot fail. An object whose flattening fails is
//! reported by `render` and the caller keeps serving that object's previous lines.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde_json::Value;

use crate::encode;
use crate::exposition::{Admission, EnumCap};
use crate::flatten::{Dropped, FlatObject, FlattenError, FlattenOptions, ResourceInfo, flatten};
use crate::schema::SchemaNode;

/// The identity of an object within a stream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectRef {
    /// `metadata.namespace`, empty for cluster-scoped objects.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// The reference of a Kubernetes object (`metadata.namespace`, `metadata.name`).
    pub fn of(obj: &Value) -> Option<ObjectRef> {
        let meta = obj.get("metadata")?;
        let name = meta.get("name")?.as_str()?;
        let namespace = meta.get("namespace").and_then(Value::as_str).unwrap_or("");
        Some(ObjectRef {
            namespace: namespace.to_string(),
            name: name.to_string(),
        })
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.namespace.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}/{}", self.namespace, self.name)
        }
    }
}

/// One family's lines of one object.
#[derive(Debug, Clone)]
pub struct FamilyLines {
    /// The family (metric) name.
    pub name: Arc<str>,
    /// Its HELP text (used when the family is created).
    pub help: String,
    /// The encoded sample lines, each ending in `\n`.
    pub lines: Bytes,
}

/// An object rendered for the store.
#[derive(Debug, Clone)]
pub struct RenderedObject {
    /// Which object.
    pub key: ObjectRef,
    /// Its lines, one entry per family, sorted by family name.
    pub families: Vec<FamilyLines>,
    /// Number of series (sample lines).
    pub series: usize,
    /// What flattening and the enum cap dropped.
    pub dropped: Dropped,
}

/// A rendering failure: the object is not usable (no name) or not flattenable.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The object has no `metadata.name`.
    #[error("object without metadata.name")]
    NoName,
    /// Flattening refused the object.
    #[error(transparent)]
    Flatten(#[from] FlattenError),
}

/// Flattens and encodes objects for one set of options; shared by all watchers so that
/// the enum cap is per family across every stream (behind its own short lock).
#[derive(Debug)]
pub struct Renderer {
    options: FlattenOptions,
    enum_cap: Mutex<EnumCap>,
}

impl Renderer {
    /// A renderer with these flattening options.
    pub fn new(options: FlattenOptions) -> Self {
        let cap = EnumCap::new(options.enum_cap);
        Renderer {
            options,
            enum_cap: Mutex::new(cap),
        }
    }

    /// The flattening options.
    pub fn options(&self) -> &FlattenOptions {
        &self.options
    }

    /// Flatten `obj` and encode its samples. Families that newly exceed the enum cap are
    /// returned in `capped_families` (to warn once each).
    pub fn render(
        &self,
        obj: &Value,
        res: &ResourceInfo,
        schema: Option<&SchemaNode>,
    ) -> Result<(RenderedObject, Vec<String>), RenderError> {
        let key = ObjectRef::of(obj).ok_or(RenderError::NoName)?;
        let flat = flatten(obj, res, schema, &self.options)?;
        Ok(self.encode(key, flat))
    }

    /// Encode already-flattened samples (the enum cap is applied here).
    pub fn encode(&self, key: ObjectRef, flat: FlatObject) -> (RenderedObject, Vec<String>) {
        let FlatObject {
            mut samples,
            mut dropped,
        } = flat;
        let mut warnings = Vec::new();
        if samples.iter().any(|s| s.capped) {
            let mut cap = self.enum_cap.lock().unwrap_or_else(|p| p.into_inner());
            samples.retain(|s| {
                if !s.capped {
                    return true;
                }
                let value = s.labels.last().map(|(_, v)| v.as_str()).unwrap_or("");
                match cap.admit(&s.name, value) {
                    Admission::Admitted => true,
                    Admission::Dropped { first } => {
                        dropped.enum_cap += 1;
                        if first {
                            warnings.push(s.name.clone());
                        }
                        false
                    }
                }
            });
        }
        // Group by family, keeping the flattener's order within a family.
        samples.sort_by(|a, b| a.name.cmp(&b.name));
        let mut buf = Vec::with_capacity(samples.len() * 96);
        let mut spans: Vec<(Arc<str>, String, usize, usize)> = Vec::new();
        for s in &samples {
            let start = buf.len();
            encode::write_sample(&mut buf, &s.name, &s.labels, s.value);
            match spans.last_mut() {
                Some(last) if *last.0 == *s.name => last.3 = buf.len(),
                _ => spans.push((Arc::from(s.name.as_str()), s.help.clone(), start, buf.len())),
            }
        }
        let all = Bytes::from(buf);
        let families = spans
            .into_iter()
            .map(|(name, help, a, b)| FamilyLines {
                name,
                help,
                lines: all.slice(a..b),
            })
            .collect();
        (
            RenderedObject {
                key,
                families,
                series: samples.len(),
                dropped,
            },
            warnings,
        )
    }
}

/// A stream's identity in the store (from [`Store::add_stream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(u32);

/// What a watcher tells the store (kube-runtime's watcher events, rendered).
#[derive(Debug)]
pub enum StoreEvent {
    /// A relist starts.
    Init,
    /// An object of the relist.
    InitApply(RenderedObject),
    /// The relist is complete: objects not listed are removed.
    InitDone,
    /// An object was added or changed.
    Apply(RenderedObject),
    /// An object was deleted.
    Delete(ObjectRef),
    /// An object of the relist that could not be rendered: keep its previous lines
    /// through the relist's sweep.
    Touch(ObjectRef),
    /// The stream's resource is gone (its CRD was removed): remove all its objects.
    Clear,
}

#[derive(Debug)]
struct Entry {
    key: Arc<MemberKey>,
    generation: u64,
    families: Vec<FamilyLines>,
    series: usize,
    dropped: Dropped,
}

#[derive(Debug, Default)]
struct Stream {
    /// Which writer owns the stream (see [`Store::retire`]).
    epoch: u64,
    generation: u64,
    objects: HashMap<ObjectRef, Entry>,
    series: usize,
    dropped: Dropped,
}

/// A stream's size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Objects held.
    pub objects: usize,
    /// Series (sample lines) of those objects.
    pub series: usize,
    /// Series those objects did not export, by reason.
    pub dropped: Dropped,
}

/// Order of objects within a family: namespace, name, then stream.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct MemberKey {
    object: ObjectRef,
    stream: StreamId,
}

#[derive(Debug)]
struct Family {
    header: Bytes,
    members: BTreeMap<Arc<MemberKey>, Bytes>,
    /// Header plus members, concatenated; `None` after a change.
    cache: Option<Bytes>,
}

/// The store (see the module docs). Not synchronised: callers wrap it in a lock.
#[derive(Debug, Default)]
pub struct Store {
    streams: Vec<Stream>,
    families: BTreeMap<Arc<str>, Family>,
}

/// A consistent view of the store for one scrape: family chunks in name order.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Each family's header and lines.
    pub chunks: Vec<Bytes>,
    /// Total length in bytes.
    pub len: usize,
}

impl Snapshot {
    /// The snapshot as one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for c in &self.chunks {
            out.extend_from_slice(c);
        }
        out
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Store::default()
    }

    /// Register a stream.
    pub fn add_stream(&mut self) -> StreamId {
        self.streams.push(Stream::default());
        StreamId(u32::try_from(self.streams.len() - 1).expect("fewer than 2^32 streams"))
    }

    /// Objects, series and dropped series of a stream.
    pub fn stream_stats(&self, id: StreamId) -> StreamStats {
        self.streams
            .get(id.0 as usize)
            .map(|s| StreamStats {
                objects: s.objects.len(),
                series: s.series,
                dropped: s.dropped,
            })
            .unwrap_or_default()
    }

    /// Number of families.
    pub fn families(&self) -> usize {
        self.families.len()
    }

    /// Hand stream `id` to a new writer: returns the new epoch, and from now on
    /// [`Store::apply_current`] ignores events from writers holding an older epoch (a
    /// watch that was stopped but is still finishing its current step).
    pub fn retire(&mut self, id: StreamId) -> u64 {
        match self.streams.get_mut(id.0 as usize) {
            Some(s) => {
                s.epoch += 1;
                s.epoch
            }
            None => 0,
        }
    }

    /// Whether `epoch` is stream `id`'s current one.
    pub fn is_current(&self, id: StreamId, epoch: u64) -> bool {
        self.streams
            .get(id.0 as usize)
            .is_some_and(|s| s.epoch == epoch)
    }

    /// [`Store::apply`] if `epoch` is the stream's current epoch; false (and nothing
    /// applied) otherwise.
    pub fn apply_current(&mut self, id: StreamId, epoch: u64, event: StoreEvent) -> bool {
        if !self.is_current(id, epoch) {
            return false;
        }
        self.apply(id, event);
        true
    }

    /// Apply one event of stream `id`.
    pub fn apply(&mut self, id: StreamId, event: StoreEvent) {
        let Some(stream) = self.streams.get_mut(id.0 as usize) else {
            return;
        };
        match event {
            StoreEvent::Init => stream.generation += 1,
            StoreEvent::InitApply(obj) | StoreEvent::Apply(obj) => self.upsert(id, obj),
            StoreEvent::InitDone => {
                let generation = stream.generation;
                let stale: Vec<ObjectRef> = stream
                    .objects
                    .iter()
                    .filter(|(_, e)| e.generation < generation)
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in stale {
                    self.remove(id, &k);
                }
            }
            StoreEvent::Delete(key) => self.remove(id, &key),
            StoreEvent::Touch(key) => {
                let generation = stream.generation;
                if let Some(e) = stream.objects.get_mut(&key) {
                    e.generation = generation;
                }
            }
            StoreEvent::Clear => {
                let all: Vec<ObjectRef> = stream.objects.keys().cloned().collect();
                for k in all {
                    self.remove(id, &k);
                }
            }
        }
    }

    fn upsert(&mut self, id: StreamId, obj: RenderedObject) {
        let stream = &mut self.streams[id.0 as usize];
        let generation = stream.generation;
        let RenderedObject {
            key,
            families,
            series,
            dropped,
        } = obj;
        let old = stream.objects.remove(&key);
        let member = old.as_ref().map(|e| e.key.clone()).unwrap_or_else(|| {
            Arc::new(MemberKey {
                object: key.clone(),
                stream: id,
            })
        });
        stream.series = stream.series + series - old.as_ref().map_or(0, |e| e.series);
        stream.dropped.add(&dropped);
        if let Some(o) = &old {
            stream.dropped.sub(&o.dropped);
        }
        // Families the object no longer has.
        if let Some(old) = &old {
            for of in &old.families {
                if !families.iter().any(|f| f.name == of.name) {
                    remove_member(&mut self.families, &of.name, &member);
                }
            }
        }
        let mut families = families;
        for f in &mut families {
            let same = old.as_ref().and_then(|o| {
                o.families
                    .iter()
                    .find(|of| of.name == f.name && of.lines == f.lines)
            });
            if let Some(same) = same {
                // Keep the bytes the family already holds, so the new buffer's copy
                // of them is freed.
                f.lines = same.lines.clone();
                continue;
            }
            let fam = self.families.entry(f.name.clone()).or_insert_with(|| {
                let mut header = Vec::new();
                encode::write_header(&mut header, &f.name, &f.help);
                Family {
                    header: Bytes::from(header),
                    members: BTreeMap::new(),
                    cache: None,
                }
            });
            fam.members.insert(member.clone(), f.lines.clone());
            fam.cache = None;
        }
        stream.objects.insert(
            key,
            Entry {
                key: member,
                generation,
                families,
                series,
                dropped,
            },
        );
    }

    fn remove(&mut self, id: StreamId, key: &ObjectRef) {
        let stream = &mut self.streams[id.0 as usize];
        let Some(entry) = stream.objects.remove(key) else {
            return;
        };
        stream.series -= entry.series;
        stream.dropped.sub(&entry.dropped);
        for f in &entry.families {
            remove_member(&mut self.families, &f.name, &entry.key);
        }
    }

    /// A consistent snapshot for a scrape. Families whose members changed since the last
    /// snapshot are re-concatenated (under the caller's lock); the others are shared.
    pub fn snapshot(&mut self) -> Snapshot {
        let mut chunks = Vec::with_capacity(self.families.len());
        let mut len = 0;
        for fam in self.families.values_mut() {
            let body = fam.cache.get_or_insert_with(|| {
                let size = fam.header.len() + fam.members.values().map(Bytes::len).sum::<usize>();
                let mut out = Vec::with_capacity(size);
                out.extend_from_slice(&fam.header);
                for lines in fam.members.values() {
                    out.extend_from_slice(lines);
                }
                Bytes::from(out)
            });
            len += body.len();
            chunks.push(body.clone());
        }
        Snapshot { chunks, len }
    }
}

fn remove_member(families: &mut BTreeMap<Arc<str>, Family>, name: &str, member: &MemberKey) {
    if let Some(fam) = families.get_mut(name) {
        if fam.members.remove(member).is_some() {
            fam.cache = None;
        }
        if fam.members.is_empty() {
            families.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn renderer() -> Renderer {
        Renderer::new(FlattenOptions::default())
    }

    fn res() -> ResourceInfo {
        ResourceInfo::from_kind("Deployment", "apps")
    }

    fn deploy(ns: &str, name: &str, replicas: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"namespace": ns, "name": name, "resourceVersion": "1"},
               "spec": {"replicas": replicas, "paused": false}})
    }

    fn rendered(r: &Renderer, v: &Value) -> RenderedObject {
        r.render(v, &res(), None).unwrap().0
    }

    fn text(s: &mut Store) -> String {
        String::from_utf8(s.snapshot().to_vec()).unwrap()
    }

    #[test]
    fn families_are_contiguous_and_sorted_by_object() {
        let r = renderer();
        let mut s = Store::new();
        let id = s.add_stream();
        for (ns, n) in [("b", "x"), ("a", "y"), ("a", "x")] {
            s.apply(id, StoreEvent::Apply(rendered(&r, &deploy(ns, n, 2))));
        }
        let t = text(&mut s);
        assert_eq!(
            t,
            "# HELP k8s_deployment_spec_paused Deployment field spec.paused\n\
             # TYPE k8s_deployment_spec_paused gauge\n\
             k8s_deployment_spec_paused{namespace=\"a\",name=\"x\"} 0\n\
             k8s_deployment_spec_paused{namespace=\"a\",name=\"y\"} 0\n\
             k8s_deployment_spec_paused{namespace=\"b\",name=\"x\"} 0\n\
             # HELP k8s_deployment_spec_replicas Deployment field spec.replicas\n\
             # TYPE k8s_deployment_spec_replicas gauge\n\
             k8s_deployment_spec_replicas{namespace=\"a\",name=\"x\"} 2\n\
             k8s_deployment_spec_replicas{namespace=\"a\",name=\"y\"} 2\n\
             k8s_deployment_spec_replicas{namespace=\"b\",name=\"x\"} 2\n"
        );
        assert_eq!(
            (s.stream_stats(id).objects, s.stream_stats(id).series),
            (3, 6)
        );
    }

    #[test]
    fn update_replaces_and_delete_removes_exactly_one_object() {
        let r = renderer();
        let mut s = Store::new();
        let id = s.add_stream();
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("a", "x", 1))));
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("a", "y", 1))));
        let before = text(&mut s);
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("a", "x", 5))));
        let t = text(&mut s);
        assert!(
            t.contains("replicas{namespace=\"a\",name=\"x\"} 5\n"),
            "{t}"
        );
        assert!(!t.contains("name=\"x\"} 1\n"), "{t}");
        assert_ne!(before, t);
        s.apply(
            id,
            StoreEvent::Delete(ObjectRef {
                namespace: "a".into(),
                name: "x".into(),
            }),
        );
        let t = text(&mut s);
        assert!(!t.contains("name=\"x\""), "{t}");
        assert!(t.contains("name=\"y\""), "{t}");
        assert_eq!(
            (s.stream_stats(id).objects, s.stream_stats(id).series),
            (1, 2)
        );
        s.apply(
            id,
            StoreEvent::Delete(ObjectRef {
                namespace: "a".into(),
                name: "y".into(),
            }),
        );
        assert_eq!(
            text(&mut s),
            "",
            "empty families disappear with their HELP/TYPE"
        );
        assert_eq!(s.families(), 0);
    }

    #[test]
    fn a_field_that_disappears_takes_its_family_line_with_it() {
        let r = renderer();
        let mut s = Store::new();
        let id = s.add_stream();
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("a", "x", 1))));
        let mut v = deploy("a", "x", 1);
        v["spec"].as_object_mut().unwrap().remove("paused");
        s.apply(id, StoreEvent::Apply(rendered(&r, &v)));
        let t = text(&mut s);
        assert!(!t.contains("paused"), "{t}");
        assert_eq!(
            (s.stream_stats(id).objects, s.stream_stats(id).series),
            (1, 1)
        );
    }

    #[test]
    fn relist_keeps_objects_during_and_sweeps_unlisted_after() {
        let r = renderer();
        let mut s = Store::new();
        let id = s.add_stream();
        s.apply(id, StoreEvent::Init);
        for n in ["a", "b", "c"] {
            s.apply(id, StoreEvent::InitApply(rendered(&r, &deploy("ns", n, 1))));
        }
        s.apply(id, StoreEvent::InitDone);
        assert_eq!(s.stream_stats(id).objects, 3);
        // Relist after a gap in which b was deleted and c changed.
        s.apply(id, StoreEvent::Init);
        s.apply(
            id,
            StoreEvent::InitApply(rendered(&r, &deploy("ns", "a", 1))),
        );
        let during = text(&mut s);
        for n in ["a", "b", "c"] {
            assert!(
                during.contains(&format!("name=\"{n}\"")),
                "nothing missing during a relist"
            );
        }
        s.apply(
            id,
            StoreEvent::InitApply(rendered(&r, &deploy("ns", "c", 9))),
        );
        s.apply(id, StoreEvent::InitDone);
        let after = text(&mut s);
        assert!(!after.contains("name=\"b\""), "{after}");
        assert!(after.contains("name=\"c\"} 9\n"), "{after}");
        assert_eq!(
            (s.stream_stats(id).objects, s.stream_stats(id).series),
            (2, 4)
        );
    }

    #[test]
    fn an_interrupted_relist_sweeps_at_the_next_complete_one() {
        let r = renderer();
        let mut s = Store::new();
        let id = s.add_stream();
        s.apply(id, StoreEvent::Init);
        s.apply(
            id,
            StoreEvent::InitApply(rendered(&r, &deploy("ns", "a", 1))),
        );
        s.apply(
            id,
            StoreEvent::InitApply(rendered(&r, &deploy("ns", "b", 1))),
        );
        s.apply(id, StoreEvent::InitDone);
        s.apply(id, StoreEvent::Init);
        s.apply(
            id,
            StoreEvent::InitApply(rendered(&r, &deploy("ns", "a", 1))),
        );
        // the list failed here; the watcher starts over
        s.apply(id, StoreEvent::Init);
        s.apply(
            id,
            StoreEvent::InitApply(rendered(&r, &deploy("ns", "b", 1))),
        );
        s.apply(id, StoreEvent::InitDone);
        let t = text(&mut s);
        assert!(!t.contains("name=\"a\""), "{t}");
        assert!(t.contains("name=\"b\""), "{t}");
    }

    #[test]
    fn a_touched_object_survives_the_sweep() {
        let r = renderer();
        let mut s = Store::new();
        let id = s.add_stream();
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("ns", "a", 1))));
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("ns", "b", 1))));
        s.apply(id, StoreEvent::Init);
        s.apply(
            id,
            StoreEvent::Touch(ObjectRef {
                namespace: "ns".into(),
                name: "a".into(),
            }),
        );
        s.apply(id, StoreEvent::InitDone);
        let t = text(&mut s);
        assert!(t.contains("name=\"a\""), "{t}");
        assert!(!t.contains("name=\"b\""), "{t}");
    }

    #[test]
    fn a_retired_writer_cannot_write() {
        let r = renderer();
        let mut s = Store::new();
        let id = s.add_stream();
        let old = s.retire(id);
        assert!(s.apply_current(
            id,
            old,
            StoreEvent::Apply(rendered(&r, &deploy("a", "x", 1)))
        ));
        let new = s.retire(id);
        s.apply(id, StoreEvent::Clear);
        assert!(!s.apply_current(
            id,
            old,
            StoreEvent::Apply(rendered(&r, &deploy("a", "y", 1)))
        ));
        assert_eq!(text(&mut s), "", "a stopped watch's late event is ignored");
        assert!(s.apply_current(
            id,
            new,
            StoreEvent::Apply(rendered(&r, &deploy("a", "z", 1)))
        ));
        assert!(text(&mut s).contains("name=\"z\""));
    }

    #[test]
    fn streams_are_independent() {
        let r = renderer();
        let mut s = Store::new();
        let one = s.add_stream();
        let two = s.add_stream();
        s.apply(one, StoreEvent::Apply(rendered(&r, &deploy("a", "x", 1))));
        s.apply(two, StoreEvent::Apply(rendered(&r, &deploy("b", "x", 1))));
        s.apply(one, StoreEvent::Init);
        s.apply(one, StoreEvent::InitDone);
        let t = text(&mut s);
        assert!(!t.contains("namespace=\"a\""), "{t}");
        assert!(t.contains("namespace=\"b\""), "{t}");
        s.apply(two, StoreEvent::Clear);
        assert_eq!(text(&mut s), "");
        assert_eq!(
            (s.stream_stats(two).objects, s.stream_stats(two).series),
            (0, 0)
        );
    }

    #[test]
    fn unchanged_lines_keep_the_cached_family() {
        let r = renderer();
        let mut s = Store::new();
        let id = s.add_stream();
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("a", "x", 1))));
        let first = s.snapshot();
        let mut v = deploy("a", "x", 1);
        v["metadata"]["resourceVersion"] = json!("2");
        s.apply(id, StoreEvent::Apply(rendered(&r, &v)));
        let second = s.snapshot();
        // Same allocation: nothing was re-concatenated.
        assert_eq!(first.chunks.len(), second.chunks.len());
        for (a, b) in first.chunks.iter().zip(&second.chunks) {
            assert_eq!(a.as_ptr(), b.as_ptr());
        }
    }

    #[test]
    fn enum_cap_is_shared_across_objects() {
        let r = Renderer::new(FlattenOptions {
            enum_cap: 2,
            ..FlattenOptions::default()
        });
        let res = ResourceInfo::from_kind("Pod", "");
        let mut warned = Vec::new();
        let mut kept = 0;
        for (i, phase) in ["Running", "Pending", "Failed", "Failed"]
            .iter()
            .enumerate()
        {
            let v = json!({"kind": "Pod", "metadata": {"name": format!("p{i}")},
                           "status": {"phase": phase}});
            let (o, w) = r.render(&v, &res, None).unwrap();
            warned.extend(w);
            kept += o.series;
        }
        assert_eq!(kept, 2);
        assert_eq!(warned, vec!["k8s_pod_status_phase".to_string()]);
    }

    #[test]
    fn objects_without_a_name_are_refused() {
        let r = renderer();
        let err = r.render(&json!({"kind": "Deployment", "metadata": {}}), &res(), None);
        assert!(matches!(err, Err(RenderError::NoName)));
    }
}
