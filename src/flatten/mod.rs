//! The flattener: one Kubernetes object (JSON) → samples, by the contract of DESIGN.md §2.
//!
//! [`flatten`] is a pure function: no I/O, no globals, deterministic output order (keys
//! are walked in sorted order, arrays in element order). It never panics on any JSON
//! value; an object it cannot name (not a JSON object, no `metadata.name`) is an error.
//!
//! The per-family enum cap spans objects, so it is not applied here: samples that count
//! against it carry [`Sample::capped`] and whoever collects objects applies the cap
//! (see [`crate::exposition::EnumCap`]).

pub mod naming;
pub mod options;
pub mod sink;
pub mod value;

use std::collections::HashSet;

use foldhash::fast::RandomState;

use serde_json::{Map, Value};

pub use naming::NameStyle;
pub use options::{Allowlist, FlattenOptions, KeySet, ResourceInfo};
pub use sink::{SampleRef, Sink};

use crate::encode;
use crate::schema::SchemaNode;
use naming::{label_name, style_key, unique_label};
use value::{StringContext, StringValue, classify_string};

/// One series of one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The metric (family) name.
    pub name: String,
    /// Labels in contract order: identity, array labels (outermost first), enum label.
    pub labels: Vec<(String, String)>,
    /// The value.
    pub value: f64,
    /// The family's HELP text (unescaped).
    pub help: String,
    /// Whether this is a state-set series subject to the per-family enum cap; its last
    /// label is the enum label.
    pub capped: bool,
}

/// What was not emitted, by reason (for self-metrics and logs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Series that repeated a series (name and labels) already emitted.
    pub duplicate: u64,
    /// Array elements beyond the array cap.
    pub array_cap: u64,
    /// Nodes deeper than the depth limit.
    pub depth: u64,
    /// Enum series beyond the per-family cap (counted by collectors).
    pub enum_cap: u64,
}

impl Dropped {
    /// Add another count to this one.
    pub fn add(&mut self, o: &Dropped) {
        self.duplicate += o.duplicate;
        self.array_cap += o.array_cap;
        self.depth += o.depth;
        self.enum_cap += o.enum_cap;
    }

    /// Subtract `o` (saturating), for counts of objects that are replaced or removed.
    pub fn sub(&mut self, o: &Dropped) {
        self.duplicate = self.duplicate.saturating_sub(o.duplicate);
        self.array_cap = self.array_cap.saturating_sub(o.array_cap);
        self.depth = self.depth.saturating_sub(o.depth);
        self.enum_cap = self.enum_cap.saturating_sub(o.enum_cap);
    }

    /// `(reason, count)` pairs, for self-metrics.
    pub fn by_reason(&self) -> [(&'static str, u64); 4] {
        [
            ("duplicate", self.duplicate),
            ("array_cap", self.array_cap),
            ("depth", self.depth),
            ("enum_cap", self.enum_cap),
        ]
    }
}

/// The samples of one object, in walk order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FlatObject {
    /// Samples, at most one per series.
    pub samples: Vec<Sample>,
    /// What was dropped while flattening this object.
    pub dropped: Dropped,
}

/// An object the flattener cannot name.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FlattenError {
    /// The document is not a JSON object.
    #[error("not an object (found {0})")]
    NotAnObject(&'static str),
    /// `metadata.name` is missing, empty or not a string.
    #[error("object has no metadata.name")]
    MissingName,
}

/// The JSON type name of a value, for messages.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Flatten one object into samples. `res` names its kind; `schema`, when given, is the
/// schema of the whole object (root node).
pub fn flatten(
    obj: &Value,
    res: &ResourceInfo,
    schema: Option<&SchemaNode>,
    opts: &FlattenOptions,
) -> Result<FlatObject, FlattenError> {
    let mut samples = Vec::new();
    let dropped = flatten_into(obj, res, schema, opts, &mut samples)?;
    Ok(FlatObject { samples, dropped })
}

/// Flatten one object, handing each series to `sink` in walk order, at most once per
/// series: a repeat of a series that the sink [`contains`](Sink::contains) is counted
/// as a duplicate instead. Returns what was dropped while walking; drops decided by the
/// sink (the enum cap) are the sink's to count.
pub fn flatten_into<S: Sink>(
    obj: &Value,
    res: &ResourceInfo,
    schema: Option<&SchemaNode>,
    opts: &FlattenOptions,
    sink: &mut S,
) -> Result<Dropped, FlattenError> {
    let map = obj
        .as_object()
        .ok_or_else(|| FlattenError::NotAnObject(json_type(obj)))?;
    let meta = map.get("metadata").and_then(Value::as_object);
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or(FlattenError::MissingName)?;
    let namespace = meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty());

    let mut base = String::with_capacity(opts.prefix.len() + res.metric_kind.len() + 1);
    base.push_str(&opts.prefix);
    base.push('_');
    base.push_str(&res.metric_kind);

    let mut w = Walker {
        opts,
        kind: &res.kind,
        name: base.clone(),
        path: String::new(),
        encoded_labels: Vec::with_capacity(128),
        encoded_lengths: Vec::with_capacity(8),
        labels: Vec::with_capacity(8),
        sink,
        dropped: Dropped::default(),
        seen: HashSet::default(),
        depth: 0,
    };
    if let Some(ns) = namespace {
        w.push_label("namespace".to_string(), ns.to_string());
    }
    w.push_label("name".to_string(), name.to_string());
    w.walk_fields(map, None, None, schema, opts.include.is_empty(), None);
    if let Some(meta) = meta {
        w.info_series(&base, res, meta, "labels", "label_", &opts.labels_allowlist);
        w.info_series(
            &base,
            res,
            meta,
            "annotations",
            "annotation_",
            &opts.annotations_allowlist,
        );
    }
    Ok(w.dropped)
}

/// Facts about the field being walked.
#[derive(Clone, Copy)]
struct Field<'a> {
    /// The field's own key (for array elements, the array's key).
    key: &'a str,
    /// The key of the enclosing object (`None` at the root).
    enclosing: Option<&'a str>,
    /// When the field sits directly in an element of an array of objects: that array's key.
    elem_of: Option<&'a str>,
    schema: Option<&'a SchemaNode>,
    /// Whether an include (or no include at all) covers this node or an ancestor.
    included: bool,
}

struct Walker<'a, 's, S> {
    opts: &'a FlattenOptions,
    kind: &'a str,
    /// Metric name of the current node.
    name: String,
    /// Dotted path of the current node.
    path: String,
    labels: Vec<(String, String)>,
    /// `labels` encoded as in a series (`l="v",...`, escaped, without braces), and the
    /// length it had before each label was pushed.
    encoded_labels: Vec<u8>,
    encoded_lengths: Vec<usize>,
    sink: &'s mut S,
    dropped: Dropped,
    /// Identity hashes of the series emitted so far (a hit is confirmed by the sink).
    seen: HashSet<u64, RandomState>,
    depth: usize,
}

/// Top-level fields not walked by default (DESIGN.md §2 "What is not walked by default").
pub(crate) const ROOT_EXCLUDED: &[&str] =
    &["apiVersion", "kind", "data", "binaryData", "stringData"];
/// Fields under `metadata` not walked by default.
pub(crate) const METADATA_EXCLUDED: &[&str] = &[
    "name",
    "namespace",
    "managedFields",
    "ownerReferences",
    "finalizers",
    "resourceVersion",
    "uid",
    "selfLink",
    "generateName",
];
/// Keys whose object values are label maps, excluded wherever they are.
pub(crate) const LABEL_MAPS: &[&str] = &["labels", "annotations", "matchLabels", "nodeSelector"];

impl<'a, S: Sink> Walker<'a, '_, S> {
    /// Push an array (or identity) label onto every series below.
    fn push_label(&mut self, name: String, value: String) {
        self.encoded_lengths.push(self.encoded_labels.len());
        encode::push_label(&mut self.encoded_labels, &name, &value);
        self.labels.push((name, value));
    }

    /// Undo the last [`Self::push_label`].
    fn pop_label(&mut self) {
        self.labels.pop();
        if let Some(n) = self.encoded_lengths.pop() {
            self.encoded_labels.truncate(n);
        }
    }

    fn includes(&self, path: &str) -> bool {
        self.opts.include.iter().any(|r| r.is_match(path))
    }

    fn excluded(&self, path: &str) -> bool {
        self.opts.exclude.iter().any(|r| r.is_match(path))
    }

    /// Whether the child `key` (value `v`) of the node at `self.path` is excluded by
    /// default.
    fn default_excluded(&self, key: &str, v: &Value) -> bool {
        let at_root = self.path.is_empty();
        (at_root && ROOT_EXCLUDED.contains(&key))
            || (self.path == "metadata" && METADATA_EXCLUDED.contains(&key))
            || (v.is_object() && LABEL_MAPS.contains(&key))
    }

    /// Walk the fields of an object node; `skip` is an array identity key.
    fn walk_fields(
        &mut self,
        map: &'a Map<String, Value>,
        enclosing: Option<&'a str>,
        elem_of: Option<&'a str>,
        schema: Option<&'a SchemaNode>,
        included: bool,
        skip: Option<&str>,
    ) {
        for (k, v) in map {
            if Some(k.as_str()) == skip {
                continue;
            }
            let (name_len, path_len) = (self.name.len(), self.path.len());
            let lift = !self.opts.include.is_empty() && {
                let mut p = self.path.clone();
                if !p.is_empty() {
                    p.push('.');
                }
                p.push_str(k);
                self.includes(&p)
            };
            let default_out = self.default_excluded(k, v);
            if !self.path.is_empty() {
                self.path.push('.');
            }
            self.path.push_str(k);
            if !(self.excluded(&self.path) || (default_out && !lift)) {
                self.name.push('_');
                naming::push_key(&mut self.name, k, self.opts.name_style);
                let f = Field {
                    key: k,
                    enclosing,
                    elem_of,
                    schema: schema.and_then(|s| s.child(k)),
                    included: included || lift,
                };
                self.walk_value(v, f);
            }
            self.name.truncate(name_len);
            self.path.truncate(path_len);
        }
    }

    fn walk_value(&mut self, v: &'a Value, f: Field<'a>) {
        if self.depth >= self.opts.max_depth {
            self.dropped.depth += 1;
            return;
        }
        self.depth += 1;
        match v {
            Value::Null => {}
            Value::Bool(b) => {
                if f.included {
                    self.emit("", None, if *b { 1.0 } else { 0.0 }, f.schema, false);
                }
            }
            Value::Number(n) => {
                if f.included
                    && let Some(x) = n.as_f64()
                {
                    self.emit("", None, x, f.schema, false);
                }
            }
            Value::String(s) => {
                if f.included {
                    self.string_field(s, f);
                }
            }
            Value::Object(m) => {
                self.walk_fields(m, Some(f.key), None, f.schema, f.included, None);
            }
            Value::Array(a) => self.walk_array(a, f),
        }
        self.depth -= 1;
    }

    /// A string field (not an array element).
    fn string_field(&mut self, s: &str, f: Field<'a>) {
        let style = self.opts.name_style;
        let label = || label_name(f.key, style);
        let prefix = || {
            f.enclosing
                .map_or_else(|| "field".to_string(), |k| style_key(k, style))
        };
        if let Some(schema) = f.schema.filter(|s| !s.enum_values.is_empty()) {
            let values: Vec<&str> = schema.enum_values.iter().map(String::as_str).collect();
            self.state_set(label(), &prefix(), &values, &[s], f.schema, false);
            return;
        }
        if !self.opts.enum_paths.is_empty() && self.opts.enum_paths.contains(&self.path) {
            self.state_set(label(), &prefix(), &[], &[s], f.schema, true);
            return;
        }
        if f.elem_of == Some("conditions")
            && f.key == "status"
            && matches!(s, "True" | "False" | "Unknown")
        {
            let triple = ["True", "False", "Unknown"];
            self.state_set(label(), &prefix(), &triple, &[s], f.schema, false);
            return;
        }
        match classify_string(s, self.string_context(f)) {
            StringValue::Number(x) => self.emit("", None, x, f.schema, false),
            StringValue::Ratio(x) => self.emit("_ratio", None, x, f.schema, false),
            StringValue::EnumLike => self.state_set(label(), &prefix(), &[], &[s], f.schema, true),
            StringValue::Nothing => {}
        }
    }

    fn string_context(&self, f: Field<'a>) -> StringContext<'a> {
        StringContext {
            key: f.key,
            format: f.schema.and_then(|s| s.format.as_deref()),
            enum_heuristic: self.opts.enum_heuristic,
        }
    }

    fn walk_array(&mut self, all: &'a [Value], f: Field<'a>) {
        let path_len = self.path.len();
        self.path.push_str("[]");
        if !self.excluded(&self.path) {
            let included = f.included || self.includes(&self.path);
            let elems = if all.len() > self.opts.array_cap {
                self.dropped.array_cap += (all.len() - self.opts.array_cap) as u64;
                &all[..self.opts.array_cap]
            } else {
                all
            };
            let elem_schema = f.schema.and_then(SchemaNode::element);
            let ef = Field {
                schema: elem_schema,
                included,
                ..f
            };
            if !elems.is_empty() && elems.iter().all(Value::is_object) {
                self.object_array(elems, ef);
            } else {
                self.mixed_array(elems, ef);
            }
        }
        self.path.truncate(path_len);
    }

    /// An array whose elements are all objects: identified by `name`, else `type`, else
    /// index.
    fn object_array(&mut self, elems: &'a [Value], f: Field<'a>) {
        let style = self.opts.name_style;
        let array_key = style_key(f.key, style);
        let id = ["name", "type"].into_iter().find(|k| identifies(elems, k));
        let label = match id {
            Some(k) => unique_label(&self.labels, label_name(k, style), &array_key),
            None => unique_label(&self.labels, index_label(&array_key), &array_key),
        };
        for (i, el) in elems.iter().enumerate() {
            let Value::Object(m) = el else { continue };
            let value = match id {
                Some(k) => scalar_string(&m[k]),
                None => i.to_string(),
            };
            self.push_label(label.clone(), value);
            self.walk_fields(m, Some(f.key), Some(f.key), f.schema, f.included, id);
            self.pop_label();
        }
    }

    /// Any other array: strings by the string-array rules, everything else by index.
    fn mixed_array(&mut self, elems: &'a [Value], f: Field<'a>) {
        let style = self.opts.name_style;
        let array_key = style_key(f.key, style);
        let index = unique_label(&self.labels, index_label(&array_key), &array_key);
        let schema_enum = f.schema.filter(|s| !s.enum_values.is_empty());
        let explicit = schema_enum.is_some() || {
            let bare = &self.path[..self.path.len() - 2];
            self.opts.enum_paths.contains(&self.path) || self.opts.enum_paths.contains(bare)
        };
        let mut states: Vec<&str> = Vec::new();
        let mut ibuf = itoa::Buffer::new();
        for (i, el) in elems.iter().enumerate() {
            match el {
                Value::Null => {}
                Value::Object(m) => {
                    self.push_label(index.clone(), i.to_string());
                    self.walk_fields(m, Some(f.key), Some(f.key), f.schema, f.included, None);
                    self.pop_label();
                }
                Value::Array(inner) => {
                    self.push_label(index.clone(), i.to_string());
                    let path_len = self.path.len();
                    self.walk_nested(inner, f);
                    self.path.truncate(path_len);
                    self.pop_label();
                }
                Value::Bool(b) if f.included => {
                    let extra = (index.as_str(), ibuf.format(i));
                    self.emit("", Some(extra), if *b { 1.0 } else { 0.0 }, f.schema, false);
                }
                Value::Number(n) if f.included => {
                    if let Some(x) = n.as_f64() {
                        let extra = (index.as_str(), ibuf.format(i));
                        self.emit("", Some(extra), x, f.schema, false);
                    }
                }
                Value::String(s) if f.included => {
                    if explicit {
                        states.push(s);
                        continue;
                    }
                    match classify_string(s, self.string_context(f)) {
                        StringValue::Number(x) => {
                            let extra = (index.as_str(), ibuf.format(i));
                            self.emit("", Some(extra), x, f.schema, false);
                        }
                        StringValue::Ratio(x) => {
                            let extra = (index.as_str(), ibuf.format(i));
                            self.emit("_ratio", Some(extra), x, f.schema, false);
                        }
                        StringValue::EnumLike => states.push(s),
                        StringValue::Nothing => {}
                    }
                }
                _ => {}
            }
        }
        if !states.is_empty() || schema_enum.is_some() {
            let enum_prefix = f.enclosing.map(|k| style_key(k, style));
            let enum_prefix = enum_prefix.as_deref().unwrap_or("field");
            let label = label_name(f.key, style);
            let listed: Vec<&str> = schema_enum
                .map(|s| s.enum_values.iter().map(String::as_str).collect())
                .unwrap_or_default();
            self.state_set(
                label,
                enum_prefix,
                &listed,
                &states,
                f.schema,
                schema_enum.is_none(),
            );
        }
    }

    /// An array directly inside an array: extends with another index label.
    fn walk_nested(&mut self, inner: &'a [Value], f: Field<'a>) {
        if self.depth >= self.opts.max_depth {
            self.dropped.depth += 1;
            return;
        }
        self.depth += 1;
        self.walk_array(inner, f);
        self.depth -= 1;
    }

    /// Emit a state set: every `listed` value (1 if current, else 0), then every current
    /// value not listed (1). `current` may repeat values; each series is emitted once.
    fn state_set(
        &mut self,
        label: String,
        prefix: &str,
        listed: &[&str],
        current: &[&str],
        schema: Option<&SchemaNode>,
        capped: bool,
    ) {
        let label = unique_label(&self.labels, label, prefix);
        let mut done: Vec<&str> = Vec::with_capacity(listed.len() + current.len());
        for &v in listed {
            let on = current.contains(&v);
            if !done.contains(&v) {
                done.push(v);
                let value = if on { 1.0 } else { 0.0 };
                self.emit("", Some((&label, v)), value, schema, capped);
            }
        }
        for &v in current {
            if !done.contains(&v) {
                done.push(v);
                self.emit("", Some((&label, v)), 1.0, schema, capped);
            }
        }
    }

    /// Emit one sample at the current node (`suffix` appended to the name, `extra` label
    /// last), unless the same series was already emitted for this object.
    fn emit(
        &mut self,
        suffix: &str,
        extra: Option<(&str, &str)>,
        value: f64,
        schema: Option<&SchemaNode>,
        capped: bool,
    ) {
        let name_len = self.name.len();
        self.name.push_str(suffix);
        let sample = SampleRef {
            name: &self.name,
            labels: &self.labels,
            encoded_labels: &self.encoded_labels,
            extra,
            value,
            capped,
        };
        if !self.seen.insert(sample.identity_hash(self.seen.hasher()))
            && self.sink.contains(&sample)
        {
            self.dropped.duplicate += 1;
        } else {
            let (kind, path) = (self.kind, &self.path);
            self.sink.sample(&sample, &|| {
                schema.and_then(SchemaNode::help).unwrap_or_else(|| {
                    let mut help = String::with_capacity(kind.len() + 7 + path.len());
                    help.push_str(kind);
                    help.push_str(" field ");
                    help.push_str(path);
                    help
                })
            });
        }
        self.name.truncate(name_len);
    }

    /// The `_labels` / `_annotations` info series for an allowlisted resource.
    fn info_series(
        &mut self,
        base: &str,
        res: &ResourceInfo,
        meta: &Map<String, Value>,
        field: &str,
        label_prefix: &str,
        allow: &Allowlist,
    ) {
        let Some(keys) = allow.for_resource(res) else {
            return;
        };
        let mut labels = self.labels.clone();
        if let Some(Value::Object(map)) = meta.get(field) {
            for (k, v) in map {
                if !keys.allows(k) {
                    continue;
                }
                let Some(v) = scalar_string_opt(v) else {
                    continue;
                };
                let mut name = label_prefix.to_string();
                naming::push_key(&mut name, k, self.opts.name_style);
                if !labels.iter().any(|(l, _)| *l == name) {
                    labels.push((name, v));
                }
            }
        }
        let name = format!("{base}_{field}");
        let mut encoded_labels = Vec::new();
        encode::write_labels(
            &mut encoded_labels,
            labels.iter().map(|(l, v)| (l.as_str(), v.as_str())),
        );
        let sample = SampleRef {
            name: &name,
            labels: &labels,
            encoded_labels: &encoded_labels,
            extra: None,
            value: 1.0,
            capped: false,
        };
        if !self.seen.insert(sample.identity_hash(self.seen.hasher()))
            && self.sink.contains(&sample)
        {
            self.dropped.duplicate += 1;
            return;
        }
        let kind = self.kind;
        self.sink
            .sample(&sample, &|| format!("{kind} {field} (allowlisted keys)"));
    }
}

/// `<array key>_index`.
fn index_label(array_key: &str) -> String {
    let mut s = String::with_capacity(array_key.len() + 6);
    s.push_str(array_key);
    s.push_str("_index");
    if s.as_bytes()[0].is_ascii_digit() {
        s.insert(0, '_');
    }
    s
}

/// Whether every element has a scalar `key` and the values (as label values) are
/// distinct.
fn identifies(elems: &[Value], key: &str) -> bool {
    let mut values: Vec<std::borrow::Cow<'_, str>> = Vec::with_capacity(elems.len());
    for e in elems {
        let v = match e.get(key) {
            Some(Value::String(s)) => std::borrow::Cow::Borrowed(s.as_str()),
            Some(v) => match scalar_string_opt(v) {
                Some(s) => std::borrow::Cow::Owned(s),
                None => return false,
            },
            None => return false,
        };
        values.push(v);
    }
    if values.len() <= 16 {
        return values
            .iter()
            .enumerate()
            .all(|(i, v)| !values[..i].contains(v));
    }
    let mut seen = HashSet::with_capacity(values.len());
    values.iter().all(|v| seen.insert(v.as_ref()))
}

fn scalar_string_opt(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn scalar_string(v: &Value) -> String {
    scalar_string_opt(v).unwrap_or_default()
}

/// A key identifying a series (name and labels) within a run.
pub fn series_key(name: &str, labels: &[(String, String)]) -> String {
    let mut k = String::with_capacity(name.len() + labels.len() * 16);
    k.push_str(name);
    for (l, v) in labels {
        k.push('\u{1}');
        k.push_str(l);
        k.push('\u{2}');
        k.push_str(v);
    }
    k
}
