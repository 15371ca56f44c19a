//! The live exporter as a process: its memory at 100 000 objects and its scrape latency
//! under churn (issue 6). Not a criterion bench: a plain `main` that drives the real
//! binary against the project's fake Kubernetes API server and measures it from outside.
//!
//! # Set-up
//!
//! This process is the driver. It runs the fake API server (`tests/support/fake_api.rs`)
//! on a tokio runtime with the eight kinds of the synthetic workload
//! (`support/workload.rs`: 55% Pods, 20% Deployments, 5% Nodes, 20% custom resources of
//! five kinds; the custom resources are registered as plain resources, without a CRD, so
//! the exporter flattens them without a schema, like the `flatten` bench), applies the
//! objects, writes a kubeconfig, and starts the exporter binary
//! (`CARGO_BIN_EXE_kube-field-exporter serve --kubeconfig F --resource ... --listen
//! 127.0.0.1:PORT`, default page size 500) as a child process. Scrapes are plain HTTP/1.1
//! GETs on a `TcpStream` from the driver's main thread, without gzip; a scrape's latency is
//! the time from connecting to the last body byte received.
//!
//! # Memory (goals: RSS ≤ 1.5 × exposition bytes + 24 B per series; peak ≤ 1.5 × steady)
//!
//! `KFE_LIVE_OBJECTS` objects (default 100 000, about 3.9M series). The exporter starts
//! against the populated fake; the time until `/readyz` answers 200 is the initial list.
//! At that moment the child's `VmHWM` (`/proc/<pid>/status`, the kernel's high-water mark
//! of its resident memory) is the **peak during the initial list**. Then a few full
//! scrapes: the first body is parsed, and everything but the `kube_field_exporter_*`
//! families is the objects' exposition (its bytes, HELP/TYPE lines included, and its
//! sample lines = series; the series are cross-checked against the `series` self-metric).
//! After a pause, `VmRSS` is the **steady state**. One more scrape reads the exporter's own
//! `kube_field_exporter_process_resident_memory_bytes`, which is compared with `VmRSS`. The
//! `VmHWM` after the scrapes is reported separately (a scrape may raise it; the issue's
//! peak is the one of the initial list). An exporter with the same resources and no
//! objects is measured first, to show the fixed part of the RSS.
//!
//! # Churn (goal: p99 scrape latency with 1 000 updates/s ≤ 1.2 × idle p99)
//!
//! A second exporter on a smaller store, `KFE_CHURN_OBJECTS` (default 26 000, about 1M
//! series; the 3.9M-series body is about 460 MB a scrape). `KFE_CHURN_SCRAPES` (default 40)
//! sequential scrapes per mode, `KFE_CHURN_GAP_MS` (default 100) apart: idle (nothing
//! changes) and churn (a driver thread applies 1 000 object updates per second to the
//! fake: every 50 ms, the updates due so far; object `i % n` in its next version, so every
//! integer of its spec and status really changes). The two modes alternate in
//! `KFE_CHURN_BLOCKS` (default 4) blocks each, so that whatever else runs on the machine
//! weighs on both alike. After each churn block the exporter's
//! `watch_events_total{type="apply"}` must have risen by every update applied (the time
//! it took to catch up is reported) before the next idle block starts. Reported: p50, p99
//! and max of both, and churn p99 / idle p99; with 40 scrapes, p99 is the slowest scrape
//! (nearest rank). Also the exporter's own `last_scrape_duration_seconds` (the part of a
//! scrape spent assembling the body under the store lock, before it is sent), and the CPU
//! used by the exporter and by the driver in each mode.
//!
//! # Caveats
//!
//! - The machine this was written on has 2 cores. The driver (fake API server serializing
//!   watch events and list pages, the update thread, the scraping client) runs beside the
//!   exporter and competes with it for them; CPU seconds of both are reported.
//! - RSS counts the pages the exporter touched, including memory that glibc malloc keeps
//!   after it was freed; this bench cannot tell that from live data. (Checked once by
//!   hand: `malloc_trim(0)` through gdb on the steady-state exporter at 100 000 objects
//!   returned 11 MB of 876 MB, so there the steady state is live data.) The peak is the
//!   kernel's `VmHWM`: it counts pages that were resident only briefly, too.
//! - The fake API server is not a real one (no protobuf, no etcd, no API priority and
//!   fairness); only the exporter's side is measured.
//!
//! # Running
//!
//! `cargo bench --bench live` (about a minute after the build on a 2-core machine). `KFE_BENCH_OUT=DIR` also writes
//! `DIR/live.json` with every figure. Under `cargo test --benches` (no `--bench` argument)
//! it runs with 500 objects, 300 churn objects, 5 scrapes and 2 s of churn in one block,
//! and asserts that the exporter became ready, served series, reported its RSS and saw
//! every update.

#[allow(dead_code)]
#[path = "../tests/support/fake_api.rs"]
mod fake_api;
#[path = "support/run.rs"]
mod run;
#[path = "support/workload.rs"]
mod workload;

use std::fs::File;
use std::io::{Read, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fake_api::{FakeApi, ResourceDef};
use serde_json::{Value, json};
use workload::{KINDS, Templates};

/// What one run does.
struct Sizes {
    /// Objects of the memory phase.
    objects: usize,
    /// Full scrapes before the steady-state RSS is read.
    steady_scrapes: usize,
    /// Pause before the steady-state RSS is read.
    settle: Duration,
    /// Objects of the churn phase.
    churn_objects: usize,
    /// Scrapes per churn mode (idle, churn).
    churn_scrapes: usize,
    /// Idle and churn scrapes alternate in this many blocks each.
    churn_blocks: usize,
    /// Pause between two churn-phase scrapes.
    gap: Duration,
    /// The churn lasts at least this long.
    min_churn: Duration,
    /// Updates per second during the churn.
    rate: u64,
    /// How long the exporter may take to become ready.
    ready_timeout: Duration,
}

fn env_usize(name: &str) -> Option<usize> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
    )
}

impl Sizes {
    fn new(measuring: bool) -> Sizes {
        let pick = |full: usize, test: usize| if measuring { full } else { test };
        Sizes {
            objects: env_usize("KFE_LIVE_OBJECTS").unwrap_or(pick(100_000, 500)),
            steady_scrapes: pick(3, 2),
            settle: Duration::from_millis(pick(3000, 500) as u64),
            churn_objects: env_usize("KFE_CHURN_OBJECTS").unwrap_or(pick(26_000, 300)),
            churn_scrapes: env_usize("KFE_CHURN_SCRAPES").unwrap_or(pick(40, 5)),
            churn_blocks: env_usize("KFE_CHURN_BLOCKS").unwrap_or(pick(4, 1)),
            gap: Duration::from_millis(env_usize("KFE_CHURN_GAP_MS").unwrap_or(100) as u64),
            min_churn: Duration::from_secs(pick(0, 2) as u64),
            rate: 1000,
            ready_timeout: Duration::from_secs(pick(900, 60) as u64),
        }
    }
}

// ---------------------------------------------------------------------------------------
// /proc
// ---------------------------------------------------------------------------------------

/// Resident memory of a process, from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    /// VmRSS in bytes.
    rss: u64,
    /// VmHWM (peak VmRSS) in bytes.
    hwm: u64,
}

fn proc_mem(pid: &str) -> Mem {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"))
            * 1024
    };
    Mem {
        rss: kb("VmRSS:"),
        hwm: kb("VmHWM:"),
    }
}

/// User + system CPU seconds of a process (`/proc/<pid>/stat` fields 14 and 15, in
/// USER_HZ = 100 ticks).
fn proc_cpu(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (tick(11) + tick(12)) as f64 / 100.0
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

fn mem_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

// ---------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------

/// A response read off the wire.
struct Resp {
    status: u16,
    /// The body, when it was kept.
    body: Vec<u8>,
    /// The last [`TAIL`] bytes or more of the body (where the self-metrics are), when
    /// the body was not kept.
    tail: Vec<u8>,
    /// Body bytes received.
    len: usize,
    /// From connecting to the last body byte.
    elapsed: Duration,
}

/// How much of the end of a body is kept when the body is not.
const TAIL: usize = 64 * 1024;

impl Resp {
    /// The end of the body: at least its last [`TAIL`] bytes.
    fn tail(&self) -> &[u8] {
        if self.body.is_empty() {
            &self.tail
        } else {
            &self.body[self.body.len().saturating_sub(TAIL)..]
        }
    }
}

enum Framing {
    Length(usize),
    Chunked(ChunkState),
    Eof,
}

enum ChunkState {
    /// Reading a chunk-size line.
    Size(Vec<u8>),
    /// Bytes of chunk data left.
    Data(usize),
    /// Bytes of the CRLF after a chunk left.
    DataEnd(usize),
    /// Reading trailer lines after the last chunk.
    Trailer(Vec<u8>),
    Done,
}

/// The body decoder: takes the bytes after the header, keeps or counts them.
struct BodyReader {
    framing: Framing,
    keep: bool,
    body: Vec<u8>,
    tail: Vec<u8>,
    len: usize,
}

impl BodyReader {
    fn take(&mut self, data: &[u8]) {
        if self.keep {
            self.body.extend_from_slice(data);
        } else {
            self.tail.extend_from_slice(data);
            if self.tail.len() > 2 * TAIL {
                self.tail.drain(..self.tail.len() - TAIL);
            }
        }
        self.len += data.len();
    }

    fn done(&self) -> bool {
        match &self.framing {
            Framing::Length(n) => self.len >= *n,
            Framing::Chunked(ChunkState::Done) => true,
            _ => false,
        }
    }

    fn feed(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        let bad = |what: &str| std::io::Error::other(format!("bad chunked body: {what}"));
        while !data.is_empty() {
            match &mut self.framing {
                Framing::Length(n) => {
                    let take = (*n - self.len).min(data.len());
                    let (now, rest) = data.split_at(take);
                    self.take(now);
                    data = rest;
                    if self.done() {
                        return Ok(());
                    }
                }
                Framing::Eof => {
                    self.take(data);
                    return Ok(());
                }
                Framing::Chunked(state) => match state {
                    ChunkState::Size(line) => {
                        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                            line.extend_from_slice(data);
                            return Ok(());
                        };
                        line.extend_from_slice(&data[..nl]);
                        data = &data[nl + 1..];
                        let text = std::str::from_utf8(line).map_err(|_| bad("size line"))?;
                        let hex = text.split(';').next().unwrap_or("").trim();
                        let size = usize::from_str_radix(hex, 16).map_err(|_| bad(text))?;
                        *state = if size == 0 {
                            ChunkState::Trailer(Vec::new())
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    ChunkState::Data(left) => {
                        let take = (*left).min(data.len());
                        *left -= take;
                        if *left == 0 {
                            *state = ChunkState::DataEnd(2);
                        }
                        let (now, rest) = data.split_at(take);
                        data = rest;
                        self.take(now);
                    }
                    ChunkState::DataEnd(left) => {
                        let take = (*left).min(data.len());
                        *left -= take;
                        data = &data[take..];
                        if *left == 0 {
                            *state = ChunkState::Size(Vec::new());
                        }
                    }
                    ChunkState::Trailer(line) => {
                        let Some(nl) = data.iter().position(|&b| b == b'\n') else {
                            line.extend_from_slice(data);
                            return Ok(());
                        };
                        line.extend_from_slice(&data[..nl]);
                        data = &data[nl + 1..];
                        if line.iter().all(|&b| b == b'\r') {
                            *state = ChunkState::Done;
                        } else {
                            line.clear();
                        }
                    }
                    ChunkState::Done => return Ok(()),
                },
            }
        }
        Ok(())
    }
}

/// `GET path` on a new connection (`Connection: close`, no `Accept-Encoding`). The body
/// is kept only when `keep`; its length is always counted.
fn http_get(addr: SocketAddr, path: &str, keep: bool, timeout: Duration) -> std::io::Result<Resp> {
    let start = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_nodelay(true)?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )?;
    let mut buf = vec![0u8; 1 << 20];
    let mut head: Vec<u8> = Vec::new();
    let header_end = loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            return Err(std::io::Error::other(
                "connection closed before the headers",
            ));
        }
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if let Some(p) = head[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            break from + p + 4;
        }
        if head.len() > 1 << 16 {
            return Err(std::io::Error::other("headers too long"));
        }
    };
    let text = String::from_utf8_lossy(&head[..header_end]).into_owned();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {text:?}")))?;
    let mut framing = Framing::Eof;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "content-length" {
            let n = v
                .parse()
                .map_err(|_| std::io::Error::other(format!("bad content-length {v}")))?;
            framing = Framing::Length(n);
        } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            framing = Framing::Chunked(ChunkState::Size(Vec::new()));
            break;
        }
    }
    let capacity = match framing {
        Framing::Length(n) if keep => n,
        _ => 0,
    };
    let mut body = BodyReader {
        framing,
        keep,
        body: Vec::with_capacity(capacity),
        tail: Vec::new(),
        len: 0,
    };
    body.feed(&head[header_end..])?;
    while !body.done() {
        let n = s.read(&mut buf)?;
        if n == 0 {
            if matches!(body.framing, Framing::Eof) {
                break;
            }
            return Err(std::io::Error::other("connection closed mid-body"));
        }
        body.feed(&buf[..n])?;
    }
    Ok(Resp {
        status,
        elapsed: start.elapsed(),
        len: body.len,
        body: body.body,
        tail: body.tail,
    })
}

// ---------------------------------------------------------------------------------------
// Parsing /metrics
// ---------------------------------------------------------------------------------------

/// What one `/metrics` body says.
#[derive(Debug, Default, Clone)]
struct Scraped {
    /// Sample lines of the objects' families.
    series: u64,
    /// Bytes of the objects' families (HELP/TYPE lines included).
    exposition_bytes: u64,
    /// Bytes of the `kube_field_exporter_*` families.
    self_bytes: u64,
    /// Families of the objects.
    families: u64,
    /// Sum of `kube_field_exporter_series`.
    self_series: f64,
    /// Sum of `kube_field_exporter_objects`.
    self_objects: f64,
    /// `kube_field_exporter_process_resident_memory_bytes`.
    self_rss: Option<f64>,
    /// Sum of `kube_field_exporter_watch_events_total{type="apply"}`.
    apply_events: f64,
    /// Sum of `kube_field_exporter_watch_restarts_total`.
    restarts: f64,
    /// Sum of `kube_field_exporter_watch_errors_total`.
    errors: f64,
    /// `kube_field_exporter_last_scrape_duration_seconds`: the previous scrape's time to
    /// assemble its body (snapshot under the store lock, self-metrics), not to send it.
    last_assembly: Option<f64>,
}

const SELF: &[u8] = b"kube_field_exporter_";

fn parse_metrics(body: &[u8]) -> Scraped {
    let mut s = Scraped::default();
    for line in body.split(|&b| b == b'\n') {
        if line.is_empty() {
            continue;
        }
        let bytes = line.len() as u64 + 1;
        let is_self = line.starts_with(SELF)
            || ((line.starts_with(b"# HELP ") || line.starts_with(b"# TYPE "))
                && line[7..].starts_with(SELF));
        if !is_self {
            s.exposition_bytes += bytes;
            if line.starts_with(b"# TYPE ") {
                s.families += 1;
            } else if !line.starts_with(b"#") {
                s.series += 1;
            }
            continue;
        }
        s.self_bytes += bytes;
        if line.starts_with(b"#") {
            continue;
        }
        let line = String::from_utf8_lossy(line);
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let value: f64 = value.parse().unwrap_or(f64::NAN);
        let name = series.split('{').next().unwrap_or(series);
        match &name[SELF.len()..] {
            "series" => s.self_series += value,
            "objects" => s.self_objects += value,
            "process_resident_memory_bytes" => s.self_rss = Some(value),
            "watch_events_total" if series.contains("type=\"apply\"") => s.apply_events += value,
            "watch_restarts_total" => s.restarts += value,
            "watch_errors_total" => s.errors += value,
            "last_scrape_duration_seconds" => s.last_assembly = Some(value),
            _ => {}
        }
    }
    s
}

// ---------------------------------------------------------------------------------------
// The exporter process
// ---------------------------------------------------------------------------------------

/// The exporter binary as a child process; killed on drop (also when the bench panics).
struct Exporter {
    child: Child,
    pid: String,
    addr: SocketAddr,
    log: PathBuf,
    started: Instant,
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr")
}

impl Exporter {
    fn start(kubeconfig: &Path, log: PathBuf) -> Exporter {
        let addr = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kube-field-exporter"));
        cmd.arg("serve").arg("--kubeconfig").arg(kubeconfig);
        for k in KINDS {
            cmd.arg("--resource").arg(k.resource_arg());
        }
        let err = File::create(&log).expect("create the exporter's log file");
        let child = cmd
            .arg("--listen")
            .arg(addr.to_string())
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(err))
            .spawn()
            .expect("start the exporter binary");
        Exporter {
            pid: child.id().to_string(),
            child,
            addr,
            log,
            started: Instant::now(),
        }
    }

    fn mem(&self) -> Mem {
        proc_mem(&self.pid)
    }

    fn cpu(&self) -> f64 {
        proc_cpu(&self.pid)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\nexporter log ({}), last lines:\n{}",
            self.log.display(),
            self.log_tail()
        )
    }

    /// Poll `/readyz` every 50 ms; the time from the start until it answered 200.
    fn wait_ready(&mut self, timeout: Duration) -> Duration {
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                self.fail(&format!(
                    "the exporter exited with {status} before it was ready"
                ));
            }
            let last = match http_get(self.addr, "/readyz", true, Duration::from_secs(5)) {
                Ok(r) if r.status == 200 => return self.started.elapsed(),
                Ok(r) => String::from_utf8_lossy(&r.body).into_owned(),
                Err(e) => e.to_string(),
            };
            if self.started.elapsed() > timeout {
                self.fail(&format!("not ready after {timeout:?}: {last}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// One `/metrics` scrape; panics unless it is a 200.
    fn scrape(&self, keep: bool) -> Resp {
        let r = http_get(self.addr, "/metrics", keep, Duration::from_secs(120))
            .unwrap_or_else(|e| self.fail(&format!("GET /metrics: {e}")));
        if r.status != 200 {
            self.fail(&format!("GET /metrics: HTTP {}", r.status));
        }
        r
    }

    /// A scrape, parsed.
    fn scrape_parsed(&self) -> Scraped {
        parse_metrics(&self.scrape(true).body)
    }
}

// ---------------------------------------------------------------------------------------
// The fake API server
// ---------------------------------------------------------------------------------------

/// A fake serving the workload's kinds (and CRDs, which the exporter watches for schemas).
fn start_fake(rt: &tokio::runtime::Runtime) -> FakeApi {
    let mut defs: Vec<ResourceDef> = KINDS
        .iter()
        .map(|k| ResourceDef::new(k.group, k.version, k.plural, k.kind, k.namespaced))
        .collect();
    defs.push(ResourceDef::crds());
    rt.block_on(FakeApi::start_with(defs))
}

/// Apply objects `0..n` (version 0), then compact the fake's history (so it does not keep
/// a second copy of every object). Returns the objects per kind.
fn populate(fake: &FakeApi, templates: &Templates, n: usize) -> Vec<usize> {
    let mut per_kind = vec![0; KINDS.len()];
    for i in 0..n {
        let o = templates.object(i, 0);
        per_kind[o.kind] += 1;
        fake.apply(o.value);
    }
    fake.expire_history();
    per_kind
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("kfe-live-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create the temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

const MIB: f64 = 1024.0 * 1024.0;

fn mib(b: u64) -> f64 {
    b as f64 / MIB
}

/// The exporter with the same resources and no objects.
struct Empty {
    rss: u64,
    hwm: u64,
    ready: Duration,
}

fn empty_phase(rt: &tokio::runtime::Runtime, dir: &TempDir) -> Empty {
    let fake = start_fake(rt);
    let kubeconfig = dir.write("kubeconfig-empty", &fake.kubeconfig_yaml());
    let mut ex = Exporter::start(&kubeconfig, dir.0.join("exporter-empty.log"));
    let ready = ex.wait_ready(Duration::from_secs(60));
    let s = ex.scrape_parsed();
    assert_eq!(s.series, 0, "no objects, no series");
    std::thread::sleep(Duration::from_millis(300));
    let m = ex.mem();
    Empty {
        rss: m.rss,
        hwm: m.hwm,
        ready,
    }
}

struct MemoryResult {
    objects: usize,
    per_kind: Vec<usize>,
    populate: Duration,
    ready: Duration,
    list_cpu: f64,
    /// CPU seconds of this process (mostly the fake API server) during the initial list.
    driver_list_cpu: f64,
    at_ready: Mem,
    scraped: Scraped,
    body_bytes: usize,
    scrape_times: Vec<Duration>,
    steady: Mem,
    self_rss: f64,
    rss_after_self_scrape: u64,
}

fn memory_phase(
    rt: &tokio::runtime::Runtime,
    templates: &Templates,
    dir: &TempDir,
    sizes: &Sizes,
) -> MemoryResult {
    let fake = start_fake(rt);
    let t = Instant::now();
    let per_kind = populate(&fake, templates, sizes.objects);
    let populate = t.elapsed();
    eprintln!(
        "memory: {} objects in the fake API server ({:.1} s); starting the exporter",
        sizes.objects,
        populate.as_secs_f64()
    );
    let kubeconfig = dir.write("kubeconfig-memory", &fake.kubeconfig_yaml());
    let driver_cpu0 = proc_cpu("self");
    let mut ex = Exporter::start(&kubeconfig, dir.0.join("exporter-memory.log"));
    let ready = ex.wait_ready(sizes.ready_timeout);
    let at_ready = ex.mem();
    let list_cpu = ex.cpu();
    let driver_list_cpu = proc_cpu("self") - driver_cpu0;
    eprintln!(
        "memory: ready after {:.1} s, VmHWM {:.0} MiB, VmRSS {:.0} MiB; scraping",
        ready.as_secs_f64(),
        mib(at_ready.hwm),
        mib(at_ready.rss)
    );

    let mut scraped = Scraped::default();
    let mut body_bytes = 0;
    let mut scrape_times = Vec::new();
    for k in 0..sizes.steady_scrapes {
        let r = ex.scrape(k == 0);
        scrape_times.push(r.elapsed);
        if k == 0 {
            body_bytes = r.len;
            scraped = parse_metrics(&r.body);
        }
    }
    std::thread::sleep(sizes.settle);
    let steady = ex.mem();
    let own = ex.scrape_parsed();
    let rss_after_self_scrape = ex.mem().rss;
    let self_rss = own
        .self_rss
        .unwrap_or_else(|| ex.fail("no kube_field_exporter_process_resident_memory_bytes"));
    assert_eq!(
        scraped.self_objects as usize, sizes.objects,
        "the exporter holds every object"
    );
    assert_eq!(
        scraped.self_series as u64, scraped.series,
        "the series self-metric counts the sample lines"
    );
    assert!(scraped.series > 0, "series are exported");
    drop(ex);
    drop(fake);
    MemoryResult {
        objects: sizes.objects,
        per_kind,
        populate,
        ready,
        list_cpu,
        driver_list_cpu,
        at_ready,
        scraped,
        body_bytes,
        scrape_times,
        steady,
        self_rss,
        rss_after_self_scrape,
    }
}

/// Latencies of one mode.
/// Latencies of one mode, in ms, in the order measured.
struct Latencies {
    ms: Vec<f64>,
    sorted: Vec<f64>,
}

impl Latencies {
    fn new(ms: Vec<f64>) -> Latencies {
        let mut sorted = ms.clone();
        sorted.sort_by(f64::total_cmp);
        Latencies { ms, sorted }
    }

    /// Nearest rank.
    fn pct(&self, p: f64) -> f64 {
        if self.sorted.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    fn max(&self) -> f64 {
        self.sorted.last().copied().unwrap_or(f64::NAN)
    }

    fn mean(&self) -> f64 {
        self.ms.iter().sum::<f64>() / self.ms.len() as f64
    }
}

/// One mode's scrapes, accumulated over its blocks.
#[derive(Default)]
struct Mode {
    /// Full-body latencies, ms, in the order measured.
    ms: Vec<f64>,
    /// The exporter's own assembly times, ms (each scrape reports the previous one's, so
    /// the first scrape of each block reports none).
    assembly_ms: Vec<f64>,
    /// Wall time of the mode's blocks.
    time: Duration,
    exporter_cpu: f64,
    driver_cpu: f64,
}

impl Mode {
    /// One block: `n` scrapes `gap` apart (and at least until `min` has passed).
    fn block(&mut self, ex: &Exporter, n: usize, gap: Duration, min: Duration) {
        let (start, ex_cpu, my_cpu) = (Instant::now(), ex.cpu(), proc_cpu("self"));
        let mut k = 0;
        while k < n || start.elapsed() < min {
            let r = ex.scrape(false);
            self.ms.push(r.elapsed.as_secs_f64() * 1e3);
            if k > 0
                && let Some(a) = parse_metrics(r.tail()).last_assembly
            {
                self.assembly_ms.push(a * 1e3);
            }
            k += 1;
            std::thread::sleep(gap);
        }
        self.time += start.elapsed();
        self.exporter_cpu += ex.cpu() - ex_cpu;
        self.driver_cpu += proc_cpu("self") - my_cpu;
    }
}

struct ChurnResult {
    objects: usize,
    series: u64,
    body_bytes: usize,
    blocks: usize,
    idle: Mode,
    churn: Mode,
    /// Updates applied to the fake.
    applied: u64,
    /// Time over which they were applied (sum over the blocks).
    update_time: Duration,
    /// Updates the exporter had seen at the end of each churn block, summed.
    seen_at_end: u64,
    /// Updates the exporter saw in all.
    seen: u64,
    /// The longest wait after a churn block until the exporter had seen every update.
    catch_up: Duration,
    restarts: f64,
    errors: f64,
}

/// Apply `rate` updates per second from this thread until `stop`: update number `u`
/// (counting from `first`) is object `u % n` in version `1 + u / n`, so each update moves
/// every integer of its spec and status by one. Returns the updates applied and the time
/// from the start to the last one.
fn update_loop(
    fake: &FakeApi,
    templates: &Templates,
    n: usize,
    first: u64,
    rate: u64,
    stop: &AtomicBool,
) -> (u64, Duration) {
    let start = Instant::now();
    let mut done = 0u64;
    let mut last = Duration::ZERO;
    while !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
        while done < due {
            let u = first + done;
            fake.apply(
                templates
                    .object((u % n as u64) as usize, 1 + u / n as u64)
                    .value,
            );
            done += 1;
        }
        last = start.elapsed();
        std::thread::sleep(Duration::from_millis(50));
    }
    (done, last)
}

fn churn_phase(
    rt: &tokio::runtime::Runtime,
    templates: &Templates,
    dir: &TempDir,
    sizes: &Sizes,
) -> ChurnResult {
    let n = sizes.churn_objects;
    let fake = start_fake(rt);
    populate(&fake, templates, n);
    let kubeconfig = dir.write("kubeconfig-churn", &fake.kubeconfig_yaml());
    let mut ex = Exporter::start(&kubeconfig, dir.0.join("exporter-churn.log"));
    ex.wait_ready(sizes.ready_timeout);
    // Warm up (the first scrape touches every buffer), then the count of watch events
    // before anything changes.
    ex.scrape(false);
    let before = ex.scrape_parsed();
    assert_eq!(
        before.self_objects as usize, n,
        "the exporter holds every object"
    );
    let blocks = sizes.churn_blocks.max(1);
    let per_block = sizes.churn_scrapes.div_ceil(blocks);
    let min = sizes.min_churn / blocks as u32;
    eprintln!(
        "churn: {n} objects, {} series; {blocks} × ({per_block} idle scrapes, then {per_block} \
         while {} objects/s are updated)",
        before.series, sizes.rate
    );
    let seen = |s: &Scraped| (s.apply_events - before.apply_events) as u64;
    let (mut idle, mut churn) = (Mode::default(), Mode::default());
    let (mut applied, mut update_time, mut seen_at_end) = (0u64, Duration::ZERO, 0u64);
    let mut catch_up = Duration::ZERO;
    let mut last = before.clone();
    for _ in 0..blocks {
        idle.block(&ex, per_block, sizes.gap, Duration::ZERO);
        let stop = AtomicBool::new(false);
        let (done, took) = std::thread::scope(|scope| {
            let updater =
                scope.spawn(|| update_loop(&fake, templates, n, applied, sizes.rate, &stop));
            // Let the first batches arrive before measuring.
            std::thread::sleep(Duration::from_millis(200));
            churn.block(&ex, per_block, sizes.gap, min);
            stop.store(true, Ordering::Relaxed);
            updater.join().expect("the update thread")
        });
        applied += done;
        update_time += took;
        // Every update must reach the exporter (its apply events rise by `applied`)
        // before the next idle block.
        let t = Instant::now();
        last = ex.scrape_parsed();
        seen_at_end += seen(&last).saturating_sub(applied - done);
        while seen(&last) < applied && t.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(250));
            last = ex.scrape_parsed();
        }
        catch_up = catch_up.max(t.elapsed());
    }
    drop(ex);
    drop(fake);
    ChurnResult {
        objects: n,
        series: before.series,
        body_bytes: before.exposition_bytes as usize + before.self_bytes as usize,
        blocks,
        idle,
        churn,
        applied,
        update_time,
        seen_at_end,
        seen: seen(&last),
        catch_up,
        restarts: last.restarts,
        errors: last.errors,
    }
}

// ---------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let measuring = run::measuring();
    let sizes = Sizes::new(measuring);
    let run_start = Instant::now();
    let nproc = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(nproc.max(2))
        .enable_all()
        .build()
        .expect("tokio runtime");
    let templates = Templates::load();
    let dir = TempDir::new();
    let cpu = cpu_model();
    eprintln!(
        "live bench ({}): {} objects, churn {} objects at {}/s; {nproc} CPUs ({cpu})",
        if measuring { "measuring" } else { "test mode" },
        sizes.objects,
        sizes.churn_objects,
        sizes.rate
    );

    let empty = empty_phase(&rt, &dir);
    let m = memory_phase(&rt, &templates, &dir, &sizes);
    let c = churn_phase(&rt, &templates, &dir, &sizes);
    let total = run_start.elapsed();

    // Memory figures.
    let series = m.scraped.series;
    let sf = series as f64;
    let bytes_per_series = m.scraped.exposition_bytes as f64 / sf;
    let rss_per_series = m.steady.rss as f64 / sf;
    let net_rss_per_series = m.steady.rss.saturating_sub(empty.rss) as f64 / sf;
    let goal_per_series = 1.5 * bytes_per_series + 24.0;
    let peak = m.at_ready.hwm;
    let peak_ratio = peak as f64 / m.steady.rss as f64;
    let self_vs_proc = m.self_rss / m.rss_after_self_scrape as f64;
    // Churn figures.
    let idle = Latencies::new(c.idle.ms.clone());
    let churn = Latencies::new(c.churn.ms.clone());
    let (ia, ca) = (
        Latencies::new(c.idle.assembly_ms.clone()),
        Latencies::new(c.churn.assembly_ms.clone()),
    );
    let ratio = churn.pct(99.0) / idle.pct(99.0);
    let rate = c.applied as f64 / c.update_time.as_secs_f64();
    let verdict = |ok: bool| if ok { "met" } else { "NOT met" };

    println!();
    println!("== kube-field-exporter live bench ==");
    println!(
        "machine: {nproc} CPUs ({cpu}), {:.1} GiB RAM. The driver (fake API server, update \
         thread, scraper) shares these CPUs with the exporter.",
        mib(mem_total()) / 1024.0
    );
    println!();
    println!("-- memory: {} objects --", m.objects);
    let kinds: Vec<String> = KINDS
        .iter()
        .zip(&m.per_kind)
        .map(|(k, n)| format!("{} {n}", k.plural))
        .collect();
    println!("objects by kind:            {}", kinds.join(", "));
    println!(
        "series:                     {series} in {} families",
        m.scraped.families
    );
    println!(
        "exposition:                 {} bytes ({:.1} MiB; body {:.1} MiB with self-metrics), {bytes_per_series:.1} B/series",
        m.scraped.exposition_bytes,
        mib(m.scraped.exposition_bytes),
        mib(m.body_bytes as u64)
    );
    println!(
        "fake populated in {:.1} s; exporter ready (initial list) after {:.1} s, using {:.1} CPU s \
         (the driver, serving the list: {:.1} CPU s)",
        m.populate.as_secs_f64(),
        m.ready.as_secs_f64(),
        m.list_cpu,
        m.driver_list_cpu
    );
    println!(
        "empty exporter:             VmRSS {:.1} MiB (VmHWM {:.1} MiB, ready in {:.2} s)",
        mib(empty.rss),
        mib(empty.hwm),
        empty.ready.as_secs_f64()
    );
    println!(
        "at ready:                   VmRSS {:.1} MiB, VmHWM {:.1} MiB (peak of the initial list)",
        mib(m.at_ready.rss),
        mib(peak)
    );
    let times: Vec<String> = m
        .scrape_times
        .iter()
        .map(|t| format!("{:.0} ms", t.as_secs_f64() * 1e3))
        .collect();
    println!("full scrapes:               {}", times.join(", "));
    println!(
        "steady state:               VmRSS {:.1} MiB; VmHWM after the scrapes {:.1} MiB",
        mib(m.steady.rss),
        mib(m.steady.hwm)
    );
    println!(
        "self-metric RSS:            {:.1} MiB ({:.3}× VmRSS read right after that scrape)",
        m.self_rss / MIB,
        self_vs_proc
    );
    println!(
        "RSS per series:             {rss_per_series:.1} B ({net_rss_per_series:.1} B above the empty exporter); goal ≤ 1.5 × {bytes_per_series:.1} + 24 = {goal_per_series:.1} B: {}",
        verdict(rss_per_series <= goal_per_series)
    );
    println!(
        "peak / steady:              {peak_ratio:.2} (goal ≤ 1.5: {})",
        verdict(peak_ratio <= 1.5)
    );
    println!();
    println!(
        "-- churn: {} objects, {} series, {:.1} MiB a scrape; {} idle and {} churn scrapes, \
         {} ms apart, alternating in {} blocks --",
        c.objects,
        c.series,
        mib(c.body_bytes as u64),
        idle.ms.len(),
        churn.ms.len(),
        sizes.gap.as_millis(),
        c.blocks
    );
    println!(
        "updates:                    {} applied in {:.1} s = {rate:.0}/s (target {}); the exporter \
         had seen {} at the ends of the churn blocks, {} in all (longest catch-up {:.2} s)",
        c.applied,
        c.update_time.as_secs_f64(),
        sizes.rate,
        c.seen_at_end,
        c.seen,
        c.catch_up.as_secs_f64()
    );
    for (what, l) in [("idle", &idle), ("churn", &churn)] {
        println!(
            "{:<28}p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, mean {:.1} ms",
            format!("{what} scrape latency:"),
            l.pct(50.0),
            l.pct(99.0),
            l.max(),
            l.mean()
        );
    }
    println!(
        "churn p99 / idle p99:       {ratio:.2} (goal ≤ 1.2: {}); p50 ratio {:.2}",
        verdict(ratio <= 1.2),
        churn.pct(50.0) / idle.pct(50.0)
    );
    println!(
        "exporter's assembly time:   idle p50 {:.1} ms, max {:.1} ms; churn p50 {:.1} ms, max {:.1} ms \
         (its last_scrape_duration_seconds: snapshot under the store lock + self-metrics)",
        ia.pct(50.0),
        ia.max(),
        ca.pct(50.0),
        ca.max()
    );
    let (idle_secs, churn_secs) = (c.idle.time.as_secs_f64(), c.churn.time.as_secs_f64());
    println!(
        "CPU (share of one core):    exporter idle {:.2}, churn {:.2}; driver idle {:.2}, churn {:.2}",
        c.idle.exporter_cpu / idle_secs,
        c.churn.exporter_cpu / churn_secs,
        c.idle.driver_cpu / idle_secs,
        c.churn.driver_cpu / churn_secs
    );
    println!(
        "watch restarts {}, watch errors {} (both should be 0)",
        c.restarts, c.errors
    );
    println!();
    println!("whole run: {:.0} s", total.as_secs_f64());

    let churn = json!({
        "objects": c.objects,
        "series": c.series,
        "body_bytes": c.body_bytes,
        "scrapes": idle.ms.len(),
        "churn_scrapes": churn.ms.len(),
        "blocks": c.blocks,
        "gap_ms": sizes.gap.as_millis() as u64,
        "target_updates_per_second": sizes.rate,
        "updates_per_second": rate,
        "updates_applied": c.applied,
        "updates_seen_at_end": c.seen_at_end,
        "updates_seen": c.seen,
        "catch_up_seconds": c.catch_up.as_secs_f64(),
        "idle_p50_ms": idle.pct(50.0),
        "idle_p99_ms": idle.pct(99.0),
        "idle_max_ms": idle.max(),
        "churn_p50_ms": churn.pct(50.0),
        "churn_p99_ms": churn.pct(99.0),
        "churn_max_ms": churn.max(),
        "ratio": ratio,
        "goal_met": ratio <= 1.2,
        "idle_ms": c.idle.ms,
        "churn_ms": c.churn.ms,
        "idle_assembly_ms": c.idle.assembly_ms,
        "churn_assembly_ms": c.churn.assembly_ms,
        "exporter_cpu_seconds_idle": c.idle.exporter_cpu,
        "exporter_cpu_seconds_churn": c.churn.exporter_cpu,
        "driver_cpu_seconds_idle": c.idle.driver_cpu,
        "driver_cpu_seconds_churn": c.churn.driver_cpu,
        "idle_seconds": idle_secs,
        "churn_seconds": churn_secs,
        "watch_restarts": c.restarts,
        "watch_errors": c.errors,
    });
    let report = json!({
        "bench": "live",
        "mode": if measuring { "measure" } else { "test" },
        "date": jiff::Timestamp::now().to_string(),
        "machine": {"nproc": nproc, "cpu": cpu, "mem_total_bytes": mem_total()},
        "objects": m.objects,
        "objects_by_kind": KINDS.iter().zip(&m.per_kind)
            .map(|(k, n)| (k.resource_arg(), json!(n)))
            .collect::<serde_json::Map<String, Value>>(),
        "series": series,
        "families": m.scraped.families,
        "exposition_bytes": m.scraped.exposition_bytes,
        "body_bytes": m.body_bytes,
        "empty_rss_bytes": empty.rss,
        "rss_at_ready_bytes": m.at_ready.rss,
        "peak_rss_bytes": peak,
        "steady_rss_bytes": m.steady.rss,
        "peak_after_scrapes_bytes": m.steady.hwm,
        "self_metric_rss_bytes": m.self_rss,
        "self_metric_vs_vmrss": self_vs_proc,
        "populate_seconds": m.populate.as_secs_f64(),
        "ready_seconds": m.ready.as_secs_f64(),
        "initial_list_cpu_seconds": m.list_cpu,
        "driver_list_cpu_seconds": m.driver_list_cpu,
        "full_scrape_seconds": m.scrape_times.iter().map(Duration::as_secs_f64).collect::<Vec<_>>(),
        "rss_per_series": rss_per_series,
        "net_rss_per_series": net_rss_per_series,
        "exposition_bytes_per_series": bytes_per_series,
        "rss_goal_per_series": goal_per_series,
        "rss_goal_met": rss_per_series <= goal_per_series,
        "peak_ratio": peak_ratio,
        "peak_goal_met": peak_ratio <= 1.5,
        "churn": churn,
        "run_seconds": total.as_secs_f64(),
    });
    run::write_facts("live", &report);

    // Sanity (both modes; the goals themselves are reported, not asserted).
    assert!(series > 0, "the exporter served series");
    assert!(m.steady.rss > 0 && m.self_rss > 0.0, "RSS was read");
    assert!(
        (0.5..2.0).contains(&self_vs_proc),
        "the RSS self-metric ({}) agrees with VmRSS ({})",
        m.self_rss,
        m.rss_after_self_scrape
    );
    assert!(c.applied > 0, "updates were applied");
    assert_eq!(
        c.seen, c.applied,
        "every update reached the exporter as a watch event"
    );
    assert_eq!(c.restarts, 0.0, "no relists during the bench");
}
