//! linktoken-bench-load: the HTTP load client of the gateway benchmark (bench/http/run.sh).
//!
//! Why not oha or wrk alone: every redemption (POST /t/{token}) needs a token nobody used
//! before, and oha picks its URLs from a file at random (repeats) while wrk is closed-loop.
//! This client walks a list of paths in order (each used at most once with --once) and either
//! sends as fast as its connections allow (closed loop: the maximum rate) or at a fixed rate
//! (open loop, see pacing.rs), and prints one JSON object with the rate and latency percentiles.
//!
//! Every connection is a keep-alive HTTP/1.1 connection; latencies run until the whole response
//! body has arrived. Requests due in the first --warmup-seconds are sent but not recorded.

mod pacing;
mod summary;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{handshake, SendRequest};
use hyper::{header, Method, Request};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use summary::StatusCounts;
use tokio::net::TcpStream;

#[derive(Debug, Parser)]
#[command(
    name = "linktoken-bench-load",
    about = "Closed- or open-loop HTTP/1.1 load from a list of paths; prints one JSON result."
)]
struct Args {
    /// Server address (127.0.0.1:PORT).
    #[arg(long)]
    addr: SocketAddr,
    /// Path to request, e.g. /t/ltk_... (repeated for every request).
    #[arg(long, conflicts_with = "paths_file")]
    path: Option<String>,
    /// File with one path per line, walked in order (cycled unless --once).
    #[arg(long)]
    paths_file: Option<PathBuf>,
    /// Use every path at most once; the run ends early when they run out.
    #[arg(long)]
    once: bool,
    /// POST this urlencoded form instead of sending a GET.
    #[arg(long)]
    form: Option<String>,
    /// Keep-alive connections (each has at most one request in flight).
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Fixed request rate (requests per second, open loop); without it: as fast as possible.
    #[arg(long)]
    rate: Option<f64>,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
    /// Tokio worker threads of this client.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

struct Plan {
    addr: SocketAddr,
    paths: Vec<String>,
    once: bool,
    form: Option<Bytes>,
    rate: Option<f64>,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    next: AtomicU64,
}

#[derive(Default)]
struct Recorded {
    latencies_us: Vec<u32>,
    statuses: StatusCounts,
    transport_errors: u64,
    last_done: Option<Instant>,
    ran_out: bool,
}

async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (sender, conn) = handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole response; its status.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    plan: &Plan,
    path: &str,
) -> Result<u16, String> {
    let builder = Request::builder()
        .uri(path)
        .header(header::HOST, plan.addr.to_string())
        .header(header::USER_AGENT, "linktoken-bench-load");
    let req = match &plan.form {
        Some(form) => builder
            .method(Method::POST)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(form.clone())),
        None => builder.method(Method::GET).body(Full::new(Bytes::new())),
    }
    .map_err(|e| e.to_string())?;
    sender.ready().await.map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    resp.into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    Ok(status)
}

/// One connection's share of the run: takes the next request number until the run is over.
async fn drive(plan: Arc<Plan>) -> Recorded {
    let mut rec = Recorded::default();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    let mut free_at = Instant::now();
    loop {
        let i = plan.next.fetch_add(1, Ordering::Relaxed);
        let path = if plan.once {
            match plan.paths.get(i as usize) {
                Some(p) => p,
                None => {
                    rec.ran_out = true;
                    break;
                }
            }
        } else {
            &plan.paths[(i % plan.paths.len() as u64) as usize]
        };
        let due = plan.rate.map(|r| pacing::due(plan.start, i, r));
        match due {
            Some(d) if d >= plan.end => break,
            Some(d) => tokio::time::sleep_until(d.into()).await,
            None if Instant::now() >= plan.end => break,
            None => {}
        }
        if sender.is_none() {
            match connect(plan.addr).await {
                Ok(s) => sender = Some(s),
                Err(e) => {
                    eprintln!("linktoken-bench-load: {e}");
                    rec.transport_errors += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            }
        }
        let sent_at = Instant::now();
        let origin = due.map_or(sent_at, |d| pacing::latency_origin(d, free_at, sent_at));
        let outcome = exchange(sender.as_mut().unwrap(), &plan, path).await;
        let done = Instant::now();
        free_at = done;
        let measured = origin >= plan.measure_from && origin < plan.end;
        match outcome {
            Ok(status) if measured => {
                let us = done.duration_since(origin).as_micros();
                rec.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                rec.statuses.add(status);
                rec.last_done = Some(rec.last_done.map_or(done, |t| t.max(done)));
            }
            Ok(_) => {}
            Err(e) => {
                sender = None;
                if measured {
                    eprintln!("linktoken-bench-load: request failed: {e}");
                    rec.transport_errors += 1;
                }
            }
        }
    }
    rec
}

fn load_paths(args: &Args) -> Result<Vec<String>, String> {
    let paths: Vec<String> = match (&args.path, &args.paths_file) {
        (Some(p), None) => vec![p.clone()],
        (None, Some(f)) => std::fs::read_to_string(f)
            .map_err(|e| format!("{}: {e}", f.display()))?
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        _ => return Err("give --path or --paths-file".into()),
    };
    if paths.is_empty() {
        return Err("no paths to request".into());
    }
    Ok(paths)
}

fn run(args: Args) -> Result<serde_json::Value, String> {
    let paths = load_paths(&args)?;
    if args.connections == 0 || args.seconds <= 0.0 || args.rate.is_some_and(|r| r <= 0.0) {
        return Err("--connections, --seconds and --rate must be positive".into());
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let start = Instant::now() + Duration::from_millis(50);
    let measure_from = start + Duration::from_secs_f64(args.warmup_seconds.max(0.0));
    let plan = Arc::new(Plan {
        addr: args.addr,
        paths,
        once: args.once,
        form: args.form.clone().map(Bytes::from),
        rate: args.rate,
        start,
        measure_from,
        end: measure_from + Duration::from_secs_f64(args.seconds),
        next: AtomicU64::new(0),
    });
    let parts: Vec<Recorded> = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.connections)
            .map(|_| tokio::spawn(drive(plan.clone())))
            .collect();
        let mut parts = Vec::new();
        for t in tasks {
            parts.push(t.await.unwrap_or_default());
        }
        parts
    });
    let mut statuses = StatusCounts::default();
    let mut latencies = Vec::new();
    let mut transport_errors = 0;
    let mut last_done = None::<Instant>;
    let ran_out = parts.iter().any(|p| p.ran_out);
    for p in parts {
        statuses.merge(&p.statuses);
        latencies.extend(p.latencies_us);
        transport_errors += p.transport_errors;
        last_done = match (last_done, p.last_done) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    // A run that ran out of paths early is measured up to its last answer.
    let window = match (ran_out, last_done) {
        (true, Some(t)) => t
            .duration_since(plan.measure_from)
            .as_secs_f64()
            .min(args.seconds),
        _ => args.seconds,
    };
    let answered = statuses.answered();
    let p = summary::percentiles(latencies);
    let pct = |f: fn(&summary::Percentiles) -> f64| p.as_ref().map(f);
    Ok(serde_json::json!({
        "method": if args.form.is_some() { "POST" } else { "GET" },
        "connections": args.connections,
        "target_rate": args.rate,
        "seconds": window,
        "answered": answered,
        "refused": statuses.refused(),
        "transport_errors": transport_errors,
        "ran_out_of_paths": ran_out,
        "rate": if window > 0.0 { answered as f64 / window } else { 0.0 },
        "statuses": statuses.0.iter().map(|(s, n)| (s.to_string(), serde_json::Value::from(*n))).collect::<serde_json::Map<_, _>>(),
        "p50_ms": pct(|p| p.p50),
        "p90_ms": pct(|p| p.p90),
        "p99_ms": pct(|p| p.p99),
        "p999_ms": pct(|p| p.p999),
        "max_ms": pct(|p| p.max),
        "mean_ms": pct(|p| p.mean),
    }))
}

fn main() {
    match run(Args::parse()) {
        Ok(result) => println!("{result}"),
        Err(e) => {
            eprintln!("linktoken-bench-load: {e}");
            std::process::exit(2);
        }
    }
}
