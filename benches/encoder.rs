//! Our encoder vs the `prometheus-client` crate on the same series (issue 6, DESIGN.md §5).
//!
//! One synthetic workload (`support/workload.rs`: Pods, Deployments, Nodes and custom
//! resources from the shared corpus; 26 000 objects by default, about 1M series) is
//! flattened and rendered once, outside every timed loop, into three equivalent forms:
//! our [`Store`] (pre-rendered lines per family, as `serve` keeps them), the flattened
//! samples grouped by family, and one `prometheus_client` [`Registry`] holding one
//! `Family<Vec<(String, String)>, Gauge<f64, AtomicU64>>` per metric family, registered
//! with the family's name and HELP and with every series set to its value. The criterion
//! group `encoder` then measures, in one process:
//!
//! - `memcpy` (**baseline**): `clear()` + `extend_from_slice` of a `Vec<u8>` of exactly our
//!   exposition's size into a buffer allocated and touched beforehand;
//! - `ours_prerendered`: what a scrape does: `Store::snapshot()` + writing its chunks into
//!   that buffer (`scrape/cached` in `benches/store.rs`);
//! - `ours_encode_from_samples`: our encoder (`encode::write_header`/`write_sample`) writing
//!   every family's HELP/TYPE and every sample from the flattened samples (name, labels,
//!   value), from scratch, into that buffer: the comparison without the advantage of
//!   pre-rendering. Its output is byte-identical to the store's;
//! - `prometheus_client`: `prometheus_client::encoding::text::encode` of the registry into a
//!   `String` whose capacity was reserved (and touched) beforehand, cleared each time.
//!
//! The ratio to read is `prometheus_client / ours_prerendered` (goal ≥ 3);
//! `prometheus_client / ours_encode_from_samples` shows the encoders alone, and
//! `ours_prerendered / memcpy` how close a scrape is to copying the bytes.
//!
//! Before measuring, the bench checks that both outputs hold the same series: the same
//! number of sample lines and of families, 20 of our series (spread over the output)
//! found in prometheus-client's output with the same value, and the same multiset of
//! (name, labels, value) over all series (an order-independent fingerprint). Label order,
//! series order and float formatting may differ, so parsed values are compared, not text.
//! It panics if any of this fails.
//!
//! What differs in prometheus-client's output (it writes OpenMetrics text, not 0.0.4):
//! every HELP gets a `.` appended (its `register` does that), it ends with `# EOF`,
//! values always carry a decimal point (`3.0` where we write `3`), series within a family
//! come in hash-map order, and label values and HELP texts are written without escaping.
//! Names are unchanged (gauges get no suffix; no unit is given). The bench prints the
//! differences it finds.
//!
//! Size: `KFE_BENCH_ENCODER_OBJECTS` overrides the object count. Under `cargo test
//! --benches` (criterion's test mode, each benchmark run once) 1 000 objects. The facts
//! (objects, series, families, bytes of each output) are printed to stderr and, when
//! `KFE_BENCH_OUT` names a directory, written to `$KFE_BENCH_OUT/encoder.json`.

#[path = "support/run.rs"]
mod run;
#[path = "support/workload.rs"]
mod workload;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::hint::black_box;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, SamplingMode, Throughput};
use kube_field_exporter::encode;
use kube_field_exporter::exposition::{Admission, EnumCap};
use kube_field_exporter::flatten::{FlattenOptions, ResourceInfo, flatten};
use kube_field_exporter::store::{Renderer, Store, StoreEvent};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use workload::{KINDS, Templates};

const FULL_OBJECTS: usize = 26_000;
const TEST_OBJECTS: usize = 1_000;
/// How many of our series are looked up one by one in prometheus-client's output.
const SPOT_CHECKS: usize = 20;

type Labels = Vec<(String, String)>;
type PcFamily = Family<Labels, Gauge<f64, AtomicU64>>;

/// One family's series, as the flattener produced them (after the enum cap).
struct SampleFamily {
    name: String,
    help: String,
    series: Vec<(Labels, f64)>,
}

struct Fixture {
    objects: usize,
    series: usize,
    store: Store,
    families: Vec<SampleFamily>,
    registry: Registry,
}

impl Fixture {
    fn build(n: usize) -> Fixture {
        let start = Instant::now();
        let templates = Templates::load();
        let objects = templates.generate(n);
        let infos: Vec<ResourceInfo> = KINDS.iter().map(|k| k.info()).collect();
        let renderer = Renderer::new(FlattenOptions::default());
        // The renderer applies the per-family enum cap; the same cap, fed the same samples
        // in the same order, keeps the same samples for prometheus-client.
        let mut cap = EnumCap::new(renderer.options().enum_cap);
        let mut store = Store::new();
        let stream = store.add_stream();
        let mut by_name: BTreeMap<String, (String, Vec<(Labels, f64)>)> = BTreeMap::new();
        let mut series = 0;
        store.apply(stream, StoreEvent::Init);
        for o in &objects {
            let info = &infos[o.kind];
            let (rendered, _) = renderer
                .render(&o.value, info, None)
                .expect("the workload renders");
            let flat =
                flatten(&o.value, info, None, renderer.options()).expect("the workload flattens");
            let mut kept = 0;
            for s in flat.samples {
                if s.capped {
                    let value = s.labels.last().map(|(_, v)| v.as_str()).unwrap_or("");
                    if let Admission::Dropped { .. } = cap.admit(&s.name, value) {
                        continue;
                    }
                }
                kept += 1;
                match by_name.get_mut(&s.name) {
                    Some((help, list)) => {
                        // As in the store: the latest HELP wins.
                        if *help != s.help {
                            *help = s.help;
                        }
                        list.push((s.labels, s.value));
                    }
                    None => {
                        by_name.insert(s.name, (s.help, vec![(s.labels, s.value)]));
                    }
                }
            }
            assert_eq!(
                rendered.series, kept,
                "the renderer and the bench's enum cap kept different samples"
            );
            series += kept;
            store.apply(stream, StoreEvent::InitApply(rendered));
        }
        store.apply(stream, StoreEvent::InitDone);
        drop(objects);
        assert_eq!(store.stream_stats(stream).series, series);
        let families: Vec<SampleFamily> = by_name
            .into_iter()
            .map(|(name, (help, series))| SampleFamily { name, help, series })
            .collect();
        let rendered = start.elapsed();

        let start = Instant::now();
        let mut registry = Registry::default();
        for f in &families {
            let family = PcFamily::default();
            registry.register(f.name.as_str(), f.help.as_str(), family.clone());
            for (labels, value) in &f.series {
                family.get_or_create(labels).set(*value);
            }
        }
        eprintln!(
            "encoder: fixture rendered in {rendered:.2?}, prometheus-client registry filled in {:.2?}",
            start.elapsed()
        );
        Fixture {
            objects: n,
            series,
            store,
            families,
            registry,
        }
    }
}

fn write_chunks(out: &mut Vec<u8>, chunks: &[Bytes]) {
    out.clear();
    for c in chunks {
        out.extend_from_slice(c);
    }
}

/// Our encoder, from the samples: HELP/TYPE per family, then its sample lines.
fn encode_samples(out: &mut Vec<u8>, families: &[SampleFamily]) {
    out.clear();
    for f in families {
        encode::write_header(out, &f.name, &f.help);
        for (labels, value) in &f.series {
            encode::write_sample(out, &f.name, labels, *value);
        }
    }
}

fn encode_prometheus_client(out: &mut String, registry: &Registry) {
    out.clear();
    prometheus_client::encoding::text::encode(out, registry).expect("writing to a String");
}

/// One sample line, parsed.
#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    /// Sorted by label name.
    labels: Labels,
    value: f64,
}

/// Parse `name{k="v",...} value`. With `escaped`, label values are unescaped as the text
/// format says (`\\`, `\"`, `\n`); without, a value ends at the first `"` (what
/// prometheus-client writes: values as they are).
fn parse_line(line: &str, escaped: bool) -> Option<Series> {
    let (series, value) = line.rsplit_once(' ')?;
    let value = parse_value(value)?;
    let (name, mut rest) = match series.find('{') {
        Some(i) => (&series[..i], series[i + 1..].strip_suffix('}')?),
        None => (series, ""),
    };
    let mut labels = Vec::new();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = &rest[..eq];
        rest = rest[eq + 1..].strip_prefix('"')?;
        let mut v = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next()? {
                (_, '\\') if escaped => match chars.next()?.1 {
                    'n' => v.push('\n'),
                    c => v.push(c),
                },
                (i, '"') => break i,
                (_, c) => v.push(c),
            }
        };
        labels.push((key.to_string(), v));
        rest = &rest[end + 1..];
        rest = rest.strip_prefix(',').unwrap_or(rest);
    }
    labels.sort();
    Some(Series {
        name: name.to_string(),
        labels,
        value,
    })
}

/// A sample value in either output's spelling (`+Inf`/`inf`, `3`/`3.0`, `NaN`).
fn parse_value(s: &str) -> Option<f64> {
    s.parse().ok()
}

fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// The sample lines of an exposition (not comments, not empty).
fn sample_lines(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// An order-independent fingerprint of a set of series: the wrapping sum of one hash per
/// (name, sorted labels, value).
fn fingerprint(lines: &[&str], escaped: bool, which: &str) -> u64 {
    let mut sum = 0u64;
    for line in lines {
        let s = parse_line(line, escaped)
            .unwrap_or_else(|| panic!("{which}: cannot parse sample line {line:?}"));
        let mut h = DefaultHasher::new();
        s.name.hash(&mut h);
        s.labels.hash(&mut h);
        let v = if s.value == 0.0 { 0.0 } else { s.value }; // -0 is 0
        let bits = if v.is_nan() {
            f64::NAN.to_bits()
        } else {
            v.to_bits()
        };
        bits.hash(&mut h);
        sum = sum.wrapping_add(h.finish());
    }
    sum
}

/// The first of our series that prometheus-client's output lacks or has with another
/// value (for the failure message; only called when the fingerprints differ).
fn first_difference(ours: &[&str], theirs: &[&str]) -> String {
    let mut map: HashMap<(String, Labels), f64> = theirs
        .iter()
        .filter_map(|l| parse_line(l, false))
        .map(|s| ((s.name, s.labels), s.value))
        .collect();
    for line in ours {
        let Some(s) = parse_line(line, true) else {
            continue;
        };
        match map.remove(&(s.name, s.labels)) {
            Some(v) if same_value(v, s.value) => {}
            Some(v) => return format!("{line:?}: prometheus-client has the value {v}"),
            None => return format!("{line:?} is not in prometheus-client's output"),
        }
    }
    match map.into_iter().next() {
        Some(((name, labels), v)) => {
            format!("prometheus-client has {name} {labels:?} {v}, which we do not")
        }
        None => "no single series differs (hash collision?)".to_string(),
    }
}

/// `# HELP` texts by family name.
fn helps(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split_once(' '))
        .collect()
}

/// Both outputs describe the same series; panics otherwise. Prints the differences in
/// form.
fn check(ours: &str, theirs: &str, families: usize) {
    let our_lines = sample_lines(ours);
    let their_lines = sample_lines(theirs);
    assert_eq!(
        our_lines.len(),
        their_lines.len(),
        "sample lines: ours {} vs prometheus-client {}: the outputs do not hold the same series",
        our_lines.len(),
        their_lines.len()
    );
    let types = |t: &str| t.lines().filter(|l| l.starts_with("# TYPE ")).count();
    assert_eq!(types(ours), families, "our TYPE lines");
    assert_eq!(
        types(theirs),
        families,
        "prometheus-client's TYPE lines: families differ"
    );
    let gauges = theirs
        .lines()
        .filter(|l| l.starts_with("# TYPE ") && l.ends_with(" gauge"))
        .count();
    assert_eq!(
        gauges, families,
        "prometheus-client: families not typed gauge"
    );

    // Spot checks: SPOT_CHECKS of our series, spread over the output, looked up in theirs.
    let step = (our_lines.len() / SPOT_CHECKS).max(1);
    let wanted: Vec<Series> = our_lines
        .iter()
        .step_by(step)
        .take(SPOT_CHECKS)
        .map(|l| parse_line(l, true).unwrap_or_else(|| panic!("ours: cannot parse {l:?}")))
        .collect();
    let names: HashSet<&str> = wanted.iter().map(|s| s.name.as_str()).collect();
    let mut found: HashMap<(String, Labels), f64> = HashMap::new();
    for line in &their_lines {
        let name = line.split(['{', ' ']).next().unwrap_or("");
        if names.contains(name)
            && let Some(s) = parse_line(line, false)
        {
            found.insert((s.name, s.labels), s.value);
        }
    }
    for s in &wanted {
        match found.get(&(s.name.clone(), s.labels.clone())) {
            Some(v) if same_value(*v, s.value) => {}
            Some(v) => panic!(
                "series {} {:?}: ours {} vs prometheus-client {v}",
                s.name, s.labels, s.value
            ),
            None => panic!(
                "series {} {:?} (ours = {}) not in prometheus-client's output",
                s.name, s.labels, s.value
            ),
        }
    }

    // Every series: the same multiset of (name, labels, value).
    let a = fingerprint(&our_lines, true, "ours");
    let b = fingerprint(&their_lines, false, "prometheus-client");
    if a != b {
        panic!(
            "the series (name, labels, value) of the two outputs differ: {}",
            first_difference(&our_lines, &their_lines)
        );
    }

    // Differences in form.
    let escaped_lines = our_lines.iter().filter(|l| l.contains('\\')).count();
    let our_helps = helps(ours);
    let their_helps = helps(theirs);
    let dot_only = our_helps
        .iter()
        .filter(|(n, h)| their_helps.get(*n) == Some(&format!("{h}.").as_str()))
        .count();
    let decimal = their_lines.iter().filter(|l| l.ends_with(".0")).count();
    eprintln!(
        "encoder check: {} series and {families} families in both outputs; {SPOT_CHECKS} series \
         spot-checked and the fingerprints of all series equal",
        our_lines.len()
    );
    eprintln!(
        "encoder differences: prometheus-client ends with {:?}; its HELP is ours + \".\" for \
         {dot_only} of {families} families; {decimal} of its values end in \".0\"; {escaped_lines} \
         of our sample lines contain an escape (prometheus-client does not escape)",
        theirs.lines().last().unwrap_or(""),
    );
    if dot_only != families {
        for (n, h) in our_helps.iter().take(3) {
            eprintln!(
                "  HELP {n}: ours {h:?}, prometheus-client {:?}",
                their_helps.get(n)
            );
        }
    }
}

fn bench(c: &mut Criterion, f: &mut Fixture) {
    let snap = f.store.snapshot();
    let ours = snap.to_vec();
    assert_eq!(ours.len(), snap.len);
    drop(snap);
    let families = f.store.families();
    assert_eq!(families, f.families.len(), "families: store vs samples");

    let mut out: Vec<u8> = Vec::with_capacity(ours.len());
    encode_samples(&mut out, &f.families); // also touches the buffer's pages
    assert!(
        out == ours,
        "encoding the samples from scratch did not give the store's exposition"
    );

    // Its size first, then the buffer every later encode reuses (allocated and touched).
    let mut theirs = String::new();
    encode_prometheus_client(&mut theirs, &f.registry);
    let their_len = theirs.len();
    let mut theirs = String::with_capacity(their_len);
    encode_prometheus_client(&mut theirs, &f.registry);
    assert_eq!(theirs.len(), their_len);
    let ours_text = std::str::from_utf8(&ours).expect("our exposition is UTF-8");
    check(ours_text, &theirs, families);

    eprintln!(
        "encoder workload: {} objects, {} series ({:.1} per object), {families} families; \
         ours {} bytes ({:.1} B/series), prometheus-client {their_len} bytes ({:.1} B/series)",
        f.objects,
        f.series,
        f.series as f64 / f.objects as f64,
        ours.len(),
        ours.len() as f64 / f.series as f64,
        their_len as f64 / f.series as f64,
    );
    run::write_facts(
        "encoder",
        &serde_json::json!({
            "objects": f.objects,
            "series": f.series,
            "families": families,
            "ours_bytes": ours.len(),
            "prometheus_client_bytes": their_len,
        }),
    );

    let mut g = c.benchmark_group("encoder");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(f.series as u64));

    g.bench_function("memcpy", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&ours));
            black_box(out.len())
        })
    });
    g.bench_function("ours_prerendered", |b| {
        b.iter(|| {
            let snap = f.store.snapshot();
            write_chunks(&mut out, &snap.chunks());
            black_box(out.len())
        })
    });
    // The two encoders take about half a second per iteration at 1M series: longer
    // targets so that each sample is at least two iterations (criterion's minimum of 10
    // samples), about 10 and 15 s.
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("ours_encode_from_samples", |b| {
        b.iter(|| {
            encode_samples(&mut out, black_box(&f.families));
            black_box(out.len())
        })
    });
    g.measurement_time(Duration::from_secs(12));
    g.bench_function("prometheus_client", |b| {
        b.iter(|| {
            encode_prometheus_client(&mut theirs, black_box(&f.registry));
            black_box(theirs.len())
        })
    });
    g.finish();
}

fn main() {
    let objects = run::size("KFE_BENCH_ENCODER_OBJECTS", FULL_OBJECTS, TEST_OBJECTS);
    let mut c = Criterion::default().configure_from_args();
    let mut f = Fixture::build(objects);
    bench(&mut c, &mut f);
    c.final_summary();
}
