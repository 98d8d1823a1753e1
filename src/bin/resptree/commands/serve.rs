//! `resptree serve`: the web explorer until Ctrl-C.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context as _;
use resptree::web::WebServer;

use crate::args::ServeArgs;
use crate::context::Context;

/// Opens the store, starts the explorer (with an engine when a server is
/// configured, else read-only), prints its URL as the first line on stdout and
/// serves until Ctrl-C.
pub(crate) async fn run(ctx: &Context, args: &ServeArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    // Held until the end: it keeps the embedded emulator (--emulator) alive.
    let mut session = None;
    let builder = if ctx.has_server() {
        let s = ctx.session(tree).await?;
        let builder = WebServer::with_engine(s.engine.clone());
        session = Some(s);
        builder
    } else {
        eprintln!(
            "resptree: read-only: set OPENAI_API_KEY (or pass --emulator) to continue, branch and fan out from the browser"
        );
        WebServer::read_only(tree)
    };
    let prices = resptree::cost::PriceTable::load()?;
    let server = builder
        .prices(prices)
        .listen(args.listen)
        .allow_remote(args.allow_remote)
        .spawn()
        .await
        .context("starting the web explorer")?;
    if !args.listen.ip().is_loopback() {
        eprintln!(
            "resptree: warning: listening on non-loopback address {}; every request needs the token in the URL",
            server.addr()
        );
    }
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", server.url())?;
    // Scripts and tests read the URL from a pipe: it must not sit in a buffer.
    stdout.flush()?;
    drop(stdout);
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    server.shutdown().await;
    drop(session);
    Ok(ExitCode::SUCCESS)
}
