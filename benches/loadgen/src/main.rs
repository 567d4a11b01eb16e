//! Open-loop HTTP/1.1 load at a fixed rate, for latency percentiles without coordinated
//! omission: request `i` is due at `start + i / rate`, and its latency is measured from that
//! due time, not from when a connection was free to send it. A slow server therefore shows up
//! as queueing delay in the percentiles instead of silently lowering the offered rate (the
//! mistake of closed-loop tools such as wrk; wrk2 fixes it the same way).
//!
//!     zerohop-loadgen --url http://127.0.0.1:8080/path --rate 5000 --seconds 10 \
//!         [--connections 32] [--header 'name: value']...
//!
//! Prints one JSON object: offered and achieved rate, status counts, errors, percentiles (µs).
//! Sending stops at the end of the window: a server that cannot keep up leaves requests
//! `unsent`, and its percentiles (of the requests sent) are then lower bounds.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    host: String,
    path: String,
    rate: f64,
    seconds: f64,
    connections: usize,
    headers: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut rate = None;
    let mut seconds = 10.0;
    let mut connections = 32;
    let mut headers = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let number = |v: &str| v.parse::<f64>().map_err(|e| format!("{flag} {v}: {e}"));
        match flag.as_str() {
            "--url" => url = Some(value),
            "--rate" => rate = Some(number(&value)?),
            "--seconds" => seconds = number(&value)?,
            "--connections" => {
                connections = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?
            }
            "--header" => headers.push(value),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs are supported")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let rate = rate.ok_or("--rate is required")?;
    if rate <= 0.0 || seconds <= 0.0 || connections == 0 {
        return Err("--rate, --seconds and --connections must be positive".into());
    }
    Ok(Args {
        host: host.to_string(),
        path: if path.is_empty() { "/" } else { path }.to_string(),
        rate,
        seconds,
        connections,
        headers,
    })
}

/// What one connection's thread saw.
#[derive(Default)]
struct Tally {
    latencies_ns: Vec<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: u64,
}

/// One keep-alive connection, reopened after an error.
struct Client {
    host: String,
    request: Vec<u8>,
    stream: Option<TcpStream>,
    buffer: Vec<u8>,
}

impl Client {
    /// Sends the request and reads the whole response; returns its status.
    fn exchange(&mut self) -> Result<u16, String> {
        let stream = match &mut self.stream {
            Some(s) => s,
            None => {
                let s = TcpStream::connect(&self.host).map_err(|e| e.to_string())?;
                s.set_nodelay(true).map_err(|e| e.to_string())?;
                s.set_read_timeout(Some(Duration::from_secs(10)))
                    .map_err(|e| e.to_string())?;
                self.stream.insert(s)
            }
        };
        let result = exchange(stream, &self.request, &mut self.buffer);
        if !matches!(result, Ok((_, true))) {
            self.stream = None;
        }
        result.map(|(status, _)| status)
    }
}

/// Returns the status and whether the connection can be reused.
fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buffer: &mut Vec<u8>,
) -> Result<(u16, bool), String> {
    stream.write_all(request).map_err(|e| e.to_string())?;
    buffer.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buffer.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(buffer.get(..end).unwrap_or_default()).to_lowercase();
        let status = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("malformed status line")?;
        let header = |name: &str| {
            head.lines()
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_string())
        };
        let length: usize = header("content-length")
            .ok_or("response without content-length")?
            .parse()
            .map_err(|_| "bad content-length")?;
        let keep_alive = header("connection").as_deref() != Some("close");
        while buffer.len() < end + 4 + length {
            let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("connection closed in the body".into());
            }
            buffer.extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        return Ok((status, keep_alive));
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).map_or(0.0, |&ns| ns as f64 / 1000.0)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("zerohop-loadgen: {e}");
            return ExitCode::from(2);
        }
    };
    let mut request = format!("GET {} HTTP/1.1\r\nhost: {}\r\n", args.path, args.host);
    for h in &args.headers {
        request.push_str(h);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    let total = (args.rate * args.seconds) as u64;
    let period_ns = 1e9 / args.rate;
    let next = Arc::new(AtomicU64::new(0));
    // Connections open before the clock starts.
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs_f64(args.seconds);
    let workers: Vec<_> = (0..args.connections)
        .map(|_| {
            let next = Arc::clone(&next);
            let mut client = Client {
                host: args.host.clone(),
                request: request.clone().into_bytes(),
                stream: None,
                buffer: Vec::with_capacity(8192),
            };
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                if client.exchange().is_err() {
                    tally.errors += 1;
                }
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return tally;
                    }
                    let due = start + Duration::from_nanos((i as f64 * period_ns) as u64);
                    let now = Instant::now();
                    if now >= end {
                        return tally;
                    }
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    match client.exchange() {
                        Ok(status) => {
                            *tally.statuses.entry(status).or_default() += 1;
                            tally
                                .latencies_ns
                                .push(due.elapsed().as_nanos().try_into().unwrap_or(u64::MAX));
                        }
                        Err(_) => tally.errors += 1,
                    }
                }
            })
        })
        .collect();
    let mut all = Tally::default();
    for worker in workers {
        let Ok(tally) = worker.join() else {
            eprintln!("zerohop-loadgen: a worker thread failed");
            return ExitCode::FAILURE;
        };
        all.latencies_ns.extend(tally.latencies_ns);
        all.errors += tally.errors;
        for (status, n) in tally.statuses {
            *all.statuses.entry(status).or_default() += n;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.latencies_ns.sort_unstable();
    let l = &all.latencies_ns;
    let report = serde_json::json!({
        "offered_rps": args.rate,
        "achieved_rps": l.len() as f64 / elapsed,
        "requests": l.len(),
        "unsent": total.saturating_sub(l.len() as u64 + all.errors),
        "errors": all.errors,
        "statuses": all.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect::<BTreeMap<_, _>>(),
        "p50_us": percentile(l, 50.0),
        "p90_us": percentile(l, 90.0),
        "p99_us": percentile(l, 99.0),
        "p99.9_us": percentile(l, 99.9),
        "max_us": percentile(l, 100.0),
    });
    println!("{report}");
    ExitCode::SUCCESS
}
