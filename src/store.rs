//! The live store: every object's series pre-rendered once per event, kept per metric
//! family so that a scrape writes each family contiguously without re-walking objects
//! (the kube-state-metrics design, DESIGN.md §1).
//!
//! Two halves, split at the lock:
//! - [`Renderer::render`] (no store lock): flatten one object, apply the per-family enum
//!   cap, encode its samples as exposition lines grouped by family.
//! - [`Store::apply`] (under the caller's lock, pure and fast): write those lines into the
//!   families. Each family keeps all its members' lines in ONE buffer: an update whose
//!   lines keep their length is overwritten in place (the common case: a value changed
//!   within its width, or nothing changed); a resized, new or removed object appends or
//!   leaves a dead range. [`Store::snapshot`] compacts families that have dead ranges (a
//!   streaming move in buffer order) and copies each family out with its header: a scrape
//!   costs about one to two memcpys of the exposition, whatever changed, and memory is
//!   the exposition text plus a few dozen bytes per object and family.
//!
//! Within a family, objects appear in the order their lines were last added or resized
//! (the text format does not order series; `flatten` orders by input instead).
//!
//! Streams: each watch (one resource, or one resource in one namespace) is a stream with
//! its own objects. The `Init`/`InitApply`/`InitDone` cycle of a relist is a mark and
//! sweep: `Init` starts a new generation, every listed object is stamped with it, and
//! `InitDone` removes the stream's objects of older generations. So objects stay served
//! during a relist (nothing missing), and objects deleted while the watch was down are
//! gone after it (nothing stale), without holding a second copy of the stream.
//!
//! Failure modes: none; `apply` cannot fail. An object whose flattening fails is
//! reported by `render` and the caller keeps serving that object's previous lines
//! (`StoreEvent::Touch` keeps it through a relist).

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use foldhash::fast::RandomState;
use serde_json::Value;

use crate::encode;
use crate::flatten::Dropped;
use crate::gzip::GzPiece;
pub use crate::render::{FamilyLines, RenderError, RenderedObject, Renderer};

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

/// An object held by the store (its lines live in the families' buffers).
#[derive(Debug)]
struct Object {
    generation: u64,
    /// The families it has lines in.
    families: Vec<Arc<str>>,
    series: usize,
    dropped: Dropped,
}

#[derive(Debug, Default)]
struct Stream {
    /// Which writer owns the stream (see [`Store::retire`]).
    epoch: u64,
    generation: u64,
    /// Object → member id (index into `Store::objects`).
    objects: HashMap<ObjectRef, u32, RandomState>,
    series: usize,
    dropped: Dropped,
}

/// Where one member's lines are in its family's buffer.
#[derive(Debug, Clone, Copy)]
struct Slot {
    member: u32,
    start: u32,
    len: u32,
    live: bool,
}

/// A family's member id → slot index. Member ids are shared by every stream, so a
/// family may hold most of them (a dense vector is smallest and fastest, which matters
/// when compaction rewrites every entry) or a small fraction (a dense vector would cost
/// 4 bytes per object of the whole store: 22 B/series at 100 000 mixed objects; a map is
/// smaller). [`MemberIndex::fit`] picks the form after each compaction.
#[derive(Debug)]
enum MemberIndex {
    /// Indexed by member id; `NO_SLOT` when absent.
    Dense(Vec<u32>),
    Sparse(HashMap<u32, u32, RandomState>),
}

const NO_SLOT: u32 = u32::MAX;

impl MemberIndex {
    fn get(&self, member: u32) -> Option<u32> {
        match self {
            MemberIndex::Dense(v) => v.get(member as usize).copied().filter(|&s| s != NO_SLOT),
            MemberIndex::Sparse(m) => m.get(&member).copied(),
        }
    }

    fn set(&mut self, member: u32, slot: u32) {
        match self {
            MemberIndex::Dense(v) => {
                if v.len() <= member as usize {
                    v.resize(member as usize + 1, NO_SLOT);
                }
                v[member as usize] = slot;
            }
            MemberIndex::Sparse(m) => {
                m.insert(member, slot);
            }
        }
    }

    fn remove(&mut self, member: u32) {
        match self {
            MemberIndex::Dense(v) => {
                if let Some(s) = v.get_mut(member as usize) {
                    *s = NO_SLOT;
                }
            }
            MemberIndex::Sparse(m) => {
                m.remove(&member);
            }
        }
    }

    /// Switch form for `live` members: dense when they are at least a quarter of the
    /// id range (4 B per id beats about 10 B per entry of a map), sparse below an
    /// eighth (the gap avoids switching back and forth).
    fn fit(&mut self, live: usize) {
        let entries: Vec<(u32, u32)> = match self {
            MemberIndex::Sparse(m) => {
                let range = m.keys().max().map_or(0, |&k| k as usize + 1);
                if live < 1024 || live * 4 < range {
                    return;
                }
                m.iter().map(|(&k, &v)| (k, v)).collect()
            }
            MemberIndex::Dense(v) => {
                if live * 8 >= v.len() {
                    return;
                }
                v.iter()
                    .enumerate()
                    .filter(|&(_, &s)| s != NO_SLOT)
                    .map(|(k, &s)| (k as u32, s))
                    .collect()
            }
        };
        *self = match self {
            MemberIndex::Sparse(_) => MemberIndex::Dense(Vec::new()),
            MemberIndex::Dense(_) => MemberIndex::Sparse(HashMap::default()),
        };
        for (k, v) in entries {
            self.set(k, v);
        }
    }
}

/// One metric family: its header and every member's lines in one buffer, in the order
/// they were last (re)sized. A line set of unchanged length is overwritten in place; a
/// resized or removed one leaves a dead range that the next snapshot compacts away.
///
/// The buffer is handed to scrapes without copying: a snapshot freezes it into `frozen`
/// (shared with the scrape); the next write takes it back, in place when the scrape is
/// done with it (the usual case), by copying it when a scrape still holds it.
#[derive(Debug)]
struct Family {
    /// The HELP text the header was written with.
    help: String,
    header: Bytes,
    /// The lines, unless `frozen` holds them.
    buf: BytesMut,
    /// The lines as handed to the last snapshot, until the next write.
    frozen: Option<Bytes>,
    /// Bumped whenever the family's text changes.
    version: u64,
    /// The family's text (header and lines) deflated, for gzip scrapes, while `version`
    /// has not moved since it was made.
    gz: Option<GzPiece>,
    /// In buffer order.
    slots: Vec<Slot>,
    /// Member id → index into `slots`.
    index: MemberIndex,
    /// Live members.
    live: usize,
    /// Bytes of dead ranges in `buf`.
    dead: usize,
}

impl Family {
    fn new(name: &str, help: &str) -> Self {
        let mut header = Vec::new();
        encode::write_header(&mut header, name, help);
        Family {
            help: help.to_string(),
            header: Bytes::from(header),
            buf: BytesMut::new(),
            frozen: None,
            version: 0,
            gz: None,
            slots: Vec::new(),
            index: MemberIndex::Sparse(HashMap::default()),
            live: 0,
            dead: 0,
        }
    }

    fn slot_of(&self, member: u32) -> Option<usize> {
        self.index.get(member).map(|s| s as usize)
    }

    /// The lines (frozen or not).
    fn content(&self) -> &[u8] {
        self.frozen.as_deref().unwrap_or(&self.buf)
    }

    /// The lines, writable: taken back from the last snapshot if it holds them.
    fn buf_mut(&mut self) -> &mut BytesMut {
        if let Some(b) = self.frozen.take() {
            self.buf = b
                .try_into_mut()
                .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
        }
        &mut self.buf
    }

    /// The lines for a snapshot, shared (no copy).
    fn freeze(&mut self) -> Bytes {
        if let Some(b) = &self.frozen {
            return b.clone();
        }
        let b = std::mem::take(&mut self.buf).freeze();
        self.frozen = Some(b.clone());
        b
    }

    /// Set `member`'s lines.
    fn set(&mut self, member: u32, lines: &[u8]) {
        if let Some(si) = self.slot_of(member) {
            let s = self.slots[si];
            let range = s.start as usize..(s.start + s.len) as usize;
            if s.len as usize == lines.len() {
                if &self.content()[range.clone()] != lines {
                    self.buf_mut()[range].copy_from_slice(lines);
                    self.changed();
                }
                return;
            }
            self.slots[si].live = false;
            self.dead += s.len as usize;
            self.live -= 1;
        }
        let buf = self.buf_mut();
        let start = buf.len();
        buf.extend_from_slice(lines);
        self.slots.push(Slot {
            member,
            start: u32::try_from(start).expect("a family under 4 GiB"),
            len: u32::try_from(lines.len()).expect("an object's lines under 4 GiB"),
            live: true,
        });
        self.index.set(member, (self.slots.len() - 1) as u32);
        self.live += 1;
        if self.live.is_power_of_two() {
            // Amortized: the index may have become dense enough to switch form.
            self.index.fit(self.live);
        }
        self.changed();
    }

    fn changed(&mut self) {
        self.version += 1;
        self.gz = None;
    }

    fn remove(&mut self, member: u32) {
        if let Some(si) = self.slot_of(member) {
            self.slots[si].live = false;
            self.dead += self.slots[si].len as usize;
            self.index.remove(member);
            self.live -= 1;
            self.changed();
        }
    }

    /// Move the live ranges down over the dead ones (in buffer order: a streaming copy).
    fn compact(&mut self) {
        if self.dead == 0 && self.slots.len() == self.live {
            return;
        }
        self.buf_mut();
        let mut write = 0usize;
        let mut kept = 0usize;
        for read in 0..self.slots.len() {
            let s = self.slots[read];
            if !s.live {
                continue;
            }
            let (start, len) = (s.start as usize, s.len as usize);
            if start != write {
                self.buf.copy_within(start..start + len, write);
            }
            self.slots[kept] = Slot {
                start: write as u32,
                ..s
            };
            self.index.set(s.member, kept as u32);
            write += len;
            kept += 1;
        }
        self.index.fit(self.live);
        self.buf.truncate(write);
        self.slots.truncate(kept);
        self.dead = 0;
        if self.buf.capacity() > 2 * write + 4096 {
            // Give the memory back: a right-sized copy.
            self.buf = BytesMut::from(&self.buf[..]);
            self.slots.shrink_to(kept + kept / 4);
        }
    }
}

/// The store (see the module docs). Not synchronised: callers wrap it in a lock.
#[derive(Debug, Default)]
pub struct Store {
    streams: Vec<Stream>,
    families: BTreeMap<Arc<str>, Family>,
    /// Objects by member id; `None` slots are free (listed in `free`).
    objects: Vec<Option<Object>>,
    free: Vec<u32>,
}

/// A consistent view of the store for one scrape: the families in name order.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// The families, sorted by name.
    pub families: Vec<FamilySnapshot>,
    /// Total length in bytes.
    pub len: usize,
}

impl Snapshot {
    /// The exposition as chunks to write in order (each family's header, then lines):
    /// shared handles, no copy.
    pub fn chunks(&self) -> Vec<Bytes> {
        self.families
            .iter()
            .flat_map(|f| [f.header.clone(), f.lines.clone()])
            .collect()
    }

    /// The snapshot as one buffer.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for f in &self.families {
            out.extend_from_slice(&f.header);
            out.extend_from_slice(&f.lines);
        }
        out
    }
}

/// One family in a [`Snapshot`].
#[derive(Debug, Clone)]
pub struct FamilySnapshot {
    /// The family name.
    pub name: Arc<str>,
    /// Its version at the snapshot (for [`Store::cache_gzip`]).
    pub version: u64,
    /// `# HELP` and `# TYPE` lines.
    pub header: Bytes,
    /// The sample lines.
    pub lines: Bytes,
    /// Its deflated text, if made since it last changed.
    pub gz: Option<GzPiece>,
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
                let objects = &self.objects;
                let stale: Vec<ObjectRef> = stream
                    .objects
                    .iter()
                    .filter(|(_, m)| {
                        objects[**m as usize]
                            .as_ref()
                            .is_some_and(|o| o.generation < generation)
                    })
                    .map(|(k, _)| k.clone())
                    .collect();
                for k in stale {
                    self.remove(id, &k);
                }
            }
            StoreEvent::Delete(key) => self.remove(id, &key),
            StoreEvent::Touch(key) => {
                let generation = stream.generation;
                if let Some(&m) = stream.objects.get(&key)
                    && let Some(o) = self.objects[m as usize].as_mut()
                {
                    o.generation = generation;
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
        let member = match stream.objects.get(&key) {
            Some(&m) => m,
            None => {
                let m = match self.free.pop() {
                    Some(m) => m,
                    None => {
                        self.objects.push(None);
                        u32::try_from(self.objects.len() - 1).expect("fewer than 2^32 objects")
                    }
                };
                stream.objects.insert(key, m);
                m
            }
        };
        let old = self.objects[member as usize].take();
        stream.series += series;
        stream.dropped.add(&dropped);
        if let Some(o) = &old {
            stream.series -= o.series;
            stream.dropped.sub(&o.dropped);
        }
        let mut names: Vec<Arc<str>> = Vec::with_capacity(families.len());
        for f in &families {
            // One map lookup; objects keep the map's key (one allocation per family,
            // shared by all its members).
            let (name, fam) = match self.families.entry(f.name.clone()) {
                Entry::Occupied(e) => {
                    let name = e.key().clone();
                    (name, e.into_mut())
                }
                Entry::Vacant(e) => (f.name.clone(), e.insert(Family::new(&f.name, &f.help))),
            };
            if fam.help != f.help {
                // A schema change brought a new description: the latest HELP wins.
                let mut header = Vec::new();
                encode::write_header(&mut header, &f.name, &f.help);
                fam.header = Bytes::from(header);
                fam.help.clone_from(&f.help);
                fam.changed();
            }
            fam.set(member, &f.lines);
            names.push(name);
        }
        if let Some(o) = &old {
            // Families the object no longer has (names are the map's keys on both
            // sides, so `Arc`'s equality mostly decides by pointer or length).
            for name in &o.families {
                if !names.contains(name) {
                    remove_member(&mut self.families, name, member);
                }
            }
        }
        self.objects[member as usize] = Some(Object {
            generation,
            families: names,
            series,
            dropped,
        });
    }

    fn remove(&mut self, id: StreamId, key: &ObjectRef) {
        let stream = &mut self.streams[id.0 as usize];
        let Some(member) = stream.objects.remove(key) else {
            return;
        };
        let Some(o) = self.objects[member as usize].take() else {
            return;
        };
        stream.series -= o.series;
        stream.dropped.sub(&o.dropped);
        for name in &o.families {
            remove_member(&mut self.families, name, member);
        }
        self.free.push(member);
    }

    /// A consistent snapshot for a scrape, under the caller's lock: each family is
    /// compacted if objects were resized or removed since the last snapshot, then its
    /// header and lines are shared with the snapshot (no copy). Writes after this take the
    /// buffers back in place once the scrape has dropped them.
    pub fn snapshot(&mut self) -> Snapshot {
        let mut families = Vec::with_capacity(self.families.len());
        let mut len = 0;
        for (name, fam) in self.families.iter_mut() {
            fam.compact();
            let lines = fam.freeze();
            len += fam.header.len() + lines.len();
            families.push(FamilySnapshot {
                name: name.clone(),
                version: fam.version,
                header: fam.header.clone(),
                lines,
                gz: fam.gz.clone(),
            });
        }
        Snapshot { families, len }
    }

    /// Keep `piece` (the deflated text of family `name` at `version`) for later gzip
    /// scrapes, unless the family changed since.
    pub fn cache_gzip(&mut self, name: &str, version: u64, piece: GzPiece) {
        if let Some(fam) = self.families.get_mut(name)
            && fam.version == version
        {
            fam.gz = Some(piece);
        }
    }
}

fn remove_member(families: &mut BTreeMap<Arc<str>, Family>, name: &str, member: u32) {
    if let Some(fam) = families.get_mut(name) {
        fam.remove(member);
        if fam.live == 0 {
            families.remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::{FlattenOptions, ResourceInfo};

    #[test]
    fn member_index_switches_form_and_keeps_entries() {
        let mut ix = MemberIndex::Sparse(HashMap::default());
        for m in 0..4096u32 {
            ix.set(m * 2, m + 7);
        }
        ix.fit(4096);
        assert!(matches!(ix, MemberIndex::Dense(_)), "half the ids: dense");
        assert_eq!(ix.get(8190), Some(4095 + 7));
        assert_eq!(ix.get(1), None);
        for m in 0..4096u32 {
            if m % 100 != 0 {
                ix.remove(m * 2);
            }
        }
        ix.fit(41);
        assert!(matches!(ix, MemberIndex::Sparse(_)), "few ids: sparse");
        for m in 0..4096u32 {
            let expected = (m % 100 == 0).then_some(m + 7);
            assert_eq!(ix.get(m * 2), expected, "member {}", m * 2);
        }
        // Sparse ids stay sparse.
        let mut ix = MemberIndex::Sparse(HashMap::default());
        for m in 0..2048u32 {
            ix.set(m * 100, m);
        }
        ix.fit(2048);
        assert!(matches!(ix, MemberIndex::Sparse(_)));
    }
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
    fn families_are_contiguous_with_objects_in_arrival_order() {
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
             k8s_deployment_spec_paused{namespace=\"b\",name=\"x\"} 0\n\
             k8s_deployment_spec_paused{namespace=\"a\",name=\"y\"} 0\n\
             k8s_deployment_spec_paused{namespace=\"a\",name=\"x\"} 0\n\
             # HELP k8s_deployment_spec_replicas Deployment field spec.replicas\n\
             # TYPE k8s_deployment_spec_replicas gauge\n\
             k8s_deployment_spec_replicas{namespace=\"b\",name=\"x\"} 2\n\
             k8s_deployment_spec_replicas{namespace=\"a\",name=\"y\"} 2\n\
             k8s_deployment_spec_replicas{namespace=\"a\",name=\"x\"} 2\n"
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
    fn same_width_updates_are_in_place_and_resizes_are_compacted() {
        let r = renderer();
        let mut s = Store::new();
        let id = s.add_stream();
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("a", "x", 1))));
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("a", "y", 2))));
        let fam = "k8s_deployment_spec_replicas";
        let before = s.families[fam].content().len();
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("a", "x", 7))));
        assert_eq!(
            s.families[fam].content().len(),
            before,
            "same width: in place"
        );
        assert_eq!(s.families[fam].dead, 0);
        s.apply(
            id,
            StoreEvent::Apply(rendered(&r, &deploy("a", "x", 12345))),
        );
        assert!(s.families[fam].dead > 0, "resized: the old range is dead");
        let t = text(&mut s);
        assert_eq!(s.families[fam].dead, 0, "compacted by the snapshot");
        assert_eq!(s.families[fam].content().len(), before + 4);
        assert!(
            t.contains("replicas{namespace=\"a\",name=\"x\"} 12345\n"),
            "{t}"
        );
        assert!(
            t.contains("replicas{namespace=\"a\",name=\"y\"} 2\n"),
            "{t}"
        );
        assert_eq!(t.matches("name=\"x\"} 1\n").count(), 0, "{t}");
        // A deleted object's member id is reused without mixing lines up.
        s.apply(
            id,
            StoreEvent::Delete(ObjectRef {
                namespace: "a".into(),
                name: "y".into(),
            }),
        );
        s.apply(id, StoreEvent::Apply(rendered(&r, &deploy("a", "z", 3))));
        let t = text(&mut s);
        assert!(!t.contains("name=\"y\""), "{t}");
        assert!(
            t.contains("replicas{namespace=\"a\",name=\"z\"} 3\n"),
            "{t}"
        );
        assert_eq!(
            (s.stream_stats(id).objects, s.stream_stats(id).series),
            (2, 4)
        );
    }

    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Apply(u8, u8, u32, bool),
        Delete(u8, u8),
        Relist(u8, Vec<(u8, u32)>),
        Clear(u8),
        Snapshot,
    }

    fn op() -> impl Strategy<Value = Op> {
        let obj = 0u8..6;
        prop_oneof![
            4 => (0u8..2, obj.clone(), 0u32..200_000, any::<bool>()).prop_map(|(s, o, v, p)| Op::Apply(s, o, v, p)),
            1 => (0u8..2, obj.clone()).prop_map(|(s, o)| Op::Delete(s, o)),
            1 => (0u8..2, proptest::collection::vec((obj, 0u32..200_000), 0..6)).prop_map(|(s, v)| Op::Relist(s, v)),
            1 => (0u8..2).prop_map(Op::Clear),
            2 => Just(Op::Snapshot),
        ]
    }

    fn object(stream: u8, o: u8, v: u32, paused: bool) -> Value {
        let mut spec = json!({"replicas": v});
        if paused {
            spec["paused"] = json!(true);
        }
        json!({"kind": "Deployment", "metadata": {"namespace": format!("s{stream}"), "name": format!("o{o}")},
               "spec": spec})
    }

    /// The lines the model expects, sorted, and the exposition's sample lines, sorted;
    /// plus the structural checks (families sorted, contiguous, one header each).
    fn check(s: &mut Store, model: &BTreeMap<(u8, u8), (u32, bool)>, r: &Renderer) {
        let mut want: Vec<String> = Vec::new();
        for ((stream, o), (v, p)) in model {
            let obj = rendered(r, &object(*stream, *o, *v, *p));
            for f in obj.families {
                want.extend(
                    String::from_utf8(f.lines.to_vec())
                        .unwrap()
                        .lines()
                        .map(str::to_string),
                );
            }
        }
        want.sort();
        let t = text(s);
        let mut got: Vec<String> = t
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_string)
            .collect();
        got.sort();
        assert_eq!(got, want);
        let helps: Vec<&str> = t.lines().filter(|l| l.starts_with("# HELP ")).collect();
        let mut sorted = helps.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(helps, sorted, "families sorted, one HELP each");
        let mut current = "";
        for l in t.lines() {
            if let Some(rest) = l.strip_prefix("# HELP ") {
                current = rest.split(' ').next().unwrap();
            } else if !l.starts_with('#') {
                assert!(
                    l.starts_with(&format!("{current}{{")),
                    "{l} outside its family"
                );
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn the_store_matches_a_model(ops in proptest::collection::vec(op(), 1..60)) {
            let r = renderer();
            let mut s = Store::new();
            let ids = [s.add_stream(), s.add_stream()];
            let mut model: BTreeMap<(u8, u8), (u32, bool)> = BTreeMap::new();
            // A scrape still writing an older snapshot: it must not see later writes.
            let mut held: Option<(Snapshot, Vec<u8>)> = None;
            for op in ops {
                if let Some((snap, text)) = &held {
                    prop_assert_eq!(&snap.to_vec(), text, "a held snapshot changed");
                }
                match op {
                    Op::Apply(st, o, v, p) => {
                        s.apply(ids[st as usize], StoreEvent::Apply(rendered(&r, &object(st, o, v, p))));
                        model.insert((st, o), (v, p));
                    }
                    Op::Delete(st, o) => {
                        s.apply(ids[st as usize], StoreEvent::Delete(ObjectRef { namespace: format!("s{st}"), name: format!("o{o}") }));
                        model.remove(&(st, o));
                    }
                    Op::Relist(st, listed) => {
                        let id = ids[st as usize];
                        s.apply(id, StoreEvent::Init);
                        model.retain(|(ms, _), _| *ms != st);
                        for (o, v) in listed {
                            s.apply(id, StoreEvent::InitApply(rendered(&r, &object(st, o, v, false))));
                            model.insert((st, o), (v, false));
                        }
                        s.apply(id, StoreEvent::InitDone);
                    }
                    Op::Clear(st) => {
                        s.apply(ids[st as usize], StoreEvent::Clear);
                        model.retain(|(ms, _), _| *ms != st);
                    }
                    Op::Snapshot => {
                        check(&mut s, &model, &r);
                        let snap = s.snapshot();
                        let text = snap.to_vec();
                        held = Some((snap, text));
                    }
                }
            }
            check(&mut s, &model, &r);
            let series: usize = ids.iter().map(|id| s.stream_stats(*id).series).sum();
            let objects: usize = ids.iter().map(|id| s.stream_stats(*id).objects).sum();
            prop_assert_eq!(objects, model.len());
            prop_assert_eq!(series, model.values().map(|(_, p)| 1 + usize::from(*p)).sum::<usize>());
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
