//! The emulator's configuration: the knobs a test turns before spawning it.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How an [`Emulator`](super::Emulator) behaves. Build one with
/// [`Emulator::builder`](super::Emulator::builder), or start from
/// [`EmulatorConfig::default`] and set fields.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EmulatorConfig {
    /// Seed of the fake model: the same seed and context give the same reply. Default `0`.
    pub seed: u64,
    /// Fixed "thinking time" before a generated reply (non-streamed: before the body;
    /// streamed: after `response.in_progress`). Applies to `POST /responses` and
    /// `POST /chat/completions` only. Default zero.
    pub latency: Duration,
    /// Delay between two streamed text deltas. Default zero.
    pub token_delay: Duration,
    /// How long stored responses live; `None` keeps them forever. Default 30 days,
    /// like the real service.
    pub response_ttl: Option<Duration>,
    /// The largest request body accepted; bigger bodies get `413`. Default 4 MiB.
    pub max_body_bytes: usize,
    /// The address to bind. Default `127.0.0.1:0` (loopback, a free port).
    pub listen: SocketAddr,
    /// How many requests [`Emulator::requests`](super::Emulator::requests) keeps: the
    /// newest ones, the oldest dropped first; `0` keeps none. Default 10 000, more
    /// than any test sends between two `clear_requests` calls, while a long-running
    /// emulator stays bounded (an entry holds its request body).
    pub request_log_capacity: usize,
    /// The most choices `POST /chat/completions` returns, whatever `n` asks: plays
    /// a compatible server that ignores `n` (`Some(1)`) or caps it. `None`
    /// (default) honours `n`, as the real API does.
    pub max_chat_choices: Option<u64>,
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            latency: Duration::ZERO,
            token_delay: Duration::ZERO,
            response_ttl: Some(Duration::from_secs(30 * 24 * 3600)),
            max_body_bytes: 4 * 1024 * 1024,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            request_log_capacity: 10_000,
            max_chat_choices: None,
        }
    }
}
