//! Store and scrape-path benchmarks (docs/performance.md has the method and the figures).
//!
//! One store of synthetic Deployments (100 000 by default, over 50 namespaces) is built
//! once, outside every timed loop; every comparison is then measured in one criterion
//! group against a baseline on the same bytes in the same run, so the figures to read are
//! ratios (DESIGN.md §5):
//!
//! - `scrape/*`: a scrape's work vs `scrape/memcpy`, a copy of the same number of bytes
//!   into a pre-allocated buffer:
//!   - `cached`: `snapshot()` of an unchanged store, chunks written into one buffer;
//!   - `after_1pct_churn`: 1% of the objects were changed (untimed) before each
//!     `snapshot()` + write (same-width changes are in place; resized lines are
//!     compacted by the snapshot);
//!   - `all_dirty`: one object changing (and resizing) in every family (untimed) before
//!     each `snapshot()` + write: every family is compacted (the worst case);
//!   - `*_snapshot_only`: the same without the write, i.e. the time under the store lock
//!     (the server streams the shared chunks without copying them);
//!   - `gzip_fast`: deflating the whole exposition (flate2 level 1 over the chunks), what a
//!     gzip scrape costs when no family is cached;
//!   - `gzip_unchanged`, `gzip_after_1pct_churn`: the server's gzip path, which reuses
//!     each family's deflated piece while the family is unchanged (`gzip_snapshot`).
//! - `render/*`: `Renderer::render` of one object vs `serde_json::from_slice` of its JSON.
//! - `apply/*`: `Store::apply` of pre-rendered objects into the full store.
//!
//! Facts (objects, series, families, exposition bytes) go to stderr and, when
//! `KFE_BENCH_OUT` names a directory, to `$KFE_BENCH_OUT/store.json` (for
//! `benches/run.sh`).
//!
//! Size: `KFE_BENCH_OBJECTS` overrides the object count. Under `cargo test --benches`
//! (criterion's test mode, each benchmark run once) the store has 1 000 objects so
//! that the check stays fast.

#[path = "support/run.rs"]
mod run;
#[path = "support/workload.rs"]
mod workload;

use std::hint::black_box;
use std::io::Write as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{BatchSize, Criterion, SamplingMode, Throughput};
use kube_field_exporter::flatten::{FlattenOptions, ResourceInfo};
use kube_field_exporter::gzip::gzip_snapshot;
use kube_field_exporter::store::{RenderedObject, Renderer, Snapshot, Store, StoreEvent, StreamId};
use serde_json::{Value, json};
use workload::Rng;

const FULL_OBJECTS: usize = 100_000;
const TEST_OBJECTS: usize = 1_000;
const NAMESPACES: u64 = 50;

fn timestamp(secs: u64) -> String {
    jiff::Timestamp::from_second(secs as i64)
        .expect("in range")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Deployment number `i`. `version` 0 is the object as built into the store; versions 1
/// and 2 are a rollout of it (replicas and generation move: seven families change).
fn deployment(i: usize, version: u64) -> Value {
    let mut r = Rng(i as u64);
    let namespace = format!("team-{:02}", r.below(NAMESPACES));
    let name = format!("app-{i:05}");
    let replicas = 1 + r.below(5) + version;
    let ready = if r.below(10) == 0 {
        replicas - 1
    } else {
        replicas
    };
    let generation = 1 + r.below(40) + version;
    let created = 1_700_000_000 + r.below(30_000_000);
    let progressed = created + r.below(3_000_000);
    let available = created + r.below(3_000_000);
    let (surge, unavailable) = match r.below(4) {
        0 => (json!(1), json!(0)),
        1 => (json!("50%"), json!("0%")),
        _ => (json!("25%"), json!("25%")),
    };
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": format!("6f1c2d3e-{:04x}-4a5b-8c9d-{:012x}", r.below(0x10000), r.next() >> 16),
            "resourceVersion": (1_000_000 + r.below(9_000_000) + version).to_string(),
            "generation": generation,
            "creationTimestamp": timestamp(created),
            "labels": {"app": name, "team": namespace},
        },
        "spec": {
            "replicas": replicas,
            "paused": r.below(50) == 0,
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
            },
        },
        "status": {
            "replicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": replicas,
            "observedGeneration": generation,
            "conditions": [
                {
                    "type": "Available",
                    "status": if ready == replicas { "True" } else { "False" },
                    "lastTransitionTime": timestamp(available),
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "lastTransitionTime": timestamp(progressed),
                },
            ],
        },
    })
}

/// Two versions of one object that between them change every family: the other strategy
/// type, `rollingUpdate` in the other form (so its families lose and gain a member),
/// every number, flag, timestamp and condition status changed.
fn all_families_changed(i: usize, flip: bool) -> Value {
    let mut v = deployment(i, 0);
    if flip {
        v["metadata"]["generation"] = json!(1000);
        v["metadata"]["creationTimestamp"] = json!("2020-01-01T00:00:00Z");
        v["spec"]["replicas"] = json!(1000);
        v["spec"]["paused"] = json!(!v["spec"]["paused"].as_bool().unwrap_or(false));
        // The other strategy type, and the rollingUpdate fields in the other form
        // (integer vs percentage: separate families).
        let percent = v["spec"]["strategy"]["rollingUpdate"]["maxSurge"].is_string();
        let (surge, unavailable) = if percent {
            (json!(3), json!(2))
        } else {
            (json!("30%"), json!("20%"))
        };
        v["spec"]["strategy"] = json!({
            "type": "Recreate",
            "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable},
        });
        for k in [
            "replicas",
            "readyReplicas",
            "availableReplicas",
            "updatedReplicas",
            "observedGeneration",
        ] {
            v["status"][k] = json!(1000);
        }
        for c in v["status"]["conditions"]
            .as_array_mut()
            .expect("conditions")
        {
            c["status"] = json!("Unknown");
            c["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        }
    }
    v
}

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "?".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

struct Fixture {
    renderer: Renderer,
    res: ResourceInfo,
    store: Store,
    stream: StreamId,
    objects: usize,
    /// Version 1 and 2 of the churned 1% of the objects.
    churn: [Vec<RenderedObject>; 2],
    /// Two versions of one object that between them change every family.
    dirty_all: [RenderedObject; 2],
}

impl Fixture {
    fn build(objects: usize) -> Fixture {
        let renderer = Renderer::new(FlattenOptions::default());
        let res = ResourceInfo::from_kind("Deployment", "apps");
        let mut store = Store::new();
        let stream = store.add_stream();

        let rss_before = rss_kib();
        let start = Instant::now();
        let mut json_bytes = 0;
        store.apply(stream, StoreEvent::Init);
        for i in 0..objects {
            let v = deployment(i, 0);
            json_bytes += serde_json::to_vec(&v).expect("serializable").len();
            let (o, _) = renderer.render(&v, &res, None).expect("renders");
            store.apply(stream, StoreEvent::InitApply(o));
        }
        store.apply(stream, StoreEvent::InitDone);
        let built = start.elapsed();
        let rss_built = rss_kib();
        let snap = store.snapshot();
        let rss_cached = rss_kib();
        let stats = store.stream_stats(stream);
        let per_series = |after: Option<u64>| match (rss_before, after) {
            (Some(a), Some(b)) => format!(
                "{:.0} B/series",
                b.saturating_sub(a) as f64 * 1024.0 / stats.series as f64
            ),
            _ => "?".into(),
        };
        eprintln!(
            "store: {} objects, {} series, {} families, {} exposition bytes ({:.1} MiB, {:.1} B/series); \
             {:.1} MiB of object JSON; built in {:.2?}",
            stats.objects,
            stats.series,
            store.families(),
            snap.len,
            snap.len as f64 / 1048576.0,
            snap.len as f64 / stats.series as f64,
            json_bytes as f64 / 1048576.0,
            built,
        );
        eprintln!(
            "rss: {} before, {} after building ({}), {} after the first snapshot ({})",
            mib(rss_before),
            mib(rss_built),
            per_series(rss_built),
            mib(rss_cached),
            per_series(rss_cached),
        );
        run::write_facts(
            "store",
            &serde_json::json!({
                "objects": stats.objects,
                "series": stats.series,
                "families": store.families(),
                "exposition_bytes": snap.len,
            }),
        );
        drop(snap);

        let churned = (objects / 100).max(1);
        let step = objects / churned;
        let churn = [1, 2].map(|version| {
            (0..churned)
                .map(|k| {
                    let v = deployment(k * step, version);
                    renderer.render(&v, &res, None).expect("renders").0
                })
                .collect()
        });
        let dirty_all = [true, false].map(|flip| {
            let v = all_families_changed(objects / 2, flip);
            renderer.render(&v, &res, None).expect("renders").0
        });
        let mut f = Fixture {
            renderer,
            res,
            store,
            stream,
            objects,
            churn,
            dirty_all,
        };
        f.check();
        f
    }

    /// The scenarios do what they say: an unchanged store shares every chunk, the churn
    /// dirties some families and the all-dirty pair every family.
    fn check(&mut self) {
        let a = self.store.snapshot();
        let b = self.store.snapshot();
        assert_eq!(fresh_chunks(&a, &b), 0, "an unchanged store changed");
        for o in self.churn[0].clone() {
            self.store.apply(self.stream, StoreEvent::Apply(o));
        }
        let c = self.store.snapshot();
        let churned = fresh_chunks(&b, &c);
        let families = c.families.len();
        assert!(churned > 0 && churned < families, "churn dirtied {churned}");
        self.store
            .apply(self.stream, StoreEvent::Apply(self.dirty_all[0].clone()));
        let d = self.store.snapshot();
        assert_eq!(d.families.len(), c.families.len());
        assert_eq!(fresh_chunks(&c, &d), families, "not every family dirty");
        self.store
            .apply(self.stream, StoreEvent::Apply(self.dirty_all[1].clone()));
        assert_eq!(fresh_chunks(&d, &self.store.snapshot()), families);
        eprintln!(
            "scenarios: 1% churn = {} objects re-concatenating {churned} of {} families; \
             all-dirty = 1 object re-concatenating all {}",
            self.churn[0].len(),
            families,
            families,
        );
    }
}

/// How many families' text differs between two snapshots of the same families.
fn fresh_chunks(old: &Snapshot, new: &Snapshot) -> usize {
    assert_eq!(old.families.len(), new.families.len());
    new.families
        .iter()
        .zip(&old.families)
        .filter(|(n, o)| n.header != o.header || n.lines != o.lines)
        .count()
}

fn write_chunks(out: &mut Vec<u8>, chunks: &[Bytes]) {
    out.clear();
    for c in chunks {
        out.extend_from_slice(c);
    }
}

fn scrape(c: &mut Criterion, f: &mut Fixture) {
    let len = f.store.snapshot().len;
    let source = f.store.snapshot().to_vec();
    let mut out: Vec<u8> = Vec::with_capacity(len);
    out.extend_from_slice(&source); // fault the pages in before any timing

    let mut g = c.benchmark_group("scrape");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(15)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(len as u64));

    g.bench_function("memcpy", |b| {
        b.iter(|| {
            out.clear();
            out.extend_from_slice(black_box(&source));
            black_box(out.len())
        })
    });

    g.bench_function("cached", |b| {
        b.iter(|| {
            let snap = f.store.snapshot();
            write_chunks(&mut out, &snap.chunks());
            black_box(out.len())
        })
    });
    g.bench_function("cached_snapshot_only", |b| {
        b.iter(|| black_box(f.store.snapshot()))
    });

    // Each iteration applies the other version of the churned objects (untimed), then
    // times the scrape.
    let mut turn = 0;
    let mut churn_then = |b: &mut criterion::Bencher, write: bool| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                turn ^= 1;
                for o in f.churn[turn].clone() {
                    f.store.apply(f.stream, StoreEvent::Apply(o));
                }
                let t = Instant::now();
                let snap = f.store.snapshot();
                if write {
                    write_chunks(&mut out, &snap.chunks());
                }
                black_box(out.len());
                drop(snap);
                total += t.elapsed();
            }
            total
        })
    };
    g.bench_function("after_1pct_churn", |b| churn_then(b, true));
    g.bench_function("after_1pct_churn_snapshot_only", |b| churn_then(b, false));

    let mut turn = 0;
    let mut dirty_then = |b: &mut criterion::Bencher, write: bool| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                turn ^= 1;
                let o = f.dirty_all[turn].clone();
                f.store.apply(f.stream, StoreEvent::Apply(o));
                let t = Instant::now();
                let snap = f.store.snapshot();
                if write {
                    write_chunks(&mut out, &snap.chunks());
                }
                black_box(out.len());
                drop(snap);
                total += t.elapsed();
            }
            total
        })
    };
    g.bench_function("all_dirty", |b| dirty_then(b, true));
    g.bench_function("all_dirty_snapshot_only", |b| dirty_then(b, false));

    // The server's gzip path: level 1 over the chunks, into a buffer sized as it does.
    let snap = f.store.snapshot();
    let gzip = |chunks: &[Bytes]| {
        let mut enc = flate2::write::GzEncoder::new(
            Vec::with_capacity(len / 8 + 64),
            flate2::Compression::fast(),
        );
        for c in chunks {
            enc.write_all(c).expect("in memory");
        }
        enc.finish().expect("in memory")
    };
    let compressed = gzip(&snap.chunks()).len();
    eprintln!(
        "gzip level 1: {len} bytes -> {compressed} bytes ({:.1}x)",
        len as f64 / compressed as f64
    );
    g.bench_function("gzip_fast", |b| {
        b.iter(|| black_box(gzip(&snap.chunks()).len()))
    });
    drop(snap);

    // The server's gzip path as it is: families deflated once and reused while unchanged
    // (`gzip_snapshot` + `Store::cache_gzip`), pieces written into one buffer.
    let cache_all = |store: &mut Store| {
        let snap = store.snapshot();
        let (_, fresh) = gzip_snapshot(&snap, b"").expect("in memory");
        for (n, v, p) in fresh {
            store.cache_gzip(&n, v, p);
        }
    };
    cache_all(&mut f.store);
    g.bench_function("gzip_unchanged", |b| {
        b.iter(|| {
            let snap = f.store.snapshot();
            let (chunks, fresh) = gzip_snapshot(&snap, b"").expect("in memory");
            assert!(fresh.is_empty());
            write_chunks(&mut out, &chunks);
            black_box(out.len())
        })
    });
    let mut turn = 0;
    g.bench_function("gzip_after_1pct_churn", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                turn ^= 1;
                for o in f.churn[turn].clone() {
                    f.store.apply(f.stream, StoreEvent::Apply(o));
                }
                let t = Instant::now();
                let snap = f.store.snapshot();
                let (chunks, fresh) = gzip_snapshot(&snap, b"").expect("in memory");
                for (n, v, p) in fresh {
                    f.store.cache_gzip(&n, v, p);
                }
                write_chunks(&mut out, &chunks);
                black_box(out.len());
                total += t.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn render(c: &mut Criterion, f: &mut Fixture) {
    let v = deployment(f.objects / 3, 0);
    let json = serde_json::to_vec(&v).expect("serializable");
    let dynamic: kube::api::DynamicObject = serde_json::from_slice(&json).expect("an object");

    let mut g = c.benchmark_group("render");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .throughput(Throughput::Bytes(json.len() as u64));
    g.bench_function("serde_parse", |b| {
        b.iter(|| black_box(serde_json::from_slice::<Value>(black_box(&json)).expect("json")))
    });
    g.bench_function("render", |b| {
        b.iter(|| {
            black_box(
                f.renderer
                    .render(black_box(&v), &f.res, None)
                    .expect("renders"),
            )
        })
    });
    // The watcher's conversion of kube's DynamicObject to the Value it renders.
    g.bench_function("dynamic_object_to_value", |b| {
        b.iter(|| black_box(serde_json::to_value(black_box(&dynamic)).expect("json")))
    });
    g.finish();

    let mut g = c.benchmark_group("apply");
    g.sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    // Alternate two versions of one object, so that every apply replaces changed lines.
    let versions = [1, 2].map(|version| {
        let v = deployment(f.objects / 3, version);
        f.renderer.render(&v, &f.res, None).expect("renders").0
    });
    let mut turn = 0;
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_object", |b| {
        b.iter_batched(
            || {
                turn ^= 1;
                versions[turn].clone()
            },
            |o| f.store.apply(f.stream, StoreEvent::Apply(o)),
            BatchSize::SmallInput,
        )
    });
    let mut turn = 0;
    g.throughput(Throughput::Elements(f.churn[0].len() as u64));
    g.bench_function("1pct_churn", |b| {
        b.iter_batched(
            || {
                turn ^= 1;
                f.churn[turn].clone()
            },
            |objects| {
                for o in objects {
                    f.store.apply(f.stream, StoreEvent::Apply(o));
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn main() {
    let objects = run::size("KFE_BENCH_OBJECTS", FULL_OBJECTS, TEST_OBJECTS);
    let mut c = Criterion::default().configure_from_args();
    let mut f = Fixture::build(objects);
    scrape(&mut c, &mut f);
    render(&mut c, &mut f);
    c.final_summary();
}
