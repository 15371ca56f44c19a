//! The `flatten` command: read manifests, flatten every object, print one exposition.

use std::io::Write;

use crate::cli::FlattenConfig;
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
            match flatten(&o.value, &res, None, &cfg.options) {
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
