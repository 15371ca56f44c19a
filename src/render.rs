//! Rendering: one object → its exposition lines grouped by family, ready for the store
//! (the half of the live pipeline that runs without the store lock).
//!
//! [`Renderer::render`] walks the object with the flattener and encodes each series
//! straight into one buffer as the walker produces it ([`LineSink`]): no per-series
//! allocation. The per-family enum cap is applied as series arrive; its lock is taken
//! at the first capped series of an object and held until the object is done, so a
//! state set is admitted or dropped consistently. At the end the lines are grouped by
//! family (families in order of first appearance, each family's lines in walk order),
//! which moves bytes only when the walk came back to a family after another.
//!
//! Failure modes: an object without `metadata.name`, or one that is not a JSON object,
//! is a [`RenderError`]; nothing panics.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use foldhash::fast::RandomState;
use serde_json::Value;

use crate::encode;
use crate::exposition::{Admission, EnumCap};
use crate::flatten::{
    Dropped, FlattenError, FlattenOptions, ResourceInfo, SampleRef, Sink, flatten_into,
};
use crate::schema::SchemaNode;
use crate::store::ObjectRef;

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
    /// Its lines, one entry per family (in the order the walk first reached each
    /// family; the store does not depend on the order).
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

    /// Flatten `obj` and encode its series. Families that newly exceed the enum cap are
    /// returned in `capped_families` (to warn once each).
    pub fn render(
        &self,
        obj: &Value,
        res: &ResourceInfo,
        schema: Option<&SchemaNode>,
    ) -> Result<(RenderedObject, Vec<String>), RenderError> {
        let key = ObjectRef::of(obj).ok_or(RenderError::NoName)?;
        let mut sink = LineSink::new(&self.enum_cap);
        let dropped = flatten_into(obj, res, schema, &self.options, &mut sink)?;
        Ok(sink.finish(key, dropped))
    }
}

/// The renderer's [`Sink`]: encodes each series into one buffer as it arrives.
struct LineSink<'r> {
    cap: &'r Mutex<EnumCap>,
    /// The enum cap, locked at the first capped series.
    guard: Option<MutexGuard<'r, EnumCap>>,
    /// Family name → index into `families`.
    index: HashMap<Arc<str>, u32, RandomState>,
    /// Families in order of first appearance: name and HELP.
    families: Vec<(Arc<str>, String)>,
    /// Each line: family index and its range in `buf`, in walk order.
    lines: Vec<(u32, u32, u32)>,
    buf: Vec<u8>,
    enum_dropped: u64,
    /// Families that dropped a value for the first time.
    warnings: Vec<String>,
}

impl<'r> LineSink<'r> {
    fn new(cap: &'r Mutex<EnumCap>) -> Self {
        LineSink {
            cap,
            guard: None,
            index: HashMap::default(),
            families: Vec::new(),
            lines: Vec::with_capacity(64),
            buf: Vec::with_capacity(4096),
            enum_dropped: 0,
            warnings: Vec::new(),
        }
    }

    /// Group the lines by family into the rendered object.
    fn finish(mut self, key: ObjectRef, mut dropped: Dropped) -> (RenderedObject, Vec<String>) {
        drop(self.guard.take());
        dropped.enum_cap += self.enum_dropped;
        let n = self.families.len();
        let in_order = self.lines.is_sorted_by_key(|&(f, _, _)| f);
        let buf = if in_order {
            self.buf
        } else {
            // Stable: each family keeps its walk order.
            self.lines.sort_by_key(|&(f, _, _)| f);
            let mut out = Vec::with_capacity(self.buf.len());
            for l in &mut self.lines {
                let (a, b) = (l.1 as usize, l.2 as usize);
                l.1 = out.len() as u32;
                out.extend_from_slice(&self.buf[a..b]);
                l.2 = out.len() as u32;
            }
            out
        };
        // After grouping, each family's lines are adjacent: one span per family.
        let mut spans: Vec<(u32, usize, usize)> = Vec::with_capacity(n);
        for &(f, a, b) in &self.lines {
            match spans.last_mut() {
                Some(last) if last.0 == f => last.2 = b as usize,
                _ => spans.push((f, a as usize, b as usize)),
            }
        }
        let all = Bytes::from(buf);
        let families = spans
            .into_iter()
            .map(|(f, a, b)| {
                let (name, help) = std::mem::take(&mut self.families[f as usize]);
                FamilyLines {
                    name,
                    help,
                    lines: all.slice(a..b),
                }
            })
            .collect();
        (
            RenderedObject {
                key,
                families,
                series: self.lines.len(),
                dropped,
            },
            self.warnings,
        )
    }
}

impl Sink for LineSink<'_> {
    fn sample(&mut self, s: &SampleRef<'_>, help: &dyn Fn() -> String) {
        if s.capped {
            let cap = self
                .guard
                .get_or_insert_with(|| self.cap.lock().unwrap_or_else(PoisonError::into_inner));
            if let Admission::Dropped { first } = cap.admit(s.name, s.enum_value()) {
                self.enum_dropped += 1;
                if first {
                    self.warnings.push(s.name.to_string());
                }
                return;
            }
        }
        let family = match self.index.get(s.name) {
            Some(&f) => f,
            None => {
                let f = self.families.len() as u32;
                let name: Arc<str> = Arc::from(s.name);
                self.families.push((name.clone(), help()));
                self.index.insert(name, f);
                f
            }
        };
        let start = self.buf.len() as u32;
        s.write_series(&mut self.buf);
        self.buf.push(b' ');
        encode::write_value(&mut self.buf, s.value);
        self.buf.push(b'\n');
        self.lines.push((family, start, self.buf.len() as u32));
    }

    fn contains(&self, s: &SampleRef<'_>) -> bool {
        let Some(&family) = self.index.get(s.name) else {
            return false;
        };
        let mut id = Vec::new();
        s.write_series(&mut id);
        id.push(b' ');
        self.lines
            .iter()
            .any(|&(f, a, b)| f == family && self.buf[a as usize..b as usize].starts_with(&id))
    }
}
