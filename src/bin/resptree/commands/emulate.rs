//! `resptree emulate`: serve the emulator until Ctrl-C.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use resptree::emulator::Emulator;

use crate::args::EmulateArgs;

/// Spawns the emulator, prints its base URL on one line, waits for Ctrl-C.
pub(crate) async fn run(args: EmulateArgs) -> anyhow::Result<ExitCode> {
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "resptree: warning: listening on non-loopback address {}; anyone who can reach it can use the emulator",
            args.listen
        );
    }
    let emu = Emulator::builder()
        .listen(args.listen)
        .seed(args.seed)
        .latency(Duration::from_millis(args.latency_ms))
        .token_delay(Duration::from_millis(args.token_delay_ms))
        .spawn()
        .await
        .context("starting the emulator")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", emu.base_url())?;
    // Scripts read the URL from a pipe, so it must not sit in a buffer.
    stdout.flush()?;
    drop(stdout);
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    emu.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
