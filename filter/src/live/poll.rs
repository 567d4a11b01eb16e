//! The OPA bundle API client as a state machine with no I/O and no clock of its own: when to
//! fetch, what to send (`If-None-Match`, `Prefer`), how to read the answer (200, 304, anything
//! else), and when to fetch next: a jittered delay in [min, max] after a success (none while
//! long polling), exponential backoff from 100 ms to max after a failure, as
//! `v1/download/download.go` does.

use crate::bundle::source::Polling;

/// OPA's `minRetryDelay`.
use crate::jitter::Jitter;
pub use crate::jitter::MIN_RETRY_DELAY_MS;
/// A callout Envoy never answered is given up after its timeout plus this.
const LOST_CALLOUT_GRACE_MS: u64 = 5_000;

/// Why a fetch failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the bundle server could not be reached (connection failed or reset, or no answer)")]
    NoResponse,
    #[error("the bundle server answered HTTP {0}")]
    Status(u16),
    #[error("the bundle server answered 200 with an empty body")]
    EmptyBody,
    #[error("the download is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("no answer within {0} ms")]
    Lost(u64),
    #[error("the bundle server answered 304 Not Modified to a request that named no ETag")]
    UnexpectedNotModified,
}

impl FetchError {
    /// A stable kebab-case code for logs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::NoResponse | FetchError::Lost(_) => crate::codes::FETCH_FAILED.name,
            FetchError::Status(_) => crate::codes::HTTP_STATUS.name,
            FetchError::EmptyBody => crate::codes::EMPTY_BODY.name,
            FetchError::TooLarge { .. } => crate::codes::DOWNLOAD_TOO_LARGE.name,
            FetchError::UnexpectedNotModified => crate::codes::UNEXPECTED_NOT_MODIFIED.name,
        }
    }
}

/// What the server answered, as far as the client cares.
#[derive(Debug)]
pub struct Response {
    /// `None` when Envoy reported the callout with no headers at all (reset, overflow).
    pub status: Option<u16>,
    pub etag: Option<String>,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// A successful fetch.
#[derive(Debug, PartialEq, Eq)]
pub enum Fetched {
    /// 304: the bundle with our ETag is still current.
    Unchanged,
    /// 200: a bundle to verify and activate; `etag` is recorded only once it activates.
    Bundle { bytes: Vec<u8>, etag: String },
}

/// The request to send: headers beyond the service's own, and the callout timeout.
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub headers: Vec<(String, String)>,
    pub timeout_ms: u64,
}

#[derive(Debug)]
pub struct Poller {
    polling: Polling,
    timeout_ms: u64,
    max_body_bytes: u64,
    etag: String,
    next_at_ms: u64,
    /// Consecutive failures, OPA's `retry`.
    retries: u32,
    in_flight_since: Option<u64>,
    /// The server answered with `application/vnd.openpolicyagent.bundles`.
    long_poll: bool,
    jitter: Jitter,
}

impl Poller {
    /// A client whose first fetch is due at `now_ms`. `etag` is that of the bundle already
    /// active (e.g. published by another worker), so an unchanged server answers 304.
    pub fn new(
        polling: Polling,
        timeout_ms: u64,
        max_body_bytes: u64,
        etag: String,
        seed: u64,
        now_ms: u64,
    ) -> Self {
        Self {
            polling,
            timeout_ms,
            max_body_bytes,
            etag,
            next_at_ms: now_ms,
            retries: 0,
            in_flight_since: None,
            long_poll: false,
            jitter: Jitter::new(seed),
        }
    }

    /// Whether a fetch should start now.
    pub fn due(&self, now_ms: u64) -> bool {
        self.in_flight_since.is_none() && now_ms >= self.next_at_ms
    }

    /// A callout outstanding for longer than its timeout allows, which Envoy will not answer.
    pub fn lost(&self, now_ms: u64) -> bool {
        self.in_flight_since.is_some_and(|since| {
            now_ms.saturating_sub(since) > self.request_timeout_ms() + LOST_CALLOUT_GRACE_MS
        })
    }

    fn long_polling(&self) -> Option<u64> {
        self.polling
            .long_polling_timeout_seconds
            .filter(|_| self.long_poll)
    }

    fn request_timeout_ms(&self) -> u64 {
        // While long polling, the server holds the request: the timeout covers the wait too.
        self.timeout_ms + self.long_polling().map_or(0, |s| s * 1000)
    }

    /// Starts a fetch: the headers to send and the timeout (never 0, which Envoy reads as none).
    pub fn start(&mut self, now_ms: u64) -> Request {
        self.in_flight_since = Some(now_ms);
        let mut headers = Vec::new();
        if !self.etag.is_empty() {
            headers.push(("if-none-match".to_string(), self.etag.clone()));
        }
        // OPA also offers `delta`; zerohop applies snapshots only, so it asks for those.
        let prefer = match self.long_polling() {
            Some(wait) => format!("modes=snapshot;wait={wait}"),
            None => "modes=snapshot".to_string(),
        };
        headers.push(("prefer".to_string(), prefer));
        Request {
            headers,
            timeout_ms: self.request_timeout_ms().max(1),
        }
    }

    /// A fetch that takes several callouts (an OCI registry's) sent its next one: the lost
    /// callout watch starts again.
    pub fn still_in_flight(&mut self, now_ms: u64) {
        self.in_flight_since = Some(now_ms);
    }

    /// The callout could not be sent at all.
    pub fn not_sent(&mut self, now_ms: u64) {
        self.failed(now_ms);
    }

    /// Reads the answer. A 304 schedules the next fetch; for a 200 the caller reports
    /// `activated` or `failed` once the bundle is checked; any error is already scheduled.
    pub fn finish(&mut self, now_ms: u64, response: Response) -> Result<Fetched, FetchError> {
        let result = self.read(response);
        match &result {
            Ok(Fetched::Unchanged) => self.succeeded(now_ms),
            Ok(Fetched::Bundle { .. }) => {}
            Err(_) => self.failed(now_ms),
        }
        result
    }

    fn read(&mut self, response: Response) -> Result<Fetched, FetchError> {
        let status = response.status.ok_or(FetchError::NoResponse)?;
        match status {
            200 => {
                self.long_poll = response.content_type.as_deref()
                    == Some("application/vnd.openpolicyagent.bundles");
                if response.body.is_empty() {
                    return Err(FetchError::EmptyBody);
                }
                if response.body.len() as u64 > self.max_body_bytes {
                    return Err(FetchError::TooLarge {
                        limit: self.max_body_bytes,
                    });
                }
                Ok(Fetched::Bundle {
                    bytes: response.body,
                    etag: response.etag.unwrap_or_default(),
                })
            }
            // Not modified since what? A broken server or cache: keep what is active, count it,
            // and back off rather than poll it as if all were well.
            304 if self.etag.is_empty() => Err(FetchError::UnexpectedNotModified),
            304 => {
                if let Some(etag) = response.etag.filter(|e| !e.is_empty()) {
                    self.etag = etag;
                }
                Ok(Fetched::Unchanged)
            }
            other => Err(FetchError::Status(other)),
        }
    }

    /// The fetched bundle is active: remember its ETag, poll again after the jittered delay.
    pub fn activated(&mut self, now_ms: u64, etag: String) {
        self.etag = etag;
        self.succeeded(now_ms);
    }

    fn succeeded(&mut self, now_ms: u64) {
        self.in_flight_since = None;
        self.retries = 0;
        let delay = if self.long_polling().is_some() {
            0
        } else {
            let Polling {
                min_delay_ms: min,
                max_delay_ms: max,
                ..
            } = self.polling;
            self.jitter.between(min, max)
        };
        self.next_at_ms = now_ms + delay;
    }

    /// The fetch or the bundle failed: forget the ETag (the next answer is a full bundle) and
    /// back off.
    pub fn failed(&mut self, now_ms: u64) {
        self.in_flight_since = None;
        self.etag.clear();
        self.long_poll = false;
        let delay = self.backoff_ms();
        self.retries = self.retries.saturating_add(1);
        self.next_at_ms = now_ms + delay;
    }

    /// OPA's `util.DefaultBackoff(100ms, max_delay, retries)`: ×1.6 per retry up to the max,
    /// ±20 % jitter.
    fn backoff_ms(&mut self) -> u64 {
        if self.retries == 0 {
            return MIN_RETRY_DELAY_MS;
        }
        self.jitter
            .backoff_ms(self.polling.max_delay_ms, self.retries)
    }

    pub fn etag(&self) -> &str {
        &self.etag
    }

    pub fn next_at_ms(&self) -> u64 {
        self.next_at_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn polling(min: u64, max: u64, long: Option<u64>) -> Polling {
        Polling {
            min_delay_ms: min * 1000,
            max_delay_ms: max * 1000,
            long_polling_timeout_seconds: long,
        }
    }

    fn response(status: Option<u16>, etag: Option<&str>, body: &[u8]) -> Response {
        Response {
            status,
            etag: etag.map(str::to_string),
            content_type: Some("application/gzip".into()),
            body: body.to_vec(),
        }
    }

    fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn etag_and_304_then_jittered_delay() {
        let mut poller = Poller::new(polling(10, 20, None), 5_000, 1 << 20, String::new(), 7, 0);
        assert!(poller.due(0));
        let request = poller.start(0);
        assert_eq!(request.timeout_ms, 5_000);
        assert_eq!(header(&request, "if-none-match"), None);
        assert_eq!(header(&request, "prefer"), Some("modes=snapshot"));
        assert!(!poller.due(1_000_000), "one fetch at a time");
        let fetched = poller.finish(100, response(Some(200), Some("\"v1\""), b"gz"));
        assert_eq!(
            fetched,
            Ok(Fetched::Bundle {
                bytes: b"gz".to_vec(),
                etag: "\"v1\"".into()
            })
        );
        poller.activated(100, "\"v1\"".into());
        let mut delays = Vec::new();
        for round in 0..50u64 {
            let now = poller.next_at_ms();
            assert!(!poller.due(now - 1));
            assert!(poller.due(now));
            let request = poller.start(now);
            assert_eq!(
                header(&request, "if-none-match"),
                Some("\"v1\""),
                "round {round}"
            );
            assert_eq!(
                poller.finish(now, response(Some(304), None, b"")),
                Ok(Fetched::Unchanged)
            );
            delays.push(poller.next_at_ms() - now);
        }
        assert!(
            delays.iter().all(|d| (10_000..=20_000).contains(d)),
            "{delays:?}"
        );
        assert!(
            delays.iter().any(|d| *d != delays[0]),
            "jittered: {delays:?}"
        );
    }

    #[test]
    fn a_304_to_a_request_without_an_etag_is_a_failure() {
        let mut poller = Poller::new(polling(10, 20, None), 5_000, 1 << 20, String::new(), 7, 0);
        let request = poller.start(0);
        assert_eq!(header(&request, "if-none-match"), None);
        assert_eq!(
            poller.finish(100, response(Some(304), None, b"")),
            Err(FetchError::UnexpectedNotModified)
        );
        assert_eq!(
            FetchError::UnexpectedNotModified.code(),
            "unexpected-not-modified"
        );
        assert_eq!(
            poller.next_at_ms(),
            100 + MIN_RETRY_DELAY_MS,
            "backs off as after a failure"
        );
    }

    #[test]
    fn failures_back_off_from_100ms_to_max_and_forget_the_etag() {
        let mut poller = Poller::new(polling(1, 10, None), 1_000, 1 << 20, "\"v1\"".into(), 3, 0);
        let mut now = 0;
        let mut delays = Vec::new();
        let answers = [None, Some(500), Some(404)];
        for answer in answers.into_iter().chain(std::iter::repeat_n(None, 17)) {
            poller.start(now);
            let err = poller.finish(now, response(answer, None, b"")).unwrap_err();
            assert_eq!(
                err.code(),
                if answer.is_some() {
                    "http-status"
                } else {
                    "fetch-failed"
                }
            );
            delays.push(poller.next_at_ms() - now);
            now = poller.next_at_ms();
        }
        assert_eq!(delays[0], 100);
        // 160 ms ±20 %, then growing by 1.6 each time, capped at max_delay ±20 %.
        assert!((128..=192).contains(&delays[1]), "{delays:?}");
        assert!(delays.windows(2).take(5).all(|w| w[1] > w[0]), "{delays:?}");
        assert!(delays.iter().all(|d| *d <= 12_000), "{delays:?}");
        assert!(delays[19] >= 8_000, "capped at max_delay: {delays:?}");
        assert_eq!(header(&poller.start(now), "if-none-match"), None);
        // A success resets the backoff.
        poller
            .finish(now, response(Some(200), Some("e"), b"x"))
            .unwrap();
        poller.activated(now, "e".into());
        poller.start(poller.next_at_ms());
        poller.finish(0, response(None, None, b"")).unwrap_err();
        assert_eq!(poller.next_at_ms(), 100);
    }

    #[test]
    fn rejected_bundle_backs_off_and_refetches_in_full() {
        let mut poller = Poller::new(polling(1, 2, None), 1_000, 1 << 20, "\"v1\"".into(), 3, 0);
        poller.start(0);
        poller
            .finish(0, response(Some(200), Some("\"v2\""), b"bad"))
            .unwrap();
        poller.failed(0);
        assert_eq!(poller.next_at_ms(), 100);
        assert_eq!(header(&poller.start(100), "if-none-match"), None);
    }

    #[test]
    fn garbage_answers_fail() {
        let mut poller = Poller::new(polling(1, 2, None), 1_000, 4, String::new(), 3, 0);
        poller.start(0);
        assert_eq!(
            poller.finish(0, response(Some(200), None, b"")),
            Err(FetchError::EmptyBody)
        );
        poller.start(1_000);
        assert_eq!(
            poller.finish(1_000, response(Some(200), None, b"12345")),
            Err(FetchError::TooLarge { limit: 4 })
        );
    }

    #[test]
    fn long_polling_once_the_server_supports_it() {
        let mut poller = Poller::new(polling(1, 2, Some(30)), 1_000, 1 << 20, String::new(), 3, 0);
        let request = poller.start(0);
        assert_eq!(header(&request, "prefer"), Some("modes=snapshot"));
        let mut answer = response(Some(200), Some("e1"), b"x");
        answer.content_type = Some("application/vnd.openpolicyagent.bundles".into());
        poller.finish(5, answer).unwrap();
        poller.activated(5, "e1".into());
        assert!(poller.due(5), "no delay between long polls");
        let request = poller.start(5);
        assert_eq!(header(&request, "prefer"), Some("modes=snapshot;wait=30"));
        assert_eq!(request.timeout_ms, 31_000);
        assert!(!poller.lost(5 + 36_000));
        assert!(poller.lost(5 + 36_001));
    }
}
