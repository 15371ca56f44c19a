//! The `schema` command: read CRDs and print, per kind, every series it can produce
//! ([`crate::describe`]). A file that is not a CRD, or a `--version` a CRD does not
//! have, is reported on `err` and skipped; the rest is still described.

use std::io::Write;

use serde_json::json;

use crate::cli::{SchemaConfig, SchemaFormat};
use crate::crd::{read_crd, read_crd_files};
use crate::describe::{SeriesDoc, describe, render_markdown, render_text};
use crate::discovery::{discover, resolve, resource_info};
use crate::resource::KindRegistry;
use crate::schema::SchemaNode;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SchemaSummary {
    /// Kinds described.
    pub kinds: usize,
    /// Series families listed.
    pub series: usize,
    /// Inputs skipped with an error.
    pub skipped: usize,
}

/// Run `schema`.
pub fn run(
    cfg: &SchemaConfig,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<SchemaSummary> {
    let mut summary = SchemaSummary::default();
    let (crds, skipped) = read_crd_files(&cfg.crds, "", err)?;
    summary.skipped += skipped;
    let mut registry = KindRegistry::new(cfg.kind_names.clone());
    let mut json_kinds = Vec::new();
    for (origin, crd) in crds {
        let version = match &cfg.version {
            Some(v) => crd.version(v),
            None => crd.default_version(),
        };
        let Some(version) = version else {
            summary.skipped += 1;
            let have: Vec<&str> = crd.versions.iter().map(|v| v.name.as_str()).collect();
            writeln!(
                err,
                "error: {origin}: CRD {} has no version {:?} (it has {})",
                crd.name,
                cfg.version.as_deref().unwrap_or(""),
                have.join(", ")
            )?;
            continue;
        };
        let mut res = match registry.resolve(&crd.kind, &crd.group, &cfg.options.prefix, &origin) {
            Ok(r) => r,
            Err(e) => {
                summary.skipped += 1;
                writeln!(err, "error: {origin}: skipped: {e}")?;
                continue;
            }
        };
        res.plural = Some(crd.plural.clone());
        let schema = version.schema.clone().unwrap_or_default();
        let docs = describe(&schema, &res, crd.namespaced, &cfg.options);
        summary.kinds += 1;
        summary.series += docs.len();
        let kind = KindDoc {
            group: &crd.group,
            kind: &crd.kind,
            version: &version.name,
            metric_kind: &res.metric_kind,
            docs: &docs,
        };
        kind.write(cfg.format, out, &mut json_kinds)?;
    }
    if cfg.format == SchemaFormat::Json {
        serde_json::to_writer_pretty(&mut *out, &json_kinds)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(summary)
}

struct KindDoc<'a> {
    group: &'a str,
    kind: &'a str,
    version: &'a str,
    metric_kind: &'a str,
    docs: &'a [SeriesDoc],
}

impl KindDoc<'_> {
    fn write(
        &self,
        format: SchemaFormat,
        out: &mut dyn Write,
        json_kinds: &mut Vec<serde_json::Value>,
    ) -> std::io::Result<()> {
        let group = if self.group.is_empty() {
            "core"
        } else {
            self.group
        };
        let title = format!("{} ({group}/{})", self.kind, self.version);
        match format {
            SchemaFormat::Text => out.write_all(render_text(&title, self.docs).as_bytes()),
            SchemaFormat::Markdown => out.write_all(render_markdown(&title, self.docs).as_bytes()),
            SchemaFormat::Json => {
                json_kinds.push(json!({
                    "group": self.group,
                    "kind": self.kind,
                    "version": self.version,
                    "metricKind": self.metric_kind,
                    "series": self.docs,
                }));
                Ok(())
            }
        }
    }
}

/// `schema --resource`: describe resources of a cluster. Each resource is resolved by
/// discovery; its schema is its CRD's (at the resolved version) when a CRD defines it,
/// else the group-version's OpenAPI v3 schema. A resource that does not resolve, or has
/// no schema anywhere, is reported on `err` and skipped.
pub async fn run_cluster(
    cfg: &SchemaConfig,
    client: &kube::Client,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<SchemaSummary> {
    let mut summary = SchemaSummary::default();
    let d = match discover(client).await {
        Ok(d) => d,
        Err(e) => {
            writeln!(err, "error: API discovery failed: {e}")?;
            summary.skipped += cfg.resources.len();
            return Ok(summary);
        }
    };
    let mut json_kinds = Vec::new();
    for spec in &cfg.resources {
        let r = match resolve(spec, &d) {
            Ok(r) => r,
            Err(e) => {
                summary.skipped += 1;
                writeln!(err, "error: {e}")?;
                continue;
            }
        };
        let schema = match cluster_schema(client, r).await {
            Ok(s) => s,
            Err(e) => {
                summary.skipped += 1;
                writeln!(err, "error: --resource {spec} ({}): {e}", r.full_name())?;
                continue;
            }
        };
        let res = resource_info(spec, r);
        let docs = describe(&schema, &res, r.namespaced, &cfg.options);
        summary.kinds += 1;
        summary.series += docs.len();
        KindDoc {
            group: &r.group,
            kind: &r.kind,
            version: &r.version,
            metric_kind: &res.metric_kind,
            docs: &docs,
        }
        .write(cfg.format, out, &mut json_kinds)?;
    }
    if cfg.format == SchemaFormat::Json {
        serde_json::to_writer_pretty(&mut *out, &json_kinds)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(summary)
}

async fn cluster_schema(
    client: &kube::Client,
    r: &crate::discovery::DiscoveredResource,
) -> Result<SchemaNode, String> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    if !r.group.is_empty() {
        let api: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
        let name = format!("{}.{}", r.plural, r.group);
        if let Ok(Some(crd)) = api.get_opt(&name).await
            && let Ok(v) = serde_json::to_value(&crd)
            && let Ok((crd, _)) = read_crd(&v, &format!("CRD {name}"))
        {
            let version = crd.version(&r.version).or_else(|| crd.default_version());
            if let Some(schema) = version.and_then(|v| v.schema.clone()) {
                return Ok(schema);
            }
        }
    }
    let kinds = crate::schema_source::fetch_openapi(client, &r.group, &r.version).await?;
    kinds.get(&r.kind).cloned().ok_or_else(|| {
        format!(
            "the OpenAPI v3 document of {} has no schema for {}",
            r.api_version(),
            r.kind
        )
    })
}
