//! OPA's decision-log upload protocol as a state machine with no I/O and no clock of its own
//! (`v1/plugins/logs/plugin.go`, `encoder.go`): events wait in a buffer bounded in bytes (the
//! oldest go first when it is full); every jittered delay in [min, max] the buffer is sent as
//! gzip-compressed JSON arrays of at most `upload_size_limit_bytes` each, one chunk after the
//! other; a chunk that fails (not 2xx, no answer) goes back to the front of the buffer and the
//! next attempt backs off exponentially. An event too large for a chunk on its own is dropped
//! and counted, as OPA drops it, so nothing is retried forever.

use std::collections::VecDeque;
use std::io::Write as _;

use super::config::Reporting;
use crate::jitter::Jitter;

/// A callout Envoy never answered is given up after its timeout plus this.
const LOST_CALLOUT_GRACE_MS: u64 = 5_000;

/// One upload: the compressed body and how many events it holds.
#[derive(Debug)]
pub struct Chunk {
    pub gzip: Vec<u8>,
    pub events: usize,
}

/// What forming a chunk dropped, for the counters.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Losses {
    /// Events dropped because the buffer was full.
    pub buffer_full: u64,
    /// Events larger than a chunk on their own.
    pub too_large: u64,
}

pub struct Uploader {
    reporting: Reporting,
    buffer: VecDeque<String>,
    /// The bytes of JSON in `buffer`.
    buffered: u64,
    /// The chunk being uploaded: its events, kept to requeue on failure.
    in_flight: Option<(Vec<String>, u64)>,
    /// How many bytes of JSON a chunk holds: the limit times the compression ratio of the last
    /// chunk, with a margin, so that chunks land just under the limit and are compressed once;
    /// halved when one still goes over.
    estimate: u64,
    /// Chunks compressed so far, and those compressed again because they went over the limit.
    compressions: u64,
    recompressions: u64,
    next_at_ms: u64,
    /// Consecutive failures.
    retries: u32,
    jitter: Jitter,
}

impl Uploader {
    pub fn new(reporting: Reporting, seed: u64, now_ms: u64) -> Self {
        let mut uploader = Self {
            reporting,
            buffer: VecDeque::new(),
            buffered: 0,
            in_flight: None,
            estimate: reporting.upload_size_limit_bytes,
            compressions: 0,
            recompressions: 0,
            next_at_ms: now_ms,
            retries: 0,
            jitter: Jitter::new(seed),
        };
        uploader.next_at_ms = now_ms + uploader.jittered_delay();
        uploader
    }

    /// Keeps `event` for upload; returns how many old events were dropped to make room.
    pub fn push(&mut self, event: String) -> u64 {
        self.buffered += event.len() as u64;
        self.buffer.push_back(event);
        self.trim()
    }

    /// Drops the oldest events beyond the buffer's limit.
    fn trim(&mut self) -> u64 {
        let mut dropped = 0;
        while self.buffered > self.reporting.buffer_size_limit_bytes {
            let Some(oldest) = self.buffer.pop_front() else {
                break;
            };
            self.buffered -= oldest.len() as u64;
            dropped += 1;
        }
        dropped
    }

    pub fn buffered_events(&self) -> usize {
        self.buffer.len()
    }

    /// Whether a chunk should be sent now.
    pub fn due(&self, now_ms: u64) -> bool {
        self.in_flight.is_none() && !self.buffer.is_empty() && now_ms >= self.next_at_ms
    }

    /// An upload outstanding for longer than its timeout allows, which Envoy will not answer.
    pub fn lost(&self, now_ms: u64, timeout_ms: u64) -> bool {
        self.in_flight.as_ref().is_some_and(|(_, since)| {
            now_ms.saturating_sub(*since) > timeout_ms + LOST_CALLOUT_GRACE_MS
        })
    }

    /// Takes the next chunk from the front of the buffer; `None` when nothing fits (every
    /// event left was too large, counted in `losses`).
    pub fn start(&mut self, now_ms: u64, losses: &mut Losses) -> Option<Chunk> {
        let limit = self.reporting.upload_size_limit_bytes;
        loop {
            let mut events = Vec::new();
            let mut size = 2u64;
            while let Some(next) = self.buffer.front() {
                let grown = size + next.len() as u64 + 1;
                if !events.is_empty() && grown > self.estimate {
                    break;
                }
                size = grown;
                if let Some(event) = self.buffer.pop_front() {
                    self.buffered -= event.len() as u64;
                    events.push(event);
                }
            }
            if events.is_empty() {
                return None;
            }
            let gzip = compress(&events);
            self.compressions += 1;
            if gzip.len() as u64 <= limit {
                // Events of one configuration compress alike: the next chunk holds this
                // chunk's ratio times the limit, less a tenth.
                let ratio = size as f64 / gzip.len().max(1) as f64;
                self.estimate =
                    ((limit as f64 * ratio * 0.9) as u64).clamp(1, limit.saturating_mul(64));
                let count = events.len();
                self.in_flight = Some((events, now_ms));
                return Some(Chunk {
                    gzip,
                    events: count,
                });
            }
            if events.len() == 1 {
                losses.too_large += 1;
                continue;
            }
            // Over the limit: the events go back, and chunks start at half the size.
            self.recompressions += 1;
            for event in events.into_iter().rev() {
                self.buffered += event.len() as u64;
                self.buffer.push_front(event);
            }
            self.estimate = (size / 2).max(1);
        }
    }

    /// The server took the chunk: the next one goes at once, or after the jittered delay once
    /// the buffer is empty.
    pub fn succeeded(&mut self, now_ms: u64) -> u64 {
        let events = self.in_flight.take().map_or(0, |(e, _)| e.len() as u64);
        self.retries = 0;
        self.next_at_ms = if self.buffer.is_empty() {
            now_ms + self.jittered_delay()
        } else {
            now_ms
        };
        events
    }

    /// The chunk failed: its events go back to the front (the oldest beyond the buffer's limit
    /// are dropped, returned), and the next attempt backs off.
    pub fn failed(&mut self, now_ms: u64) -> u64 {
        if let Some((events, _)) = self.in_flight.take() {
            for event in events.into_iter().rev() {
                self.buffered += event.len() as u64;
                self.buffer.push_front(event);
            }
        }
        let delay = self.backoff_ms();
        self.retries = self.retries.saturating_add(1);
        self.next_at_ms = now_ms + delay;
        self.trim()
    }

    fn jittered_delay(&mut self) -> u64 {
        let Reporting {
            min_delay_ms: min,
            max_delay_ms: max,
            ..
        } = self.reporting;
        self.jitter.between(min, max)
    }

    /// OPA's `util.DefaultBackoff(100ms, max_delay, retries)`: ×1.6 per retry up to the max
    /// delay, ±20 % jitter.
    fn backoff_ms(&mut self) -> u64 {
        self.jitter
            .backoff_ms(self.reporting.max_delay_ms, self.retries)
    }

    pub fn next_at_ms(&self) -> u64 {
        self.next_at_ms
    }

    /// (chunks compressed, of which compressed again for going over the limit).
    pub fn compressions(&self) -> (u64, u64) {
        (self.compressions, self.recompressions)
    }
}

/// The events as one gzip-compressed JSON array.
fn compress(events: &[String]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut write = |bytes: &[u8]| {
        // Writing to a Vec cannot fail.
        let _ = gz.write_all(bytes);
    };
    write(b"[");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            write(b",");
        }
        write(event.as_bytes());
    }
    write(b"]");
    gz.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    fn reporting(upload: u64, buffer: u64) -> Reporting {
        Reporting {
            min_delay_ms: 1000,
            max_delay_ms: 2000,
            upload_size_limit_bytes: upload,
            buffer_size_limit_bytes: buffer,
            max_decisions_per_second: None,
        }
    }

    fn events(chunk: &Chunk) -> Vec<serde_json::Value> {
        let mut text = String::new();
        flate2::read::GzDecoder::new(chunk.gzip.as_slice())
            .read_to_string(&mut text)
            .unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn event(i: usize, pad: usize) -> String {
        // Incompressible padding, so sizes are predictable.
        let mut x = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let noise: String = (0..pad)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'a' + (x % 26) as u8)
            })
            .collect();
        format!(r#"{{"decision_id":"{i}","pad":"{noise}"}}"#)
    }

    #[test]
    fn chunks_stay_under_the_compressed_limit_and_keep_every_event_in_order() {
        let mut up = Uploader::new(reporting(1024, 1 << 20), 3, 0);
        assert!(!up.due(0), "empty");
        for i in 0..200 {
            assert_eq!(up.push(event(i, 100)), 0);
        }
        let at = up.next_at_ms();
        assert!((1000..=2000).contains(&at), "{at}");
        assert!(!up.due(at - 1) && up.due(at));
        let mut seen = Vec::new();
        let mut losses = Losses::default();
        while let Some(chunk) = up.start(at, &mut losses) {
            assert!(chunk.gzip.len() <= 1024, "{}", chunk.gzip.len());
            let decoded = events(&chunk);
            assert_eq!(decoded.len(), chunk.events);
            seen.extend(
                decoded
                    .iter()
                    .map(|e| e["decision_id"].as_str().unwrap().to_string()),
            );
            assert_eq!(up.succeeded(at), chunk.events as u64);
        }
        assert_eq!(losses, Losses::default());
        let expected: Vec<String> = (0..200).map(|i| i.to_string()).collect();
        assert_eq!(seen, expected);
        assert!(up.next_at_ms() >= at + 1000, "the delay again once empty");
    }

    #[test]
    fn chunks_fill_the_limit_and_are_compressed_about_once() {
        // Decision events repeat most of their text: they compress about tenfold.
        let limit = 32 * 1024;
        let mut up = Uploader::new(reporting(limit, 64 << 20), 3, 0);
        let event = |i: usize| {
            format!(
                r#"{{"decision_id":"{i:08}","input":{{"attributes":{{"request":{{"http":{{"path":"/api/v2/products/{}","headers":{{"user-agent":"wrk","x-request-id":"{:016x}"}}}}}}}}}},"result":true}}"#,
                i % 97,
                (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            )
        };
        for i in 0..20_000 {
            up.push(event(i));
        }
        let mut losses = Losses::default();
        let mut sizes = Vec::new();
        while let Some(chunk) = up.start(0, &mut losses) {
            assert!(chunk.gzip.len() as u64 <= limit);
            sizes.push(chunk.gzip.len() as u64);
            up.succeeded(0);
        }
        let (compressions, again) = up.compressions();
        assert!(
            again * 10 <= compressions,
            "{again} of {compressions} chunks compressed twice"
        );
        let full = &sizes[1..sizes.len() - 1];
        assert!(
            full.iter().all(|size| *size > limit * 7 / 10),
            "chunks use the limit: {sizes:?}"
        );
    }

    #[test]
    fn a_failed_chunk_is_retried_first_with_backoff_and_a_full_buffer_drops_the_oldest() {
        let mut up = Uploader::new(reporting(1 << 20, 10 * 120), 5, 0);
        for i in 0..10 {
            assert_eq!(up.push(event(i, 90)), 0, "{}", event(i, 90).len());
        }
        let mut losses = Losses::default();
        let chunk = up.start(5000, &mut losses).unwrap();
        assert_eq!(chunk.events, 10);
        assert!(!up.due(5000), "one upload at a time");
        // More events arrive meanwhile; the failed chunk goes back in front of them, and the
        // buffer's limit drops the oldest.
        for i in 10..13 {
            assert_eq!(up.push(event(i, 90)), 0);
        }
        assert_eq!(up.failed(5000), 3);
        let mut delays = Vec::new();
        let mut now = 5000;
        for _ in 0..12 {
            assert!(up.next_at_ms() > now);
            delays.push(up.next_at_ms() - now);
            now = up.next_at_ms();
            up.start(now, &mut losses).unwrap();
            up.failed(now);
        }
        assert!(delays[0] < 200 && delays[3] > delays[0], "{delays:?}");
        assert!(
            *delays.last().unwrap() <= 2400,
            "capped at max_delay: {delays:?}"
        );
        let chunk = up.start(now, &mut losses).unwrap();
        let ids: Vec<String> = events(&chunk)
            .iter()
            .map(|e| e["decision_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, (3..13).map(|i| i.to_string()).collect::<Vec<_>>());
    }

    #[test]
    fn an_event_too_large_on_its_own_is_dropped_not_retried() {
        let mut up = Uploader::new(reporting(300, 1 << 20), 5, 0);
        up.push(event(1, 20));
        up.push(event(2, 5000));
        up.push(event(3, 20));
        let mut losses = Losses::default();
        let mut ids = Vec::new();
        while let Some(chunk) = up.start(2000, &mut losses) {
            ids.extend(
                events(&chunk)
                    .iter()
                    .map(|e| e["decision_id"].as_str().unwrap().to_string()),
            );
            up.succeeded(2000);
        }
        assert_eq!(ids, ["1", "3"]);
        assert_eq!(losses.too_large, 1);
        assert!(!up.due(u64::MAX), "nothing left to send");
    }

    #[test]
    fn an_unanswered_upload_is_lost_after_its_timeout() {
        let mut up = Uploader::new(reporting(1 << 20, 1 << 20), 5, 0);
        up.push(event(1, 10));
        up.start(2000, &mut Losses::default()).unwrap();
        assert!(!up.lost(2000 + 1000 + LOST_CALLOUT_GRACE_MS, 1000));
        assert!(up.lost(2001 + 1000 + LOST_CALLOUT_GRACE_MS, 1000));
    }
}
