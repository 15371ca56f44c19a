//! Flatten throughput vs `serde_json` parsing the same objects (issue 6, docs/performance.md).
//!
//! Workloads of 1 000, 10 000 and 100 000 objects generated from the shared corpus
//! (`support/workload.rs`: 55% Pods, 20% Deployments, 5% Nodes, 20% custom resources of
//! five kinds, names and values varied). For each size, one criterion group measures:
//!
//! - `serde_parse` (**baseline**): `serde_json::from_slice::<Value>` of every object's JSON;
//! - `render`: `Renderer::render` of every (already parsed) object — flatten, enum cap
//!   and encoding into per-family lines: what the live exporter does per watch event
//!   after kube-rs has parsed the object;
//! - `parse_and_render`: both, what `flatten` costs from bytes.
//!
//! The ratio to read is `render / serde_parse` (goal ≤ 0.5). Throughput is in objects;
//! the series count of each workload is printed, and written with the byte count to
//! `$KFE_BENCH_OUT/flatten-<n>.json` when that is set, for `benches/run.sh`.
//!
//! Under `cargo test --benches` only the 1 000-object workload runs, once.

#[path = "support/run.rs"]
mod run;
#[path = "support/workload.rs"]
mod workload;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, SamplingMode, Throughput};
use kube_field_exporter::flatten::{FlattenOptions, ResourceInfo};
use kube_field_exporter::store::Renderer;
use serde_json::Value;
use workload::{KINDS, Templates};

struct Workload {
    json: Vec<Vec<u8>>,
    values: Vec<Value>,
    kinds: Vec<usize>,
    infos: Vec<ResourceInfo>,
}

impl Workload {
    fn new(templates: &Templates, n: usize) -> Workload {
        let objects = templates.generate(n);
        let json = objects
            .iter()
            .map(|o| serde_json::to_vec(&o.value).expect("serialize"))
            .collect();
        let kinds = objects.iter().map(|o| o.kind).collect();
        let values = objects.into_iter().map(|o| o.value).collect();
        Workload {
            json,
            values,
            kinds,
            infos: KINDS.iter().map(|k| k.info()).collect(),
        }
    }

    fn parse_all(&self) -> usize {
        let mut n = 0;
        for bytes in &self.json {
            let v: Value = serde_json::from_slice(bytes).expect("valid JSON");
            n += usize::from(v.is_object());
            black_box(v);
        }
        n
    }

    /// Render every object; the number of series.
    fn render_all(&self, renderer: &Renderer) -> usize {
        let mut series = 0;
        for (v, k) in self.values.iter().zip(&self.kinds) {
            let (obj, _) = renderer.render(v, &self.infos[*k], None).expect("renders");
            series += obj.series;
            black_box(obj);
        }
        series
    }

    fn parse_and_render_all(&self, renderer: &Renderer) -> usize {
        let mut series = 0;
        for (bytes, k) in self.json.iter().zip(&self.kinds) {
            let v: Value = serde_json::from_slice(bytes).expect("valid JSON");
            let (obj, _) = renderer.render(&v, &self.infos[*k], None).expect("renders");
            series += obj.series;
            black_box(obj);
        }
        series
    }
}

fn bench_size(c: &mut Criterion, templates: &Templates, n: usize) {
    let w = Workload::new(templates, n);
    let renderer = Renderer::new(FlattenOptions::default());
    let series = w.render_all(&renderer);
    let (mut emitted, mut dropped) = (0, kube_field_exporter::flatten::Dropped::default());
    for (v, k) in w.values.iter().zip(&w.kinds) {
        let flat = kube_field_exporter::flatten::flatten(v, &w.infos[*k], None, renderer.options())
            .expect("flattens");
        emitted += flat.samples.len();
        dropped.add(&flat.dropped);
    }
    eprintln!("flatten: {emitted} samples emitted, dropped {dropped:?}");
    let bytes: usize = w.json.iter().map(Vec::len).sum();
    eprintln!(
        "flatten workload: {n} objects, {series} series ({:.1} per object), {bytes} bytes of JSON",
        series as f64 / n as f64
    );
    assert!(
        series > n * 5,
        "the workload renders too few series: {series}"
    );
    run::write_facts(
        &format!("flatten-{n}"),
        &serde_json::json!({"objects": n, "series": series, "json_bytes": bytes}),
    );

    let mut g = c.benchmark_group(format!("flatten_{}k", n / 1000));
    g.throughput(Throughput::Elements(n as u64));
    if n >= 10_000 {
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(if n >= 100_000 { 20 } else { 5 }));
    }
    g.bench_function("serde_parse", |b| b.iter(|| w.parse_all()));
    g.bench_function("render", |b| b.iter(|| w.render_all(&renderer)));
    g.bench_function("parse_and_render", |b| {
        b.iter(|| w.parse_and_render_all(&renderer))
    });
    g.finish();
}

fn main() {
    let sizes: &[usize] = if run::measuring() {
        &[1_000, 10_000, 100_000]
    } else {
        &[1_000]
    };
    let templates = Templates::load();
    let mut c = Criterion::default().configure_from_args();
    for &n in sizes {
        bench_size(&mut c, &templates, n);
    }
    c.final_summary();
}
