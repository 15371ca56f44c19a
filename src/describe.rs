//! The `schema` command's core: every series a kind can produce, read from its schema
//! with the flattener's naming rules (DESIGN.md §2), before any object exists.
//!
//! The walk mirrors `flatten::flatten` over a [`SchemaNode`] instead of an object:
//! the same default exclusions, key styles, array identity labels, enum labels and
//! suffixes. Where the schema cannot say which rule the value will take (a plain string
//! may be a number, a timestamp, a duration, a quantity, a percentage or an enum-like
//! constant), the entry lists what the value decides. Where the schema cannot name the
//! series (map keys, fields preserved as unknown), the name holds `*` for the part that
//! comes from the object.
//!
//! A CRD schema rarely describes `metadata`; the standard ObjectMeta fields that give
//! series (`creationTimestamp`, `deletionTimestamp`, `deletionGracePeriodSeconds`,
//! `generation`) are added when it does not.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::flatten::naming::{self, NameStyle, label_name, style_key, unique_label};
use crate::flatten::{FlattenOptions, ResourceInfo};
use crate::flatten::{LABEL_MAPS, METADATA_EXCLUDED, ROOT_EXCLUDED};
use crate::schema::SchemaNode;

/// What the value of a series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueKind {
    /// A number as it is.
    Number,
    /// 1 or 0.
    Boolean,
    /// Unix seconds.
    Timestamp,
    /// Seconds.
    Duration,
    /// Base units of a Kubernetes quantity.
    Quantity,
    /// A state set: 1 for the current value, 0 for the others.
    Enum,
    /// A percentage as 0..1.
    Ratio,
}

impl ValueKind {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueKind::Number => "number",
            ValueKind::Boolean => "boolean",
            ValueKind::Timestamp => "timestamp",
            ValueKind::Duration => "duration",
            ValueKind::Quantity => "quantity",
            ValueKind::Enum => "enum",
            ValueKind::Ratio => "ratio",
        }
    }
}

/// One series family a kind can produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesDoc {
    /// The metric name; `*` stands for a part taken from the object (map keys, unknown
    /// fields).
    pub name: String,
    /// The dotted path of the field (`status.conditions[].status`).
    pub path: String,
    /// Label names in order: identity, array keys, enum label.
    pub labels: Vec<String>,
    /// The enum label's values, from the schema (empty: decided by the objects).
    pub enum_values: Vec<String>,
    /// What the value can be; more than one when the object's value decides.
    pub values: Vec<ValueKind>,
    /// The HELP text.
    pub help: String,
}

/// Everything `kind` can produce under `schema` (the root schema of its objects).
pub fn describe(
    schema: &SchemaNode,
    res: &ResourceInfo,
    namespaced: bool,
    opts: &FlattenOptions,
) -> Vec<SeriesDoc> {
    let mut labels = Vec::new();
    if namespaced {
        labels.push(("namespace".to_string(), String::new()));
    }
    labels.push(("name".to_string(), String::new()));
    let mut d = Describer {
        style: opts.name_style,
        heuristic: opts.enum_heuristic,
        kind: &res.kind,
        out: BTreeMap::new(),
        labels,
        depth: 0,
        max_depth: opts.max_depth,
    };
    let name = format!("{}_{}", opts.prefix, res.metric_kind);
    let mut root = schema.clone();
    let meta = root.properties.entry("metadata".into()).or_default();
    if meta.properties.is_empty() {
        *meta = object_meta();
    }
    d.object(&root, &name, "", None, None, None);
    d.out.into_values().collect()
}

/// The ObjectMeta fields that give series.
fn object_meta() -> SchemaNode {
    let mut m = SchemaNode {
        json_type: Some("object".into()),
        ..SchemaNode::default()
    };
    let field = |t: &str, format: Option<&str>, d: &str| SchemaNode {
        json_type: Some(t.into()),
        format: format.map(str::to_string),
        description: Some(d.into()),
        ..SchemaNode::default()
    };
    m.properties.insert(
        "creationTimestamp".into(),
        field("string", Some("date-time"), "CreationTimestamp is a timestamp representing the server time when this object was created."),
    );
    m.properties.insert(
        "deletionTimestamp".into(),
        field(
            "string",
            Some("date-time"),
            "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted.",
        ),
    );
    m.properties.insert(
        "deletionGracePeriodSeconds".into(),
        field("integer", None, "Number of seconds allowed for this object to gracefully terminate before it will be removed from the system."),
    );
    m.properties.insert(
        "generation".into(),
        field(
            "integer",
            None,
            "A sequence number representing a specific generation of the desired state.",
        ),
    );
    m
}

struct Describer<'a> {
    style: NameStyle,
    heuristic: bool,
    kind: &'a str,
    out: BTreeMap<String, SeriesDoc>,
    labels: Vec<(String, String)>,
    depth: usize,
    max_depth: usize,
}

fn is_object(n: &SchemaNode) -> bool {
    n.json_type.as_deref() == Some("object")
        || !n.properties.is_empty()
        || n.additional_properties.is_some()
}

impl Describer<'_> {
    fn object(
        &mut self,
        node: &SchemaNode,
        name: &str,
        path: &str,
        enclosing: Option<&str>,
        elem_of: Option<&str>,
        skip: Option<&str>,
    ) {
        for (k, child) in &node.properties {
            if Some(k.as_str()) == skip {
                continue;
            }
            let excluded = (path.is_empty() && ROOT_EXCLUDED.contains(&k.as_str()))
                || (path == "metadata" && METADATA_EXCLUDED.contains(&k.as_str()))
                || (is_object(child) && LABEL_MAPS.contains(&k.as_str()));
            if excluded {
                continue;
            }
            let mut n = name.to_string();
            n.push('_');
            naming::push_key(&mut n, k, self.style);
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            self.field(child, &n, &p, k, enclosing, elem_of);
        }
        if let Some(values) = &node.additional_properties {
            let n = format!("{name}_*");
            let p = if path.is_empty() {
                "*".to_string()
            } else {
                format!("{path}.*")
            };
            self.field(values, &n, &p, "*", enclosing, elem_of);
        } else if node.preserve_unknown || (node.properties.is_empty() && is_object(node)) {
            // Unknown fields allowed, or `type: object` with nothing declared.
            self.unknown(name, path);
        }
    }

    /// Fields the schema does not declare: any name below this one.
    fn unknown(&mut self, name: &str, path: &str) {
        let n = format!("{name}_*");
        let p = if path.is_empty() {
            "*".to_string()
        } else {
            format!("{path}.*")
        };
        let mut labels: Vec<String> = self.labels.iter().map(|(l, _)| l.clone()).collect();
        labels.push("...".into());
        self.add(SeriesDoc {
            name: n,
            path: p,
            labels,
            enum_values: vec![],
            values: all_kinds(),
            help: "Fields the schema leaves open (x-kubernetes-preserve-unknown-fields or a free-form object): named after the object's keys, by the value rules.".into(),
        });
    }

    fn field(
        &mut self,
        node: &SchemaNode,
        name: &str,
        path: &str,
        key: &str,
        enclosing: Option<&str>,
        elem_of: Option<&str>,
    ) {
        if self.depth >= self.max_depth {
            return;
        }
        self.depth += 1;
        match node.json_type.as_deref() {
            Some("array") => self.array(node, name, path, key, enclosing),
            _ if is_object(node) || node.preserve_unknown => {
                self.object(node, name, path, Some(key), None, None)
            }
            _ => self.scalar(node, name, path, key, enclosing, elem_of, None),
        }
        self.depth -= 1;
    }

    #[allow(clippy::too_many_arguments)]
    fn scalar(
        &mut self,
        node: &SchemaNode,
        name: &str,
        path: &str,
        key: &str,
        enclosing: Option<&str>,
        elem_of: Option<&str>,
        index: Option<&str>,
    ) {
        let help = node
            .help()
            .unwrap_or_else(|| format!("{} field {path}", self.kind));
        let mut labels: Vec<String> = self.labels.iter().map(|(l, _)| l.clone()).collect();
        let enum_prefix = enclosing
            .map(|k| style_key(k, self.style))
            .unwrap_or_else(|| "field".into());
        let enum_label = unique_label(&self.labels, label_name(key, self.style), &enum_prefix);
        let t = node.json_type.as_deref();
        let mut doc = SeriesDoc {
            name: name.to_string(),
            path: path.to_string(),
            labels: vec![],
            enum_values: vec![],
            values: vec![],
            help,
        };
        if let Some(ix) = index {
            labels.push(ix.to_string());
        }
        let is_string = matches!(t, Some("string") | None) && !node.int_or_string;
        if !node.enum_values.is_empty() && is_string {
            // Arrays of enum strings are one state set, without an index label.
            if index.is_some() {
                labels.pop();
            }
            labels.push(enum_label);
            doc.enum_values = node.enum_values.clone();
            doc.values = vec![ValueKind::Enum];
        } else if elem_of == Some("conditions") && key == "status" && is_string {
            labels.push(enum_label);
            doc.enum_values = vec!["True".into(), "False".into(), "Unknown".into()];
            doc.values = vec![ValueKind::Enum];
        } else {
            match t {
                Some("integer") | Some("number") => doc.values = vec![ValueKind::Number],
                Some("boolean") => doc.values = vec![ValueKind::Boolean],
                _ if node.int_or_string => {
                    doc.values = vec![ValueKind::Number, ValueKind::Quantity];
                    self.ratio(&doc, &labels);
                }
                _ if node.format.as_deref() == Some("date-time") => {
                    doc.values = vec![ValueKind::Timestamp]
                }
                _ if node.format.as_deref() == Some("duration") => {
                    doc.values = vec![ValueKind::Duration]
                }
                _ => {
                    // A plain string: the value decides. The enum-like reading needs the
                    // heuristic and no schema format.
                    doc.values = vec![
                        ValueKind::Number,
                        ValueKind::Timestamp,
                        ValueKind::Duration,
                        ValueKind::Quantity,
                    ];
                    self.ratio(&doc, &labels);
                    if self.heuristic && node.format.is_none() {
                        let mut e = doc.clone();
                        let mut el = labels.clone();
                        if index.is_some() {
                            el.pop();
                        }
                        el.push(enum_label);
                        e.labels = el;
                        e.values = vec![ValueKind::Enum];
                        // Same name as the numeric reading: merged in `add`.
                        self.add(e);
                    }
                }
            }
        }
        doc.labels = labels;
        self.add(doc);
    }

    fn ratio(&mut self, doc: &SeriesDoc, labels: &[String]) {
        self.add(SeriesDoc {
            name: format!("{}_ratio", doc.name),
            path: doc.path.clone(),
            labels: labels.to_vec(),
            enum_values: vec![],
            values: vec![ValueKind::Ratio],
            help: doc.help.clone(),
        });
    }

    fn array(
        &mut self,
        node: &SchemaNode,
        name: &str,
        path: &str,
        key: &str,
        enclosing: Option<&str>,
    ) {
        let p = format!("{path}[]");
        let array_key = style_key(key, self.style);
        let Some(items) = node.items.as_deref() else {
            self.unknown(name, &p);
            return;
        };
        if is_object(items) {
            let id = ["name", "type"]
                .into_iter()
                .find(|k| items.properties.contains_key(*k));
            let label = match id {
                Some(k) => unique_label(&self.labels, label_name(k, self.style), &array_key),
                None => unique_label(&self.labels, index_label(&array_key), &array_key),
            };
            // The identity may fall back to the index when the objects' values repeat.
            self.labels.push((label, String::new()));
            self.object(items, name, &p, Some(key), Some(key), id);
            self.labels.pop();
        } else if items.json_type.as_deref() == Some("array") {
            let ix = unique_label(&self.labels, index_label(&array_key), &array_key);
            self.labels.push((ix, String::new()));
            self.array(items, name, &p, key, enclosing);
            self.labels.pop();
        } else {
            let ix = unique_label(&self.labels, index_label(&array_key), &array_key);
            self.scalar(items, name, &p, key, enclosing, None, Some(&ix));
        }
    }

    /// Add a doc; a second doc with the same name merges into the first (value kinds and
    /// label alternatives joined).
    fn add(&mut self, doc: SeriesDoc) {
        match self.out.get_mut(&doc.name) {
            None => {
                self.out.insert(doc.name.clone(), doc);
            }
            Some(have) => {
                for v in doc.values {
                    if !have.values.contains(&v) {
                        have.values.push(v);
                    }
                }
                have.values.sort();
                for l in doc.labels {
                    if !have.labels.contains(&l) {
                        have.labels.push(l);
                    }
                }
                for e in doc.enum_values {
                    if !have.enum_values.contains(&e) {
                        have.enum_values.push(e);
                    }
                }
            }
        }
    }
}

fn all_kinds() -> Vec<ValueKind> {
    vec![
        ValueKind::Number,
        ValueKind::Boolean,
        ValueKind::Timestamp,
        ValueKind::Duration,
        ValueKind::Quantity,
        ValueKind::Enum,
        ValueKind::Ratio,
    ]
}

fn index_label(array_key: &str) -> String {
    let mut s = format!("{array_key}_index");
    if s.as_bytes()[0].is_ascii_digit() {
        s.insert(0, '_');
    }
    s
}

/// Whether `name` (a real metric name) is one `doc` describes: equal, or matching with
/// each `*` standing for one or more characters.
pub fn matches(doc: &SeriesDoc, name: &str) -> bool {
    if !doc.name.contains('*') {
        return doc.name == name;
    }
    let parts: Vec<&str> = doc.name.split('*').collect();
    let mut rest = name;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            // The last part must end the name, after at least one character.
            return part.is_empty() && !rest.is_empty()
                || (rest.len() > part.len() && rest.ends_with(part));
        } else {
            // Skip at least one character, then find the part.
            let Some(pos) = rest.get(1..).and_then(|r| r.find(part)) else {
                return false;
            };
            rest = &rest[pos + 1 + part.len()..];
        }
    }
    rest.is_empty()
}

/// For rendering: whether `d` is the `_ratio` reading of a string field that is listed
/// itself (folded into that field's entry), and the value kinds to show for an entry.
fn folded(docs: &[SeriesDoc]) -> (Vec<&SeriesDoc>, impl Fn(&SeriesDoc) -> String + '_) {
    let is_string_reading = |d: &SeriesDoc| d.values.contains(&ValueKind::Quantity);
    let has_ratio = move |d: &SeriesDoc| {
        is_string_reading(d)
            && docs
                .iter()
                .any(|r| r.values == [ValueKind::Ratio] && r.name == format!("{}_ratio", d.name))
    };
    let shown = docs
        .iter()
        .filter(|d| {
            !(d.values == [ValueKind::Ratio]
                && d.name.strip_suffix("_ratio").is_some_and(|base| {
                    docs.iter().any(|b| b.name == base && is_string_reading(b))
                }))
        })
        .collect();
    let values = move |d: &SeriesDoc| {
        let mut v: Vec<&str> = d.values.iter().map(|v| v.as_str()).collect();
        let ratio = format!("ratio as {}_ratio", d.name);
        if has_ratio(d) {
            v.push(&ratio);
            return v.join(" | ");
        }
        v.join(" | ")
    };
    (shown, values)
}

/// Render docs as text: one line per series, `name{labels} value-kinds  # help`, then
/// the enum values. A string field's percentage reading (`<name>_ratio`) is folded into
/// the field's line.
pub fn render_text(kind_title: &str, docs: &[SeriesDoc]) -> String {
    let (shown, values) = folded(docs);
    let mut s = format!("# {kind_title}\n");
    for d in shown {
        s.push_str(&format!(
            "{}{{{}}} {}  # {}\n",
            d.name,
            d.labels.join(","),
            values(d),
            d.help
        ));
        if !d.enum_values.is_empty() {
            s.push_str(&format!("    values: {}\n", d.enum_values.join(", ")));
        }
    }
    s
}

/// Render docs as a Markdown table (percentage readings folded as in [`render_text`]).
pub fn render_markdown(kind_title: &str, docs: &[SeriesDoc]) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let (shown, values) = folded(docs);
    let mut s =
        format!("## {kind_title}\n\n| series | labels | value | help |\n|---|---|---|---|\n");
    for d in shown {
        let mut labels = d.labels.join(", ");
        if !d.enum_values.is_empty() {
            labels.push_str(&format!(" ({})", d.enum_values.join(", ")));
        }
        s.push_str(&format!(
            "| `{}` | {} | {} | {} |\n",
            d.name,
            esc(&labels),
            esc(&values(d)),
            esc(&d.help)
        ));
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(name: &str) -> SeriesDoc {
        SeriesDoc {
            name: name.into(),
            path: String::new(),
            labels: vec![],
            enum_values: vec![],
            values: vec![],
            help: String::new(),
        }
    }

    #[test]
    fn wildcards_match_one_or_more_characters() {
        assert!(matches(&doc("a_b"), "a_b"));
        assert!(!matches(&doc("a_b"), "a_bc"));
        assert!(matches(
            &doc("k_status_nodes_*_phase"),
            "k_status_nodes_abc_phase"
        ));
        assert!(!matches(
            &doc("k_status_nodes_*_phase"),
            "k_status_nodes__phase"
        ));
        assert!(matches(&doc("k_spec_*"), "k_spec_x_y"));
        assert!(!matches(&doc("k_spec_*"), "k_spec_"));
        assert!(matches(&doc("k_*_a_*_b"), "k_x_a_y_b"));
        assert!(!matches(&doc("k_*_a_*_b"), "k_x_a_y_c"));
    }
}
