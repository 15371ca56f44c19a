//! CustomResourceDefinitions as schema sources: a CRD (read with k8s-openapi's
//! apiextensions v1 types) gives, per version, the [`SchemaNode`] of its objects.
//! [`Schemas`] holds the schemas of many kinds and answers "the schema of this object".
//!
//! Failure modes: a document that is not an `apiextensions.k8s.io` CRD, or whose
//! structure does not match the CRD type, is a [`CrdError`] naming the origin. A version
//! without `openAPIV3Schema`, or with unknown-fields-only schemas, is accepted with a
//! warning: its objects are flattened by the heuristics alone.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

use crate::openapi::Reader;
use crate::schema::SchemaNode;

/// One served version of a CRD.
#[derive(Debug, Clone, PartialEq)]
pub struct CrdVersion {
    /// `v1`, `v1beta1`, ...
    pub name: String,
    /// Served by the API server.
    pub served: bool,
    /// The storage version.
    pub storage: bool,
    /// Its schema, if the CRD has one for this version.
    pub schema: Option<SchemaNode>,
}

/// What a CRD defines.
#[derive(Debug, Clone, PartialEq)]
pub struct Crd {
    /// `metadata.name` (`certificates.cert-manager.io`).
    pub name: String,
    /// API group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Plural resource name.
    pub plural: String,
    /// Singular resource name.
    pub singular: String,
    /// Short names.
    pub short_names: Vec<String>,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Versions in CRD order.
    pub versions: Vec<CrdVersion>,
}

impl Crd {
    /// The version named `v`.
    pub fn version(&self, v: &str) -> Option<&CrdVersion> {
        self.versions.iter().find(|x| x.name == v)
    }

    /// The version to describe when none is named: the storage version, else the first
    /// served one, else the first.
    pub fn default_version(&self) -> Option<&CrdVersion> {
        self.versions
            .iter()
            .find(|v| v.storage)
            .or_else(|| self.versions.iter().find(|v| v.served))
            .or_else(|| self.versions.first())
    }
}

/// A document that is not a usable CRD.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// Another kind of object.
    #[error("{origin}: not a CustomResourceDefinition (kind {kind:?}, apiVersion {api_version:?})")]
    NotACrd {
        /// Where it came from.
        origin: String,
        /// Its kind.
        kind: String,
        /// Its apiVersion.
        api_version: String,
    },
    /// The structure does not match the CRD type.
    #[error("{origin}: malformed CustomResourceDefinition: {source}")]
    Malformed {
        /// Where it came from.
        origin: String,
        /// The deserialisation error.
        source: serde_json::Error,
    },
}

/// Read a CRD. Returns it and the warnings about its schemas.
pub fn read_crd(value: &Value, origin: &str) -> Result<(Crd, Vec<String>), CrdError> {
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if kind != "CustomResourceDefinition" || !api_version.starts_with("apiextensions.k8s.io/") {
        return Err(CrdError::NotACrd {
            origin: origin.to_string(),
            kind: kind.to_string(),
            api_version: api_version.to_string(),
        });
    }
    let crd: CustomResourceDefinition =
        serde_json::from_value(value.clone()).map_err(|source| CrdError::Malformed {
            origin: origin.to_string(),
            source,
        })?;
    let spec = crd.spec;
    let name = crd
        .metadata
        .name
        .unwrap_or_else(|| format!("{}.{}", spec.names.plural, spec.group));
    let mut warnings = Vec::new();
    let mut versions = Vec::new();
    for v in spec.versions {
        let props = v.schema.and_then(|s| s.open_api_v3_schema);
        let schema = match props {
            Some(p) => match serde_json::to_value(&p) {
                Ok(json) => {
                    let mut reader = Reader::new(None);
                    let node = reader.read(&json, &format!("{}/{}", spec.names.kind, v.name));
                    for w in reader.take_warnings() {
                        warnings.push(format!("{origin}: {w}"));
                    }
                    if node.properties.is_empty() && node.preserve_unknown {
                        warnings.push(format!(
                            "{origin}: version {} preserves unknown fields and declares none: \
                             heuristics only",
                            v.name
                        ));
                    }
                    Some(node)
                }
                Err(e) => {
                    warnings.push(format!(
                        "{origin}: version {}: schema unreadable: {e}",
                        v.name
                    ));
                    None
                }
            },
            None => {
                warnings.push(format!(
                    "{origin}: version {} has no openAPIV3Schema: heuristics only",
                    v.name
                ));
                None
            }
        };
        versions.push(CrdVersion {
            name: v.name,
            served: v.served,
            storage: v.storage,
            schema,
        });
    }
    Ok((
        Crd {
            name,
            group: spec.group,
            kind: spec.names.kind,
            plural: spec.names.plural,
            singular: spec.names.singular.unwrap_or_default(),
            short_names: spec.names.short_names.unwrap_or_default(),
            namespaced: spec.scope == "Namespaced",
            versions,
        },
        warnings,
    ))
}

/// Read every CRD in `paths` (files or directories). Unreadable inputs and documents
/// that are not CRDs are reported on `err` as `error: {prefix}...` and counted; schema
/// warnings are reported as `warning: ...`. Returns the CRDs with their origins, and the
/// number of inputs skipped.
pub fn read_crd_files(
    paths: &[std::path::PathBuf],
    prefix: &str,
    err: &mut dyn std::io::Write,
) -> std::io::Result<(Vec<(String, Crd)>, usize)> {
    let mut crds = Vec::new();
    let mut skipped = 0;
    let (files, errors) = crate::input::expand_paths(paths);
    for e in errors {
        skipped += 1;
        writeln!(err, "error: {prefix}{e}")?;
    }
    for f in files {
        let (objects, errors) = crate::input::read_path(&f);
        for e in errors {
            skipped += 1;
            writeln!(err, "error: {prefix}{e}")?;
        }
        for o in objects {
            let origin = o.origin.to_string();
            match read_crd(&o.value, &origin) {
                Ok((crd, warnings)) => {
                    for w in warnings {
                        writeln!(err, "warning: {w}")?;
                    }
                    crds.push((origin, crd));
                }
                Err(e) => {
                    skipped += 1;
                    writeln!(err, "error: {prefix}{e}")?;
                }
            }
        }
    }
    Ok((crds, skipped))
}

/// Schemas of many kinds, by (group, kind).
#[derive(Debug, Clone, Default)]
pub struct Schemas {
    crds: BTreeMap<(String, String), Crd>,
}

impl Schemas {
    /// No schemas.
    pub fn new() -> Self {
        Schemas::default()
    }

    /// Add (or replace) a CRD.
    pub fn insert(&mut self, crd: Crd) {
        self.crds.insert((crd.group.clone(), crd.kind.clone()), crd);
    }

    /// Remove a kind's CRD.
    pub fn remove(&mut self, group: &str, kind: &str) -> Option<Crd> {
        self.crds.remove(&(group.to_string(), kind.to_string()))
    }

    /// The CRD of a kind.
    pub fn crd(&self, group: &str, kind: &str) -> Option<&Crd> {
        self.crds.get(&(group.to_string(), kind.to_string()))
    }

    /// All CRDs, by group and kind.
    pub fn iter(&self) -> impl Iterator<Item = &Crd> {
        self.crds.values()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.crds.is_empty()
    }

    /// The schema for an object of `group`/`kind` at `version`. When the CRD does not
    /// have that version, the schema of its default version (storage) is used and the
    /// second value says so (for a warning): versions of one kind mostly share fields,
    /// and a field the other version does not have simply gets no hints.
    pub fn lookup(
        &self,
        group: &str,
        kind: &str,
        version: &str,
    ) -> (Option<&SchemaNode>, Option<String>) {
        let Some(crd) = self.crd(group, kind) else {
            return (None, None);
        };
        if let Some(v) = crd.version(version) {
            return (v.schema.as_ref(), None);
        }
        match crd.default_version() {
            Some(d) => (
                d.schema.as_ref(),
                Some(format!(
                    "CRD {} has no version {version:?}; using the schema of {}",
                    crd.name, d.name
                )),
            ),
            None => (None, Some(format!("CRD {} has no versions", crd.name))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn crd_json() -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
               "metadata": {"name": "widgets.example.com"},
               "spec": {"group": "example.com", "scope": "Namespaced",
                        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
                        "versions": [
                          {"name": "v1alpha1", "served": true, "storage": false},
                          {"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                              "type": "object", "properties": {"status": {"type": "object", "properties": {
                                  "phase": {"type": "string", "enum": ["Pending", "Ready"]}}}}}}}]}})
    }

    #[test]
    fn versions_and_lookup() {
        let (crd, warnings) = read_crd(&crd_json(), "widgets.yaml").unwrap();
        assert_eq!(crd.kind, "Widget");
        assert!(crd.namespaced);
        assert_eq!(crd.default_version().unwrap().name, "v1");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("v1alpha1 has no openAPIV3Schema"),
            "{warnings:?}"
        );
        let mut s = Schemas::new();
        s.insert(crd);
        let node = s.lookup("example.com", "Widget", "v1").0.unwrap();
        let phase = node.child("status").unwrap().child("phase").unwrap();
        assert_eq!(phase.enum_values, vec!["Pending", "Ready"]);
        assert_eq!(s.lookup("example.com", "Widget", "v1"), (Some(node), None));
        assert_eq!(s.lookup("example.com", "Widget", "v1alpha1"), (None, None));
        let (fallback, warning) = s.lookup("example.com", "Widget", "v2");
        assert_eq!(fallback, Some(node));
        assert!(
            warning
                .unwrap()
                .contains("no version \"v2\"; using the schema of v1")
        );
        assert_eq!(s.lookup("other", "Widget", "v1"), (None, None));
    }

    #[test]
    fn not_a_crd_and_malformed_are_named() {
        let e = read_crd(
            &json!({"kind": "Deployment", "apiVersion": "apps/v1"}),
            "x.yaml",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("x.yaml: not a CustomResourceDefinition"),
            "{e}"
        );
        let mut bad = crd_json();
        bad["spec"]["versions"] = json!("nope");
        let e = read_crd(&bad, "y.yaml").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("y.yaml: malformed CustomResourceDefinition"),
            "{e}"
        );
    }

    #[test]
    fn every_corpus_crd_reads() {
        let dir = std::path::Path::new("../shared/corpus/crds");
        if !dir.exists() {
            panic!("corpus missing at {}", dir.display());
        }
        let mut n = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let (objs, errs) = crate::input::read_path(&p);
            assert!(errs.is_empty(), "{p:?}: {errs:?}");
            for o in objs {
                let (crd, _) = read_crd(&o.value, &p.display().to_string()).unwrap();
                assert!(!crd.versions.is_empty());
                n += 1;
            }
        }
        assert_eq!(n, 26);
    }
}
