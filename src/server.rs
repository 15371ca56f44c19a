//! The HTTP server (hyper 1.x, hyper-util's auto builder): `GET /metrics`, `/healthz`,
//! `/readyz` and `/` (a status page). A thin layer over [`Shared`]: a scrape takes the
//! store lock only to snapshot (re-concatenating the families that changed since the
//! last scrape), then assembles, compresses and writes the body without any lock.
//!
//! Failure modes: a client that does not send its headers within
//! [`HEADER_READ_TIMEOUT`] is disconnected; other connection errors end that connection
//! only. On shutdown the listener stops accepting and in-flight requests are finished
//! (up to [`SHUTDOWN_GRACE`]).

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

use crate::encode::CONTENT_TYPE;
use crate::gzip::gzip_snapshot;
use crate::telemetry::Telemetry;
use crate::watch::Shared;

/// How long a client may take to send its request headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may run after shutdown is asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

type Body = BoxBody<Bytes, Infallible>;

/// Serve until `shutdown` resolves, then finish in-flight requests.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let shared = shared.clone();
                let svc = hyper::service::service_fn(move |req| handle(req, shared.clone()));
                let conn = builder.serve_connection(TokioIo::new(stream), svc).into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    info!("shutting down: finishing in-flight requests");
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("in-flight requests did not finish within {SHUTDOWN_GRACE:?}");
    }
}

/// Route one request.
pub async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Body>, Infallible> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n");
        r.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return Ok(r);
    }
    let resp = match req.uri().path() {
        "/metrics" => metrics(&req, &shared).await,
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" => {
            let t = shared.telemetry();
            match t.readiness() {
                Ok(()) => text(StatusCode::OK, "ok\n"),
                Err(reasons) => text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("not ready:\n{}\n", reasons.join("\n")),
                ),
            }
        }
        "/" => {
            let t = {
                let stats = {
                    let store = shared.store();
                    shared.stream_stats(&store)
                };
                let mut t = shared.telemetry();
                shared.copy_stats(&mut t, &stats);
                t.clone()
            };
            let mut r = Response::new(full(status_page(&t)));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            r
        }
        _ => text(StatusCode::NOT_FOUND, "not found: try /metrics\n"),
    };
    Ok(resp)
}

async fn metrics(req: &Request<Incoming>, shared: &Arc<Shared>) -> Response<Body> {
    let start = Instant::now();
    let (snapshot, stats) = {
        let mut store = shared.store();
        let snapshot = store.snapshot();
        let stats = shared.stream_stats(&store);
        (snapshot, stats)
    };
    let mut own = Vec::with_capacity(8192);
    {
        let mut t = shared.telemetry();
        shared.copy_stats(&mut t, &stats);
        t.render(&mut own);
    }
    let len = snapshot.len + own.len();
    let gzip = accepts_gzip(req);
    let chunks = if gzip {
        match tokio::task::spawn_blocking(move || gzip_snapshot(&snapshot, &own)).await {
            Ok(Ok((chunks, fresh))) => {
                // Keep the families deflated this time for the next gzip scrapes.
                let mut store = shared.store();
                for (name, version, piece) in fresh {
                    store.cache_gzip(&name, version, piece);
                }
                chunks
            }
            _ => {
                return text(StatusCode::INTERNAL_SERVER_ERROR, "compression failed\n");
            }
        }
    } else {
        let mut chunks = snapshot.chunks();
        chunks.push(Bytes::from(own));
        chunks
    };
    let body_len: usize = chunks.iter().map(Bytes::len).sum();
    let stream = futures::stream::iter(chunks.into_iter().map(|c| Ok(Frame::data(c))));
    let body = StreamBody::new(stream).boxed();
    {
        let mut t = shared.telemetry();
        t.scrapes.count += 1;
        t.scrapes.last_duration = start.elapsed();
        t.scrapes.last_bytes = len;
    }
    let body = if req.method() == Method::HEAD {
        full(Bytes::new())
    } else {
        body
    };
    let mut r = Response::new(body);
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body_len));
    if gzip {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    r
}

/// Whether `Accept-Encoding` allows gzip (`gzip` or `*` with a non-zero q).
pub fn accepts_gzip<B>(req: &Request<B>) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !q_zero
        })
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).boxed()
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut r = Response::new(full(body.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn ago(t: Option<SystemTime>) -> String {
    match t.and_then(|t| SystemTime::now().duration_since(t).ok()) {
        Some(d) => format!("{}s ago", d.as_secs()),
        None => "never".into(),
    }
}

/// The status page: version, then one row per resource.
pub fn status_page(t: &Telemetry) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>kube-field-exporter</title>\
         <style>body{{font-family:sans-serif}}td,th{{padding:2px 8px;text-align:left;\
         vertical-align:top}}</style></head><body><h1>kube-field-exporter {}</h1>\
         <p><a href=\"/metrics\">/metrics</a> · <a href=\"/readyz\">/readyz</a> · \
         <a href=\"/healthz\">/healthz</a></p>",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(e) = &t.discovery_error {
        let _ = write!(s, "<p><b>API discovery failed:</b> {}</p>", html_escape(e));
    }
    if let Some(e) = &t.schema_error {
        let _ = write!(
            s,
            "<p><b>CRD schemas cannot be read</b> (enums and HELP of custom resources come \
             from OpenAPI v3 or the heuristics): {}</p>",
            html_escape(e)
        );
    }
    s.push_str(
        "<table><tr><th>resource</th><th>resolved</th><th>metric kind</th><th>schema</th><th>state</th>\
         <th>objects</th><th>series</th><th>last event</th><th>last error</th></tr>",
    );
    for r in &t.resources {
        let objects: usize = r.streams.iter().map(|x| x.objects).sum();
        let series: usize = r.streams.iter().map(|x| x.series).sum();
        let mut state = format!("{:?}", r.phase).to_lowercase();
        if let Some(reason) = &r.reason {
            let _ = write!(state, ": {reason}");
        }
        if r.streams.iter().any(|s| !s.synced) {
            let listed: u64 = r.streams.iter().map(|s| s.listed).sum();
            let _ = write!(state, " ({listed} objects listed so far)");
        }
        let err = r.last_error.as_ref().map_or_else(String::new, |(when, e)| {
            format!("{} ({})", e, ago(Some(*when)))
        });
        let _ = write!(
            s,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{objects}</td>\
             <td>{series}</td><td>{}</td><td>{}</td></tr>",
            html_escape(&r.spec),
            html_escape(r.resolved.as_deref().unwrap_or("-")),
            html_escape(r.kind.as_ref().map_or("-", |k| k.1.as_str())),
            r.schema.unwrap_or("-"),
            html_escape(&state),
            ago(r.last_event),
            html_escape(&err),
        );
    }
    s.push_str("</table></body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(accept: &str) -> Request<()> {
        Request::builder()
            .header(header::ACCEPT_ENCODING, accept)
            .body(())
            .unwrap()
    }

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(&req("gzip")));
        assert!(accepts_gzip(&req("identity, GZIP;q=0.5")));
        assert!(accepts_gzip(&req("*")));
        assert!(!accepts_gzip(&req("gzip;q=0")));
        assert!(!accepts_gzip(&req("identity")));
        assert!(!accepts_gzip(&Request::new(())));
    }

    #[test]
    fn gzip_snapshots_reuse_cached_families() {
        use std::io::Read as _;
        let r = crate::store::Renderer::new(crate::flatten::FlattenOptions::default());
        let res = crate::flatten::ResourceInfo::from_kind("Deployment", "apps");
        let obj = |n: &str, v: i64| {
            let o = serde_json::json!({"kind": "Deployment", "metadata": {"name": n},
                                       "spec": {"replicas": v, "paused": false}});
            r.render(&o, &res, None).unwrap().0
        };
        let mut store = crate::store::Store::new();
        let id = store.add_stream();
        store.apply(id, crate::store::StoreEvent::Apply(obj("a", 1)));
        let gunzip = |chunks: &[Bytes]| {
            let all: Vec<u8> = chunks.iter().flat_map(|c| c.iter().copied()).collect();
            let mut out = String::new();
            flate2::read::GzDecoder::new(&all[..])
                .read_to_string(&mut out)
                .unwrap();
            out
        };
        let snap = store.snapshot();
        let plain = String::from_utf8(snap.to_vec()).unwrap();
        let (chunks, fresh) = gzip_snapshot(&snap, b"own 1\n").unwrap();
        assert_eq!(gunzip(&chunks), format!("{plain}own 1\n"));
        assert_eq!(fresh.len(), 2, "both families deflated the first time");
        for (n, v, p) in fresh {
            store.cache_gzip(&n, v, p);
        }
        // One family changes: only it is deflated again; the output is still right.
        store.apply(id, crate::store::StoreEvent::Apply(obj("a", 2)));
        let snap = store.snapshot();
        let plain = String::from_utf8(snap.to_vec()).unwrap();
        let (chunks, fresh) = gzip_snapshot(&snap, b"").unwrap();
        assert_eq!(gunzip(&chunks), plain);
        assert!(plain.contains("replicas{name=\"a\"} 2\n"));
        assert_eq!(fresh.len(), 1);
        assert_eq!(&*fresh[0].0, "k8s_deployment_spec_replicas");
        // A piece made for an old version is not kept.
        store.apply(id, crate::store::StoreEvent::Apply(obj("a", 3)));
        let (n, v, p) = fresh.into_iter().next().unwrap();
        store.cache_gzip(&n, v, p);
        let snap = store.snapshot();
        let (chunks, fresh) = gzip_snapshot(&snap, b"").unwrap();
        assert_eq!(fresh.len(), 1, "the stale piece was refused");
        assert!(gunzip(&chunks).contains("replicas{name=\"a\"} 3\n"));
    }

    #[test]
    fn status_page_escapes() {
        let mut t = Telemetry::new(["<deploy>"]);
        t.resources[0].error("forbidden", "a \"b\" & <c>".into());
        let s = status_page(&t);
        assert!(s.contains("&lt;deploy&gt;"));
        assert!(s.contains("a &quot;b&quot; &amp; &lt;c&gt;"));
        assert!(!s.contains("<deploy>"));
    }
}
