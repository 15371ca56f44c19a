//! The `flatten` command: read manifests, flatten every object, print one exposition.

use std::io::Write;

use std::collections::BTreeSet;

use crate::cli::FlattenConfig;
use crate::crd::{Schemas, read_crd_files};
use crate::exposition::Exposition;
use crate::flatten::{Dropped, flatten};
use crate::input::{expand_paths, read_path};
use crate::resource::KindRegistry;

/// What a run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Objects flattened.
    pub objects: usize,
    /// Series written.
    pub series: usize,
    /// Files, documents or objects skipped with an error.
    pub skipped: usize,
    /// Series and elements dropped, by reason.
    pub dropped: Dropped,
}

/// Run `flatten`: the exposition goes to `out`, one line per problem to `err`. Inputs are
/// processed in order; a bad file, document or object is reported and skipped, the rest
/// is still flattened. Returns an error only when writing fails.
pub fn run(
    cfg: &FlattenConfig,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<Summary> {
    let mut summary = Summary::default();
    let (files, errors) = expand_paths(&cfg.paths);
    for e in errors {
        summary.skipped += 1;
        writeln!(err, "error: {e}")?;
    }
    let schemas = load_crds(cfg, &mut summary, err)?;
    let mut schema_warned = BTreeSet::new();
    let mut registry = KindRegistry::new(cfg.kind_names.clone());
    let mut expo = Exposition::new(cfg.options.enum_cap);
    for f in files {
        let (objects, errors) = read_path(&f);
        for e in errors {
            summary.skipped += 1;
            writeln!(err, "error: {e}")?;
        }
        for o in objects {
            let seen = o.origin.to_string();
            let res = match registry.resolve(&o.kind, &o.group, &cfg.options.prefix, &seen) {
                Ok(r) => r,
                Err(e) => {
                    summary.skipped += 1;
                    writeln!(err, "error: {seen}: skipped: {e}")?;
                    continue;
                }
            };
            let version = o
                .value
                .get("apiVersion")
                .and_then(serde_json::Value::as_str)
                .map(|a| a.rsplit('/').next().unwrap_or(a))
                .unwrap_or("");
            let (schema, warning) = schemas.lookup(&o.group, &o.kind, version);
            if let Some(w) = warning
                && schema_warned.insert((o.group.clone(), o.kind.clone(), version.to_string()))
            {
                writeln!(err, "warning: {seen}: {w}")?;
            }
            match flatten(&o.value, &res, schema, &cfg.options) {
                Ok(flat) => {
                    summary.objects += 1;
                    expo.add(flat);
                }
                Err(e) => {
                    summary.skipped += 1;
                    writeln!(err, "error: {seen}: skipped: {e}")?;
                }
            }
            for w in expo.take_warnings() {
                writeln!(err, "warning: {w}")?;
            }
        }
    }
    out.write_all(&expo.render())?;
    out.flush()?;
    summary.series = expo.series();
    summary.dropped = expo.dropped();
    let dropped: Vec<String> = summary
        .dropped
        .by_reason()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{r}={n}"))
        .collect();
    if !dropped.is_empty() {
        writeln!(
            err,
            "note: {} objects, {} series; dropped: {}",
            summary.objects,
            summary.series,
            dropped.join(", ")
        )?;
    }
    Ok(summary)
}

/// Read the `--crd` inputs (see [`read_crd_files`]).
fn load_crds(
    cfg: &FlattenConfig,
    summary: &mut Summary,
    err: &mut dyn Write,
) -> std::io::Result<Schemas> {
    let mut schemas = Schemas::new();
    if cfg.crds.is_empty() {
        return Ok(schemas);
    }
    let (crds, skipped) = read_crd_files(&cfg.crds, "--crd: ", err)?;
    summary.skipped += skipped;
    for (_, crd) in crds {
        schemas.insert(crd);
    }
    Ok(schemas)
}
