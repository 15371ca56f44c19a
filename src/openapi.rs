//! Reading schemas: an OpenAPI v3 / JSON Schema value (a CRD's `openAPIV3Schema`, or a
//! schema of the API server's `/openapi/v3/apis/{group}/{version}` document) into the
//! flattener's [`SchemaNode`].
//!
//! What is read: `type`, `description`, `format`, string `enum` values,
//! `x-kubernetes-int-or-string` (also recognised as `anyOf`/`oneOf` of integer and
//! string), `x-kubernetes-preserve-unknown-fields`, `properties`, `additionalProperties`
//! (a schema; `true`/`false` carry no hints), `items`. `$ref`s of the form
//! `#/components/schemas/NAME` (OpenAPI v3) or `#/definitions/NAME` (v2) are resolved in
//! the document given; `allOf` members are merged (the node's own `description` wins).
//!
//! Failure modes: nothing here fails. Problems become warnings and the affected part has
//! no hints (heuristics apply there): an unresolvable `$ref`, a `$ref` cycle (recursive
//! types such as JSONSchemaProps stop at the second visit, without a warning: that is
//! normal), nesting beyond [`MAX_DEPTH`], or a node that is not an object.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::schema::SchemaNode;

/// Schema nesting deeper than this is cut (with a warning).
pub const MAX_DEPTH: usize = 64;

/// Converts schemas of one document (which holds the `$ref` targets).
pub struct Reader<'d> {
    doc: Option<&'d Value>,
    warnings: Vec<String>,
    stack: Vec<String>,
}

impl<'d> Reader<'d> {
    /// A reader resolving `$ref`s in `doc` (an OpenAPI document), or none.
    pub fn new(doc: Option<&'d Value>) -> Self {
        Reader {
            doc,
            warnings: Vec::new(),
            stack: Vec::new(),
        }
    }

    /// The warnings so far.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Convert `schema`; `path` names it in warnings.
    pub fn read(&mut self, schema: &Value, path: &str) -> SchemaNode {
        let mut node = SchemaNode::default();
        self.merge(&mut node, schema, path, 0);
        node
    }

    fn resolve(&mut self, reference: &str, path: &str) -> Option<(&'d Value, String)> {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .or_else(|| reference.strip_prefix("#/definitions/"));
        let target = name.and_then(|n| {
            let doc = self.doc?;
            doc.pointer("/components/schemas")
                .or_else(|| doc.get("definitions"))?
                .get(n)
        });
        match (name, target) {
            (Some(n), Some(t)) => Some((t, n.to_string())),
            _ => {
                self.warnings.push(format!(
                    "{path}: unresolvable $ref {reference:?}; no schema hints below it"
                ));
                None
            }
        }
    }

    fn merge(&mut self, node: &mut SchemaNode, schema: &Value, path: &str, depth: usize) {
        let Some(obj) = schema.as_object() else {
            if !schema.is_boolean() {
                self.warnings
                    .push(format!("{path}: schema is not an object; ignored"));
            }
            return;
        };
        if depth > MAX_DEPTH {
            self.warnings.push(format!(
                "{path}: schema nested deeper than {MAX_DEPTH} levels; cut here"
            ));
            return;
        }
        if let Some(r) = obj.get("$ref").and_then(Value::as_str)
            && let Some((target, name)) = self.resolve(r, path)
        {
            if self.stack.contains(&name) {
                return; // a recursive type: stop here
            }
            self.stack.push(name);
            self.merge(node, target, path, depth + 1);
            self.stack.pop();
        }
        for m in obj
            .get("allOf")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.merge(node, m, path, depth + 1);
        }
        let alternatives: Vec<&str> = ["anyOf", "oneOf"]
            .iter()
            .filter_map(|k| obj.get(*k).and_then(Value::as_array))
            .flatten()
            .filter_map(|a| a.get("type").and_then(Value::as_str))
            .collect();
        if alternatives.contains(&"integer") && alternatives.contains(&"string") {
            node.int_or_string = true;
        }
        if let Some(d) = obj.get("description").and_then(Value::as_str) {
            node.description = Some(d.to_string());
        }
        if let Some(t) = obj.get("type").and_then(Value::as_str) {
            node.json_type = Some(t.to_string());
        }
        if let Some(f) = obj.get("format").and_then(Value::as_str) {
            node.format = Some(f.to_string());
        }
        if let Some(e) = obj.get("enum").and_then(Value::as_array) {
            let values: Vec<String> = e
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect();
            if !values.is_empty() {
                node.enum_values = values;
            }
        }
        if obj.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
            node.int_or_string = true;
        }
        if obj.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
            node.preserve_unknown = true;
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                let child_path = format!("{path}.{k}");
                let child = node.properties.entry(k.clone()).or_default();
                self.merge(child, v, &child_path, depth + 1);
            }
        }
        if let Some(ap) = obj.get("additionalProperties").filter(|v| v.is_object()) {
            let child = node
                .additional_properties
                .get_or_insert_with(Default::default);
            self.merge(child, ap, &format!("{path}.*"), depth + 1);
        }
        match obj.get("items") {
            Some(i) if i.is_object() => {
                let child = node.items.get_or_insert_with(Default::default);
                self.merge(child, i, &format!("{path}[]"), depth + 1);
            }
            Some(Value::Array(list)) => {
                if let Some(first) = list.first() {
                    let child = node.items.get_or_insert_with(Default::default);
                    self.merge(child, first, &format!("{path}[]"), depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// The root schemas of the kinds an OpenAPI v3 group-version document defines, by kind:
/// every schema in `components.schemas` with an `x-kubernetes-group-version-kind` entry for
/// `group`/`version`. Warnings are returned alongside.
pub fn kinds_in_document(
    doc: &Value,
    group: &str,
    version: &str,
) -> (BTreeMap<String, SchemaNode>, Vec<String>) {
    let mut out = BTreeMap::new();
    let mut reader = Reader::new(Some(doc));
    let Some(schemas) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return (
            out,
            vec!["OpenAPI document without components.schemas; no schema hints".into()],
        );
    };
    for (name, schema) in schemas {
        let gvks = schema
            .get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array);
        for gvk in gvks.into_iter().flatten() {
            let g = gvk.get("group").and_then(Value::as_str).unwrap_or("");
            let v = gvk.get("version").and_then(Value::as_str).unwrap_or("");
            let k = gvk.get("kind").and_then(Value::as_str).unwrap_or("");
            if g == group && v == version && !k.is_empty() && !k.ends_with("List") {
                let node = reader.read(schema, name);
                out.entry(k.to_string()).or_insert(node);
            }
        }
    }
    (out, reader.take_warnings())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crd_style_schema() {
        let s = json!({"type": "object", "properties": {
        "status": {"type": "object", "properties": {
            "phase": {"type": "string", "description": "Phase of it.", "enum": ["A", "B"]},
            "started": {"type": "string", "format": "date-time"},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
            "items": {"type": "array", "items": {"type": "object",
                      "properties": {"port": {"x-kubernetes-int-or-string": true,
                                              "anyOf": [{"type": "integer"}, {"type": "string"}]}}}},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }}}});
        let mut r = Reader::new(None);
        let n = r.read(&s, "Widget");
        assert!(r.take_warnings().is_empty());
        let status = n.child("status").unwrap();
        let phase = status.child("phase").unwrap();
        assert_eq!(phase.enum_values, vec!["A", "B"]);
        assert_eq!(phase.help().as_deref(), Some("Phase of it."));
        assert_eq!(
            status.child("started").unwrap().format.as_deref(),
            Some("date-time")
        );
        let counts = status.child("counts").unwrap();
        assert_eq!(
            counts.child("anything").unwrap().json_type.as_deref(),
            Some("integer")
        );
        let port = status
            .child("items")
            .unwrap()
            .element()
            .unwrap()
            .child("port")
            .unwrap();
        assert!(port.int_or_string);
        assert!(status.child("extra").unwrap().preserve_unknown);
    }

    #[test]
    fn refs_all_of_cycles_and_bad_refs() {
        let doc = json!({"components": {"schemas": {
            "Spec": {"type": "object", "description": "The spec.", "properties": {
                "replicas": {"type": "integer", "format": "int32"},
                "child": {"allOf": [{"$ref": "#/components/schemas/Spec"}], "description": "Nested."},
                "missing": {"$ref": "#/components/schemas/Nope"}}},
            "Thing": {"type": "object",
                      "x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "Thing"}],
                      "properties": {"spec": {"allOf": [{"$ref": "#/components/schemas/Spec"}],
                                              "description": "Desired state."}}},
            "ThingList": {"type": "object",
                          "x-kubernetes-group-version-kind": [{"group": "example.com", "version": "v1", "kind": "ThingList"}]}
        }}});
        let (kinds, warnings) = kinds_in_document(&doc, "example.com", "v1");
        assert_eq!(kinds.keys().collect::<Vec<_>>(), vec!["Thing"]);
        let spec = kinds["Thing"].child("spec").unwrap();
        assert_eq!(
            spec.description.as_deref(),
            Some("Desired state."),
            "own description wins"
        );
        assert_eq!(
            spec.child("replicas").unwrap().format.as_deref(),
            Some("int32")
        );
        // The recursive child stops at the type already being read.
        let child = spec.child("child").unwrap();
        assert_eq!(child.description.as_deref(), Some("Nested."));
        assert!(child.properties.is_empty());
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("unresolvable $ref \"#/components/schemas/Nope\""));
    }

    #[test]
    fn garbage_and_depth_never_panic() {
        let mut deep = json!({"type": "integer"});
        for _ in 0..200 {
            deep = json!({"type": "object", "properties": {"a": deep}});
        }
        let mut r = Reader::new(None);
        let _ = r.read(&deep, "Deep");
        let w = r.take_warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("deeper than 64"), "{w:?}");
        let mut r = Reader::new(None);
        let n = r.read(&json!({"properties": {"a": 5, "b": {"items": "x"}}}), "Bad");
        assert!(n.child("a").is_some());
        assert_eq!(r.take_warnings().len(), 1);
        let (kinds, w) = kinds_in_document(&json!([1, 2]), "g", "v1");
        assert!(kinds.is_empty());
        assert_eq!(w.len(), 1);
    }
}
