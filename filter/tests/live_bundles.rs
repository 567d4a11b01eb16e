//! The live-bundle path on the in-memory host, driven as Envoy drives it (ticks, callout
//! responses) through its failure cases: a worker whose VM is gone, a callout the host never
//! answers, workers racing for the lease, a bundle that does not load.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)] // a test: fail loudly at the step

use std::rc::Rc;

use zerohop_filter::decision_path::DecisionPath;
use zerohop_filter::host::memory::MemShared;
use zerohop_filter::host::memory::MemoryHost;
use zerohop_filter::host::Level;
use zerohop_filter::live::{LEASE_TTL_MS, TICK_MS};
use zerohop_filter::request::input::HttpRequest;
use zerohop_filter::root::Root;
use zerohop_filter::stream::Flow;
use zerohop_filter::writer::build;

const START_MS: u64 = 1_700_000_000_000;

fn config() -> Vec<u8> {
    serde_json::json!({
        "path": "live/allow",
        "bundle": {
            "service": {"cluster": "bundles", "authority": "bundles.test", "path": "/b.tar.gz", "timeout": "2s"},
            "polling": {"min_delay_seconds": 10, "max_delay_seconds": 20},
        },
    })
    .to_string()
    .into_bytes()
}

/// A bundle whose decision allows (or not), with `revision`.
fn bundle(revision: &str, allowed: bool) -> Vec<u8> {
    let rego = format!("package live\n\nallow := {allowed}\n");
    let path = DecisionPath::parse("live/allow").unwrap();
    build(
        vec![("live.rego".into(), rego.into_bytes())],
        Some(revision),
        &[path],
    )
    .unwrap()
    .targz
}

/// One worker of a proxy: its root and its host, sharing `shared` with the other workers.
struct Worker {
    host: MemoryHost,
    root: Root,
}

impl Worker {
    fn start(shared: &Rc<MemShared>, now_ms: u64) -> Self {
        let host = MemoryHost::with_shared(Rc::clone(shared));
        host.set_now_ms(now_ms);
        host.accept_cluster("bundles");
        let mut root = Root::default();
        assert!(root.configure(&host, "live".into(), Ok(config())));
        Self { host, root }
    }

    fn tick_at(&mut self, now_ms: u64) {
        self.host.set_now_ms(now_ms);
        self.root.tick(&self.host);
    }

    /// Answers this worker's last callout.
    fn answer(&mut self, status: u16, etag: &str, body: Vec<u8>) {
        let token = self.host.callouts().last().unwrap().token;
        self.host.set_response(status, &[("etag", etag)], body);
        self.root.on_callout_response(&self.host, token, 2, 1);
    }

    /// The status a request gets now.
    fn status(&self) -> u16 {
        let mut stream = self.root.stream(7).unwrap();
        self.host.set_request(
            HttpRequest {
                headers: vec![
                    (":method".into(), "GET".into()),
                    (":path".into(), "/".into()),
                ],
                ..HttpRequest::default()
            },
            Vec::new(),
        );
        match stream.on_request_headers(&self.host, true) {
            Flow::Continue => 200,
            Flow::Pause => self.host.reply().unwrap().status,
        }
    }

    fn logged(&self, text: &str) -> bool {
        self.host
            .take_log()
            .iter()
            .any(|(_, line)| line.contains(text))
    }
}

/// A proxy whose first worker fetched, activated and published revision v1 at `START_MS`.
fn running_v1() -> (Rc<MemShared>, Worker) {
    let shared = Rc::new(MemShared::default());
    let mut a = Worker::start(&shared, START_MS);
    a.tick_at(START_MS);
    a.answer(200, "\"e1\"", bundle("v1", true));
    (shared, a)
}

#[test]
fn a_fetched_bundle_is_activated_and_published_for_the_other_workers() {
    let shared = Rc::new(MemShared::default());
    let mut a = Worker::start(&shared, START_MS);
    let mut b = Worker::start(&shared, START_MS);
    assert_eq!(a.status(), 503, "no bundle yet");
    a.tick_at(START_MS);
    b.tick_at(START_MS);
    assert_eq!(a.host.callouts().len(), 1, "the lease holder fetches");
    assert_eq!(b.host.callouts().len(), 0, "the other worker does not");
    a.answer(200, "\"e1\"", bundle("v1", true));
    assert!(a.logged("live: bundle revision \"v1\" active (generation 1, fetched)"));
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 503, "not before its tick");
    b.tick_at(START_MS + TICK_MS);
    assert!(b.logged("live: bundle revision \"v1\" active (generation 1, shared)"));
    assert_eq!(b.status(), 200);
    assert_eq!(b.host.metric("zerohop.bundle.active_generation"), Some(1));
    assert_eq!(a.host.metric("zerohop.bundle.fetches"), Some(1));
}

#[test]
fn the_lease_is_taken_over_after_its_holder_dies() {
    let (shared, _gone) = running_v1();
    let mut b = Worker::start(&shared, START_MS);
    // Worker a's VM is gone: it never ticks again. Until its lease expires, nobody fetches.
    let mut now = START_MS;
    while now < START_MS + LEASE_TTL_MS {
        now += TICK_MS;
        b.tick_at(now);
        if now < START_MS + LEASE_TTL_MS {
            assert!(
                b.host.callouts().is_empty(),
                "fetched at {now} under a live lease"
            );
        }
    }
    assert_eq!(
        b.host.callouts().len(),
        1,
        "taken over once the lease expired"
    );
    let takeover = &b.host.callouts()[0];
    assert!(
        takeover
            .headers
            .contains(&("if-none-match".into(), "\"e1\"".into())),
        "the new holder asks with the proxy's ETag: {:?}",
        takeover.headers
    );
    b.answer(304, "\"e1\"", Vec::new());
    assert_eq!(b.status(), 200, "still the shared revision");
    assert_eq!(b.host.metric("zerohop.bundle.activations"), Some(1));
}

#[test]
fn a_callout_that_never_answers_is_given_up_and_retried() {
    let shared = Rc::new(MemShared::default());
    let mut a = Worker::start(&shared, START_MS);
    a.tick_at(START_MS);
    assert_eq!(a.host.callouts().len(), 1);
    let lost = a.host.callouts()[0].token;
    // The 2 s timeout plus the grace: the callout is given up, counted, and fetched again
    // after the backoff.
    let mut now = START_MS;
    while a.host.callouts().len() == 1 && now < START_MS + 60_000 {
        now += TICK_MS;
        a.tick_at(now);
    }
    assert!(a.logged("live: bundle fetch failed [fetch-failed]"));
    assert_eq!(
        a.host.metric("zerohop.bundle.failures.fetch-failed"),
        Some(1)
    );
    assert!(now > START_MS + 2_000 + 5_000, "given up at {now}");
    assert_eq!(a.host.callouts().len(), 2, "fetched again");
    // The lost callout's late answer is ignored; the new one's is used.
    a.host.set_response(200, &[], bundle("late", false));
    a.root.on_callout_response(&a.host, lost, 1, 1);
    assert_eq!(a.status(), 503, "a late answer activates nothing");
    a.answer(200, "\"e2\"", bundle("v2", true));
    assert_eq!(a.status(), 200);
}

#[test]
fn racing_workers_fetch_once_and_run_the_same_revision() {
    let shared = Rc::new(MemShared::default());
    let mut workers: Vec<Worker> = (0..4).map(|_| Worker::start(&shared, START_MS)).collect();
    for round in 0..3 {
        for worker in &mut workers {
            worker.tick_at(START_MS + round * TICK_MS);
        }
    }
    let fetching: Vec<usize> = (0..workers.len())
        .filter(|i| !workers[*i].host.callouts().is_empty())
        .collect();
    assert_eq!(fetching.len(), 1, "one lease holder: {fetching:?}");
    workers[fetching[0]].answer(200, "\"e1\"", bundle("v1", true));
    for worker in &mut workers {
        worker.tick_at(START_MS + 3 * TICK_MS);
        assert_eq!(worker.status(), 200);
    }
}

#[test]
fn a_bundle_that_does_not_load_keeps_the_active_one() {
    let (_, mut a) = running_v1();
    a.host.take_log();
    let mut now = START_MS;
    while a.host.callouts().len() == 1 {
        now += TICK_MS;
        a.tick_at(now);
    }
    a.answer(200, "\"e2\"", b"not a bundle".to_vec());
    let log = a.host.take_log();
    assert!(
        log.iter().any(|(level, line)| *level == Level::Error
            && line.starts_with("live: bundle rejected [")
            && line.ends_with("; keeping revision \"v1\"")),
        "{log:?}"
    );
    assert_eq!(a.status(), 200);
    assert_eq!(a.host.metric("zerohop.bundle.activations"), Some(1));
}

#[test]
fn a_worker_started_later_runs_the_published_bundle_from_its_first_request() {
    let (shared, _first) = running_v1();
    let late = Worker::start(&shared, START_MS + 1);
    assert_eq!(late.status(), 200);
}
