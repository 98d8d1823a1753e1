//! `resptree recover`: settle the attempts crashed or interrupted runs left in
//! the journal ([`Engine::recover`](resptree::Engine::recover)).

use std::process::ExitCode;

use resptree::engine::RecoveryReport;

use crate::context::Context;

/// Adopts what the server finished and prints what was done: one line per
/// recorded node on stdout, what could not be settled on stderr. Exit 1 if
/// anything stays unsettled.
pub(crate) async fn run(ctx: &Context) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let session = ctx.connect(tree).await?;
    let report = session.engine.recover().await?;
    let mut text: String = report
        .recovered
        .iter()
        .map(|id| format!("{}  recovered\n", ctx.style.id(id.as_str())))
        .collect();
    text.push_str(&format!(
        "recovered {}, already recorded {}, unresolved {}, left for later {}, owned by live processes {}",
        report.recovered.len(),
        report.already_recorded,
        report.unresolved.len(),
        report.deferred.len(),
        report.live.len()
    ));
    super::print(&text)?;
    for line in problems(&report) {
        eprintln!("resptree: {line}");
    }
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// What a command's automatic settling did, in lines for stderr; nothing if
/// the journal held nothing stale.
pub(crate) fn summary(report: &RecoveryReport) -> Vec<String> {
    let mut lines = Vec::new();
    if !report.recovered.is_empty() {
        lines.push(format!(
            "recorded {} response(s) an earlier run left in flight: {}",
            report.recovered.len(),
            report
                .recovered
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines.extend(problems(report));
    lines
}

/// One line per attempt that could not be settled.
fn problems(report: &RecoveryReport) -> Vec<String> {
    let unresolved = report.unresolved.iter().map(|(attempt, err)| {
        format!(
            "attempt {} (under {}) could not be recovered and was dropped: {err:#}",
            attempt.id,
            parent(attempt)
        )
    });
    let deferred = report.deferred.iter().map(|(attempt, err)| {
        format!(
            "attempt {} (under {}) is not settled yet, run `resptree recover` later: {err:#}",
            attempt.id,
            parent(attempt)
        )
    });
    unresolved.chain(deferred).collect()
}

fn parent(attempt: &resptree::store::Attempt) -> String {
    attempt
        .parent
        .as_ref()
        .map_or_else(|| "a new root".to_owned(), ToString::to_string)
}
