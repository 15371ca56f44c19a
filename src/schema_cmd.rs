//! The `schema` command: read CRDs and print, per kind, every series it can produce
//! ([`crate::describe`]). A file that is not a CRD, or a `--version` a CRD does not
//! have, is reported on `err` and skipped; the rest is still described.

use std::io::Write;

use serde_json::json;

use crate::cli::{SchemaConfig, SchemaFormat};
use crate::crd::read_crd;
use crate::describe::{describe, render_markdown, render_text};
use crate::input::{expand_paths, read_path};
use crate::resource::KindRegistry;

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
    let (files, errors) = expand_paths(&cfg.crds);
    for e in errors {
        summary.skipped += 1;
        writeln!(err, "error: {e}")?;
    }
    let mut registry = KindRegistry::new(cfg.kind_names.clone());
    let mut json_kinds = Vec::new();
    for f in files {
        let (objects, errors) = read_path(&f);
        for e in errors {
            summary.skipped += 1;
            writeln!(err, "error: {e}")?;
        }
        for o in objects {
            let origin = o.origin.to_string();
            let (crd, warnings) = match read_crd(&o.value, &origin) {
                Ok(c) => c,
                Err(e) => {
                    summary.skipped += 1;
                    writeln!(err, "error: {e}")?;
                    continue;
                }
            };
            for w in warnings {
                writeln!(err, "warning: {w}")?;
            }
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
            let mut res =
                match registry.resolve(&crd.kind, &crd.group, &cfg.options.prefix, &origin) {
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
            let title = format!("{} ({}/{})", crd.kind, crd.group, version.name);
            match cfg.format {
                SchemaFormat::Text => out.write_all(render_text(&title, &docs).as_bytes())?,
                SchemaFormat::Markdown => {
                    out.write_all(render_markdown(&title, &docs).as_bytes())?
                }
                SchemaFormat::Json => json_kinds.push(json!({
                    "group": crd.group,
                    "kind": crd.kind,
                    "version": version.name,
                    "metricKind": res.metric_kind,
                    "series": docs,
                })),
            }
        }
    }
    if cfg.format == SchemaFormat::Json {
        serde_json::to_writer_pretty(&mut *out, &json_kinds)?;
        writeln!(out)?;
    }
    out.flush()?;
    Ok(summary)
}
