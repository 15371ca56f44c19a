//! The exporter's view of itself: per-resource state (for `/readyz`, the status page and
//! logs) and the self-metrics under `kube_field_exporter_` (DESIGN.md §3).
//!
//! [`Telemetry`] is plain data updated by the watchers and the server under a lock the
//! caller owns; rendering reads it together with the store's per-stream statistics.
//! Process metrics come from `/proc/self` (Linux); elsewhere they are left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::encode;
use crate::flatten::Dropped;

/// The prefix of every self-metric.
pub const PREFIX: &str = "kube_field_exporter_";

/// Where a resource stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Not resolved: discovery has not run, or the resource (its CRD) is not served yet.
    Waiting,
    /// Resolved and listing; not every stream has finished its first list.
    Syncing,
    /// Every stream finished its first list.
    Ready,
    /// Will not be watched (a metric kind conflict, or not listable/watchable).
    Failed,
    /// The same resource as an earlier `--resource`: watched once, there.
    Duplicate,
}

impl Phase {
    fn as_str(&self) -> &'static str {
        match self {
            Phase::Waiting => "waiting",
            Phase::Syncing => "syncing",
            Phase::Ready => "ready",
            Phase::Failed => "failed",
            Phase::Duplicate => "duplicate",
        }
    }
}

/// One stream's progress (a resource, or a resource in one namespace).
#[derive(Debug, Clone, Default)]
pub struct StreamStatus {
    /// The namespace watched, `None` for all.
    pub namespace: Option<String>,
    /// Finished a first list since the resource was (re)resolved.
    pub synced: bool,
    /// Objects listed in the current initial list so far.
    pub listed: u64,
    /// Objects and series, copied from the store at render time.
    pub objects: usize,
    /// See `objects`.
    pub series: usize,
    /// Series dropped, by reason, for the objects currently held.
    pub dropped: Dropped,
}

/// One `--resource`.
#[derive(Debug, Clone)]
pub struct ResourceStatus {
    /// The spec as written: the `resource` label.
    pub spec: String,
    /// What it resolved to (`deployments.v1.apps`).
    pub resolved: Option<String>,
    /// The kind and metric kind name.
    pub kind: Option<(String, String)>,
    /// Where its schema comes from: `crd`, `openapi` or `none`.
    pub schema: Option<&'static str>,
    /// Its phase.
    pub phase: Phase,
    /// Why it is not ready (or failed), for `/readyz` and the status page.
    pub reason: Option<String>,
    /// Its streams.
    pub streams: Vec<StreamStatus>,
    /// Watch events by type.
    pub events: BTreeMap<&'static str, u64>,
    /// Relists after the first one, and watcher restarts (version changes).
    pub restarts: u64,
    /// Watch errors by reason.
    pub errors: BTreeMap<&'static str, u64>,
    /// Objects that could not be flattened.
    pub object_errors: u64,
    /// Time of the last watch event.
    pub last_event: Option<SystemTime>,
    /// The last error and when.
    pub last_error: Option<(SystemTime, String)>,
}

impl ResourceStatus {
    /// A resource waiting for its first discovery.
    pub fn new(spec: &str) -> Self {
        ResourceStatus {
            spec: spec.to_string(),
            resolved: None,
            kind: None,
            schema: None,
            phase: Phase::Waiting,
            reason: Some("waiting for API discovery".into()),
            streams: Vec::new(),
            events: BTreeMap::new(),
            restarts: 0,
            errors: BTreeMap::new(),
            object_errors: 0,
            last_event: None,
            last_error: None,
        }
    }

    /// Record an error (counted by `reason`, kept as the last error).
    pub fn error(&mut self, reason: &'static str, message: String) {
        *self.errors.entry(reason).or_default() += 1;
        self.last_error = Some((SystemTime::now(), message));
    }

    /// Count an event.
    pub fn event(&mut self, kind: &'static str) {
        *self.events.entry(kind).or_default() += 1;
        self.last_event = Some(SystemTime::now());
    }

    /// Move to Ready when every stream has synced.
    pub fn update_phase(&mut self) {
        if self.phase == Phase::Syncing && self.streams.iter().all(|s| s.synced) {
            self.phase = Phase::Ready;
            self.reason = None;
        }
    }
}

/// Scrape statistics.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScrapeStats {
    /// Scrapes served.
    pub count: u64,
    /// Duration of the last one (until the body was ready).
    pub last_duration: Duration,
    /// Bytes of the last one (before compression).
    pub last_bytes: usize,
}

/// Everything the exporter knows about itself.
#[derive(Debug, Clone)]
pub struct Telemetry {
    /// The resources, in flag order.
    pub resources: Vec<ResourceStatus>,
    /// Discovery failures (whole discovery; group versions are logged).
    pub discovery_error: Option<String>,
    /// Why CRD schemas cannot be read, if they cannot.
    pub schema_error: Option<String>,
    /// Scrapes.
    pub scrapes: ScrapeStats,
    /// When the process started.
    pub started: SystemTime,
}

impl Telemetry {
    /// Telemetry for these specs.
    pub fn new<'a>(specs: impl IntoIterator<Item = &'a str>) -> Self {
        Telemetry {
            resources: specs.into_iter().map(ResourceStatus::new).collect(),
            discovery_error: None,
            schema_error: None,
            scrapes: ScrapeStats::default(),
            started: SystemTime::now(),
        }
    }

    /// Readiness: `Ok` when every resource is ready (or a duplicate), else the reasons.
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let reasons: Vec<String> = self
            .resources
            .iter()
            .filter(|r| !matches!(r.phase, Phase::Ready | Phase::Duplicate))
            .map(|r| {
                let mut s = format!("{}: {}", r.spec, r.phase.as_str());
                if let Some(reason) = &r.reason {
                    let _ = write!(s, ": {reason}");
                }
                if let Some((_, e)) = &r.last_error {
                    let _ = write!(s, " (last error: {e})");
                }
                s
            })
            .collect();
        if reasons.is_empty() {
            Ok(())
        } else {
            Err(reasons)
        }
    }

    /// Append the self-metrics in the text format.
    pub fn render(&self, out: &mut Vec<u8>) {
        let res = &self.resources;
        family(out, "build_info", "gauge", "Build information.", |out| {
            let labels = [("version", env!("CARGO_PKG_VERSION"))];
            sample(out, "build_info", &labels, 1.0);
        });
        family(
            out,
            "resource_ready",
            "gauge",
            "1 when every watch of the resource finished its initial list.",
            |out| {
                for r in res {
                    let v = f64::from(u8::from(matches!(r.phase, Phase::Ready | Phase::Duplicate)));
                    sample(out, "resource_ready", &[("resource", &r.spec)], v);
                }
            },
        );
        family(
            out,
            "resource_phase",
            "gauge",
            "The resource's phase (waiting, syncing, ready, failed, duplicate) as a state set.",
            |out| {
                for r in res {
                    for p in ["waiting", "syncing", "ready", "failed", "duplicate"] {
                        let v = f64::from(u8::from(r.phase.as_str() == p));
                        sample(
                            out,
                            "resource_phase",
                            &[("resource", &r.spec), ("phase", p)],
                            v,
                        );
                    }
                }
            },
        );
        family(
            out,
            "resource_info",
            "gauge",
            "What a --resource resolved to.",
            |out| {
                for r in res {
                    if let (Some(full), Some((kind, metric_kind))) = (&r.resolved, &r.kind) {
                        let labels = [
                            ("resource", r.spec.as_str()),
                            ("resolved", full),
                            ("kind", kind),
                            ("metric_kind", metric_kind),
                            ("schema", r.schema.unwrap_or("none")),
                        ];
                        sample(out, "resource_info", &labels, 1.0);
                    }
                }
            },
        );
        family(
            out,
            "objects",
            "gauge",
            "Objects held, per resource.",
            |out| {
                for r in res {
                    let n: usize = r.streams.iter().map(|s| s.objects).sum();
                    sample(out, "objects", &[("resource", &r.spec)], n as f64);
                }
            },
        );
        family(
            out,
            "series",
            "gauge",
            "Series exported, per resource.",
            |out| {
                for r in res {
                    let n: usize = r.streams.iter().map(|s| s.series).sum();
                    sample(out, "series", &[("resource", &r.spec)], n as f64);
                }
            },
        );
        family(
            out,
            "dropped_series",
            "gauge",
            "Series not exported for the objects currently held, by reason.",
            |out| {
                for r in res {
                    let mut d = Dropped::default();
                    for s in &r.streams {
                        d.add(&s.dropped);
                    }
                    for (reason, n) in d.by_reason() {
                        let labels = [("resource", r.spec.as_str()), ("reason", reason)];
                        sample(out, "dropped_series", &labels, n as f64);
                    }
                }
            },
        );
        family(
            out,
            "watch_events_total",
            "counter",
            "Watch events received, by type.",
            |out| {
                for r in res {
                    for (t, n) in &r.events {
                        let labels = [("resource", r.spec.as_str()), ("type", t)];
                        sample(out, "watch_events_total", &labels, *n as f64);
                    }
                }
            },
        );
        family(
            out,
            "watch_restarts_total",
            "counter",
            "Relists after the first list, and watches restarted at a new version.",
            |out| {
                for r in res {
                    sample(
                        out,
                        "watch_restarts_total",
                        &[("resource", &r.spec)],
                        r.restarts as f64,
                    );
                }
            },
        );
        family(
            out,
            "watch_errors_total",
            "counter",
            "Watch and list errors, by reason (forbidden, not_found, expired, server_error, transport, ...).",
            |out| {
                for r in res {
                    for (reason, n) in &r.errors {
                        let labels = [("resource", r.spec.as_str()), ("reason", reason)];
                        sample(out, "watch_errors_total", &labels, *n as f64);
                    }
                }
            },
        );
        family(
            out,
            "object_errors_total",
            "counter",
            "Objects that could not be flattened (their previous series are kept).",
            |out| {
                for r in res {
                    sample(
                        out,
                        "object_errors_total",
                        &[("resource", &r.spec)],
                        r.object_errors as f64,
                    );
                }
            },
        );
        family(
            out,
            "last_event_timestamp_seconds",
            "gauge",
            "Unix time of the last watch event.",
            |out| {
                for r in res {
                    if let Some(t) = r.last_event {
                        sample(
                            out,
                            "last_event_timestamp_seconds",
                            &[("resource", &r.spec)],
                            unix(t),
                        );
                    }
                }
            },
        );
        let s = self.scrapes;
        family(
            out,
            "scrapes_total",
            "counter",
            "Scrapes of /metrics served.",
            |out| {
                sample(out, "scrapes_total", &[], s.count as f64);
            },
        );
        family(
            out,
            "last_scrape_duration_seconds",
            "gauge",
            "Time the previous scrape took to assemble its body.",
            |out| {
                sample(
                    out,
                    "last_scrape_duration_seconds",
                    &[],
                    s.last_duration.as_secs_f64(),
                )
            },
        );
        family(
            out,
            "last_scrape_bytes",
            "gauge",
            "Size of the previous scrape's body before compression.",
            |out| sample(out, "last_scrape_bytes", &[], s.last_bytes as f64),
        );
        family(
            out,
            "process_start_time_seconds",
            "gauge",
            "Unix time the process started.",
            |out| sample(out, "process_start_time_seconds", &[], unix(self.started)),
        );
        if let Some(p) = ProcessStats::read() {
            family(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory of the process.",
                |out| {
                    sample(
                        out,
                        "process_resident_memory_bytes",
                        &[],
                        p.rss_bytes as f64,
                    )
                },
            );
            family(
                out,
                "process_cpu_seconds_total",
                "counter",
                "User and system CPU time of the process.",
                |out| sample(out, "process_cpu_seconds_total", &[], p.cpu_seconds),
            );
        }
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn family(out: &mut Vec<u8>, name: &str, kind: &str, help: &str, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(b"# HELP ");
    out.extend_from_slice(PREFIX.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    encode::escape_help(out, help);
    out.extend_from_slice(b"\n# TYPE ");
    out.extend_from_slice(PREFIX.as_bytes());
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
    let header = out.len();
    body(out);
    if out.len() == header {
        out.truncate(start); // no samples: no family
    }
}

fn sample(out: &mut Vec<u8>, name: &str, labels: &[(&str, &str)], value: f64) {
    out.extend_from_slice(PREFIX.as_bytes());
    out.extend_from_slice(name.as_bytes());
    if !labels.is_empty() {
        out.push(b'{');
        for (i, (l, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(l.as_bytes());
            out.extend_from_slice(b"=\"");
            encode::escape_label_value(out, v);
            out.push(b'"');
        }
        out.push(b'}');
    }
    out.push(b' ');
    encode::write_value(out, value);
    out.push(b'\n');
}

/// Resident memory and CPU time of this process, from `/proc/self`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    /// VmRSS.
    pub rss_bytes: u64,
    /// utime + stime.
    pub cpu_seconds: f64,
}

impl ProcessStats {
    /// Read them; `None` where `/proc` is not available.
    pub fn read() -> Option<Self> {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        Self::parse(&status, &stat)
    }

    /// Parse `/proc/self/status` (VmRSS in kB) and `/proc/self/stat` (utime and stime,
    /// fields 14 and 15, in clock ticks of 1/100 s: USER_HZ is 100 on Linux).
    pub fn parse(status: &str, stat: &str) -> Option<Self> {
        let rss_kb: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        // The command name (field 2) may contain spaces: fields are counted after its ')'.
        let after = &stat[stat.rfind(')')? + 1..];
        let fields: Vec<&str> = after.split_whitespace().collect();
        // `after` starts at field 3 (state), so field N is at index N - 3.
        let utime: u64 = fields.get(11)?.parse().ok()?;
        let stime: u64 = fields.get(12)?.parse().ok()?;
        Some(ProcessStats {
            rss_bytes: rss_kb * 1024,
            cpu_seconds: (utime + stime) as f64 / 100.0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let status = "Name:\tx\nVmRSS:\t   2048 kB\nThreads: 3\n";
        let stat = "123 (a b) S 1 2 3 4 5 6 7 8 9 10 250 150 0 0 20 0 3 0 100 1000 500";
        let p = ProcessStats::parse(status, stat).unwrap();
        assert_eq!(p.rss_bytes, 2048 * 1024);
        assert_eq!(p.cpu_seconds, 4.0);
        assert!(ProcessStats::parse("", stat).is_none());
    }

    #[test]
    fn this_process_has_stats_on_linux() {
        if cfg!(target_os = "linux") {
            let p = ProcessStats::read().expect("/proc/self readable");
            assert!(p.rss_bytes > 0);
        }
    }

    #[test]
    fn readiness_names_each_waiting_resource() {
        let mut t = Telemetry::new(["deploy", "pods"]);
        let err = t.readiness().unwrap_err();
        assert_eq!(err.len(), 2);
        assert!(err[0].starts_with("deploy: waiting"), "{err:?}");
        for r in &mut t.resources {
            r.phase = Phase::Syncing;
            r.streams = vec![StreamStatus::default()];
        }
        t.resources[0].streams[0].synced = true;
        t.resources[0].update_phase();
        t.resources[1].update_phase();
        t.resources[1].error("forbidden", "403 Forbidden".into());
        let err = t.readiness().unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(
            err[0].contains("pods: syncing") && err[0].contains("403"),
            "{err:?}"
        );
        t.resources[1].streams[0].synced = true;
        t.resources[1].update_phase();
        assert_eq!(t.readiness(), Ok(()));
    }

    #[test]
    fn self_metrics_are_typed_and_empty_families_are_left_out() {
        let mut t = Telemetry::new(["deploy"]);
        t.resources[0].error("forbidden", "x".into());
        let mut out = Vec::new();
        t.render(&mut out);
        let s = String::from_utf8(out).unwrap();
        assert!(s.contains("# TYPE kube_field_exporter_watch_errors_total counter\n"));
        assert!(s.contains(
            "kube_field_exporter_watch_errors_total{resource=\"deploy\",reason=\"forbidden\"} 1\n"
        ));
        assert!(s.contains("kube_field_exporter_resource_ready{resource=\"deploy\"} 0\n"));
        assert!(s.contains(
            "kube_field_exporter_resource_phase{resource=\"deploy\",phase=\"waiting\"} 1\n"
        ));
        assert!(
            !s.contains("resource_info"),
            "no resolution, no info family"
        );
        assert!(!s.contains("watch_events_total"), "no events, no family");
    }
}
