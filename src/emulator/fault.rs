//! Fault injection: queued faults (FIFO, optionally per path prefix) and a seeded
//! random mode for reliability tests.

use std::collections::VecDeque;
use std::time::Duration;

/// A failure the emulator plays instead of (or in the middle of) a normal reply.
///
/// Faults are queued with [`Emulator::inject`](super::Emulator::inject) and consumed by
/// upcoming requests in FIFO order; `count` says how many requests one fault affects.
/// Request faults ([`Status`](Fault::Status), [`RateLimit`](Fault::RateLimit),
/// [`DropBeforeHeaders`](Fault::DropBeforeHeaders), [`MalformedBody`](Fault::MalformedBody))
/// hit the next matching request of any kind *before* it is processed, so they never leave
/// a stored response behind. Stream faults ([`DropMidStream`](Fault::DropMidStream),
/// [`StallMidStream`](Fault::StallMidStream), [`FailMidStream`](Fault::FailMidStream),
/// [`ErrorEvent`](Fault::ErrorEvent)) wait for the next matching *streamed* request;
/// non-streamed requests pass them by.
/// [`Hold`](Fault::Hold) and [`HoldQueued`](Fault::HoldQueued) wait for the next
/// matching request that generates a reply (`POST /v1/responses`,
/// `POST /v1/chat/completions`), [`DropAfterCreate`](Fault::DropAfterCreate) for the
/// next `POST /v1/responses`. On a background stream (`GET
/// /v1/responses/{id}?stream=true` included), [`DropMidStream`](Fault::DropMidStream)
/// cuts only the connection: the response goes on, and the stream can be resumed.
/// A fault with `count: 0` is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this HTTP status and the real API's error envelope for it
    /// (500 `server_error`, 503 overloaded, others `invalid_request_error`).
    Status {
        /// The HTTP status, e.g. 500 or 503.
        status: u16,
        /// How many requests get it.
        count: usize,
    },
    /// Answer `429` with the real rate-limit envelope and `x-ratelimit-*` headers.
    RateLimit {
        /// The retry hint; `None` sends no `retry-after` header at all.
        retry_after: Option<Duration>,
        /// Send the hint as `retry-after-ms` (milliseconds) instead of `retry-after`
        /// (whole seconds, rounded up).
        use_ms_header: bool,
        /// How many requests get it.
        count: usize,
    },
    /// Close the connection without sending any response headers.
    DropBeforeHeaders {
        /// How many requests get it.
        count: usize,
    },
    /// Send `200` and the first `after_events` stream events, then cut the connection
    /// (no terminal event). Nothing is stored.
    DropMidStream {
        /// Events (SSE blocks, or chat chunks) sent before the cut.
        after_events: usize,
        /// How many streamed requests get it.
        count: usize,
    },
    /// Pause the stream for `stall` after `after_events` events, then finish normally.
    StallMidStream {
        /// Events sent before the pause.
        after_events: usize,
        /// How long the stream pauses.
        stall: Duration,
        /// How many streamed requests get it.
        count: usize,
    },
    /// Send `after_deltas` text deltas, close the partial message as `incomplete` and end
    /// with `response.failed` (`server_error`), like the real API's failed streams. Nothing
    /// is stored. On chat streams it behaves like [`DropMidStream`](Fault::DropMidStream).
    FailMidStream {
        /// Text deltas sent before the failure.
        after_deltas: usize,
        /// How many streamed requests get it.
        count: usize,
    },
    /// Answer `200` with a `application/json` body that is not valid JSON.
    MalformedBody {
        /// How many requests get it.
        count: usize,
    },
    /// Send `200` and the first `after_events` stream events, then an error *inside*
    /// the stream with this `code`, and end the stream there. Nothing is stored.
    ///
    /// On `/responses` it is the spec's `error` event
    /// (`{"type":"error","code",...,"message",...,"param",...}`); on chat streams a
    /// `data: {"error": {...}}` chunk. The message, `type` and `param` are the real
    /// API's for `previous_response_not_found`, `context_length_exceeded`,
    /// `insufficient_quota`, `rate_limit_exceeded` and `invalid_api_key`, and a
    /// generic server error's for any other code.
    ErrorEvent {
        /// Events (SSE blocks, or chat chunks) sent before the error.
        after_events: usize,
        /// The error's `code`, e.g. `"previous_response_not_found"`.
        code: String,
        /// How many streamed requests get it.
        count: usize,
    },
    /// Hold the request at its thinking time until the test lets it go with
    /// [`Emulator::release`](super::Emulator::release), then answer normally.
    ///
    /// The thinking time comes after the request's context was resolved and its
    /// conversation lock taken, and before the reply is generated and stored: a
    /// streamed response is held after its `response.created` and
    /// `response.in_progress` events (a chat stream after its role chunks), a
    /// plain one before any byte is sent. So a test can have a request certainly
    /// in flight — holding a conversation's lock, occupying a concurrency
    /// permit — for as long as it needs, without racing a latency window.
    /// [`Emulator::wait_held`](super::Emulator::wait_held) waits until requests
    /// are held.
    Hold {
        /// How many generating requests get it.
        count: usize,
    },
    /// The response is created (and completes, and is stored) on the server, but
    /// the connection dies before the client learns of it: what makes a blind
    /// retry create a duplicate. Only `POST /v1/responses` draws it.
    ///
    /// - Not streamed: the request is processed in full, then the connection is
    ///   closed before any byte of the reply (a validation error is answered as
    ///   usual: nothing was created).
    /// - Streamed: `response.created` is sent, then the connection is cut; the
    ///   response goes on and completes on the server.
    /// - Background: the response is queued and runs as usual; the connection is
    ///   closed before the create reply (or, streamed, after `response.created`).
    DropAfterCreate {
        /// How many creates get it.
        count: usize,
    },
    /// A background response stays `queued` until the test lets it go with
    /// [`Emulator::release`](super::Emulator::release) (it waits at the same gate
    /// as [`Hold`](Fault::Hold), after its `response.queued` event). For the
    /// real API's reported failure of responses stuck in `queued`. A response
    /// that is not a background one passes it by as if it were `Hold`.
    HoldQueued {
        /// How many generating requests get it.
        count: usize,
    },
}

impl Fault {
    /// Parses an `x-emulator-fault` request header, which lets a client that cannot
    /// reach the [`Emulator`](super::Emulator) handle (another process, another
    /// language's SDK) fault its own request once. Values:
    ///
    /// - `429`: [`RateLimit`](Fault::RateLimit) with `retry-after-ms: 10`;
    /// - any other status code, e.g. `500`, `503`: [`Status`](Fault::Status);
    /// - `drop`: [`DropBeforeHeaders`](Fault::DropBeforeHeaders);
    /// - `malformed`: [`MalformedBody`](Fault::MalformedBody);
    /// - `drop-mid-stream:N`, `fail-mid-stream:N`: [`DropMidStream`](Fault::DropMidStream)
    ///   after `N` events, [`FailMidStream`](Fault::FailMidStream) after `N` deltas;
    /// - `drop-after-create`: [`DropAfterCreate`](Fault::DropAfterCreate);
    /// - `hold`, `hold-queued`: [`Hold`](Fault::Hold), [`HoldQueued`](Fault::HoldQueued)
    ///   (released only by a cancel or the emulator's shutdown, for a client
    ///   without the handle).
    ///
    /// `None` for anything else. Real servers ignore the header.
    pub(crate) fn from_header(value: &axum::http::HeaderValue) -> Option<Self> {
        let value = value.to_str().ok()?.trim();
        let (name, arg) = match value.split_once(':') {
            Some((name, arg)) => (name, Some(arg.trim().parse::<usize>().ok()?)),
            None => (value, None),
        };
        Some(match (name, arg) {
            ("drop", None) => Self::DropBeforeHeaders { count: 1 },
            ("malformed", None) => Self::MalformedBody { count: 1 },
            ("drop-after-create", None) => Self::DropAfterCreate { count: 1 },
            ("hold", None) => Self::Hold { count: 1 },
            ("hold-queued", None) => Self::HoldQueued { count: 1 },
            ("drop-mid-stream", Some(after_events)) => Self::DropMidStream {
                after_events,
                count: 1,
            },
            ("fail-mid-stream", Some(after_deltas)) => Self::FailMidStream {
                after_deltas,
                count: 1,
            },
            ("429", None) => Self::RateLimit {
                retry_after: Some(Duration::from_millis(10)),
                use_ms_header: true,
                count: 1,
            },
            (code, None) => match code.parse::<u16>() {
                Ok(status @ 400..=599) => Self::Status { status, count: 1 },
                _ => return None,
            },
            _ => return None,
        })
    }

    /// The fault's `count`, whatever the variant.
    fn count_mut(&mut self) -> &mut usize {
        match self {
            Self::Status { count, .. }
            | Self::RateLimit { count, .. }
            | Self::DropBeforeHeaders { count }
            | Self::DropMidStream { count, .. }
            | Self::StallMidStream { count, .. }
            | Self::FailMidStream { count, .. }
            | Self::ErrorEvent { count, .. }
            | Self::MalformedBody { count }
            | Self::Hold { count }
            | Self::DropAfterCreate { count }
            | Self::HoldQueued { count } => count,
        }
    }

    /// Whether the handler plays the fault (rather than the front middleware
    /// answering in the request's place).
    pub(crate) fn is_played_by_handler(&self) -> bool {
        self.is_stream_fault() || self.is_generating_fault()
    }

    /// Whether the fault waits for a request that generates a reply.
    fn is_generating_fault(&self) -> bool {
        matches!(
            self,
            Self::Hold { .. } | Self::HoldQueued { .. } | Self::DropAfterCreate { .. }
        )
    }

    /// Whether the fault only applies to streamed replies.
    pub(crate) fn is_stream_fault(&self) -> bool {
        matches!(
            self,
            Self::DropMidStream { .. }
                | Self::StallMidStream { .. }
                | Self::FailMidStream { .. }
                | Self::ErrorEvent { .. }
        )
    }
}

/// The queue of injected faults and the random mode.
#[derive(Debug, Default)]
pub(crate) struct FaultPlan {
    queue: VecDeque<Queued>,
    random: Option<RandomFaults>,
}

#[derive(Debug)]
struct Queued {
    /// `None` matches every path.
    path_prefix: Option<String>,
    /// The fault as one request records it (`count: 1`).
    fault: Fault,
    remaining: usize,
}

#[derive(Debug)]
struct RandomFaults {
    rate: f64,
    rng: SplitMix64,
}

impl FaultPlan {
    pub(crate) fn push(&mut self, path_prefix: Option<String>, mut fault: Fault) {
        let remaining = std::mem::replace(fault.count_mut(), 1);
        if remaining > 0 {
            self.queue.push_back(Queued {
                path_prefix,
                fault,
                remaining,
            });
        }
    }

    pub(crate) fn set_random(&mut self, rate: f64, seed: u64) {
        self.random = (rate > 0.0).then(|| RandomFaults {
            rate: rate.min(1.0),
            rng: SplitMix64(seed),
        });
    }

    /// The fault the request to `path` must suffer, if any: the oldest queued fault
    /// that matches, else (with the random mode on) maybe a random one.
    /// `generating` says whether the request generates a reply (see
    /// [`Fault::Hold`]); a streamed request always does.
    pub(crate) fn take(&mut self, path: &str, streamed: bool, generating: bool) -> Option<Fault> {
        let pos = self.queue.iter().position(|q| {
            q.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
                && (streamed || !q.fault.is_stream_fault())
                && (generating || !q.fault.is_generating_fault())
                && (path == "/v1/responses" || !matches!(q.fault, Fault::DropAfterCreate { .. }))
        });
        if let Some(pos) = pos {
            let q = &mut self.queue[pos];
            let fault = q.fault.clone();
            q.remaining -= 1;
            if q.remaining == 0 {
                self.queue.remove(pos);
            }
            return Some(fault);
        }
        let random = self.random.as_mut()?;
        if random.rng.next_f64() >= random.rate {
            return None;
        }
        // Short retry hints keep reliability tests fast while still exercising the header.
        let hint = Duration::from_millis(5 + random.rng.next_u64() % 20);
        let kinds = if streamed { 6 } else { 5 };
        Some(match random.rng.next_u64() % kinds {
            0 => Fault::Status {
                status: 500,
                count: 1,
            },
            1 => Fault::Status {
                status: 503,
                count: 1,
            },
            2 => Fault::RateLimit {
                retry_after: Some(hint),
                use_ms_header: true,
                count: 1,
            },
            3 => Fault::DropBeforeHeaders { count: 1 },
            4 => Fault::MalformedBody { count: 1 },
            _ => Fault::DropMidStream {
                after_events: (random.rng.next_u64() % 6) as usize,
                count: 1,
            },
        })
    }
}

/// A tiny, well-known PRNG (splitmix64): deterministic for a seed, no dependency.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix64(self.0)
    }

    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The splitmix64 finaliser: a strong 64-bit mixing function.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_is_fifo_and_counts_down() {
        let mut plan = FaultPlan::default();
        plan.push(
            None,
            Fault::Status {
                status: 500,
                count: 2,
            },
        );
        plan.push(None, Fault::MalformedBody { count: 1 });
        assert_eq!(
            plan.take("/v1/responses", false, true),
            Some(Fault::Status {
                status: 500,
                count: 1
            })
        );
        assert_eq!(
            plan.take("/v1/responses", false, true),
            Some(Fault::Status {
                status: 500,
                count: 1
            })
        );
        assert_eq!(
            plan.take("/v1/responses", false, true),
            Some(Fault::MalformedBody { count: 1 })
        );
        assert_eq!(plan.take("/v1/responses", false, true), None);
    }

    #[test]
    fn prefix_and_stream_faults_wait_for_a_match() {
        let mut plan = FaultPlan::default();
        plan.push(
            Some("/v1/chat".into()),
            Fault::DropBeforeHeaders { count: 1 },
        );
        plan.push(
            None,
            Fault::DropMidStream {
                after_events: 2,
                count: 1,
            },
        );
        assert_eq!(plan.take("/v1/responses", false, true), None);
        assert_eq!(
            plan.take("/v1/responses", true, true),
            Some(Fault::DropMidStream {
                after_events: 2,
                count: 1
            })
        );
        assert_eq!(
            plan.take("/v1/chat/completions", false, true),
            Some(Fault::DropBeforeHeaders { count: 1 })
        );
    }

    #[test]
    fn hold_waits_for_a_generating_request() {
        let mut plan = FaultPlan::default();
        plan.push(None, Fault::Hold { count: 1 });
        assert_eq!(plan.take("/v1/responses/resp_1", false, false), None);
        assert_eq!(
            plan.take("/v1/responses", false, true),
            Some(Fault::Hold { count: 1 })
        );
        assert_eq!(plan.take("/v1/responses", false, true), None);
    }

    #[test]
    fn drop_after_create_waits_for_a_create() {
        let mut plan = FaultPlan::default();
        plan.push(None, Fault::DropAfterCreate { count: 1 });
        assert_eq!(plan.take("/v1/responses/resp_1", false, false), None);
        assert_eq!(plan.take("/v1/chat/completions", false, true), None);
        assert_eq!(
            plan.take("/v1/responses", true, true),
            Some(Fault::DropAfterCreate { count: 1 })
        );
    }

    #[test]
    fn header_values_parse() {
        let parse = |v: &'static str| Fault::from_header(&axum::http::HeaderValue::from_static(v));
        assert_eq!(
            parse("503"),
            Some(Fault::Status {
                status: 503,
                count: 1
            })
        );
        assert!(matches!(parse("429"), Some(Fault::RateLimit { .. })));
        assert_eq!(parse("drop"), Some(Fault::DropBeforeHeaders { count: 1 }));
        assert_eq!(parse("malformed"), Some(Fault::MalformedBody { count: 1 }));
        assert_eq!(
            parse("drop-after-create"),
            Some(Fault::DropAfterCreate { count: 1 })
        );
        assert_eq!(parse("hold-queued"), Some(Fault::HoldQueued { count: 1 }));
        assert_eq!(
            parse("fail-mid-stream:2"),
            Some(Fault::FailMidStream {
                after_deltas: 2,
                count: 1
            })
        );
        for bad in [
            "200",
            "teapot",
            "drop:1",
            "fail-mid-stream",
            "drop-mid-stream:x",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn random_mode_is_seeded_and_off_at_zero() {
        let run = |seed| {
            let mut plan = FaultPlan::default();
            plan.set_random(0.5, seed);
            (0..64)
                .map(|_| plan.take("/v1/responses", true, true))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        let hits = run(3).iter().filter(|f| f.is_some()).count();
        assert!(hits > 10 && hits < 54, "{hits} of 64");
        let mut plan = FaultPlan::default();
        plan.set_random(0.0, 3);
        assert!((0..64).all(|_| plan.take("/", true, true).is_none()));
    }
}
