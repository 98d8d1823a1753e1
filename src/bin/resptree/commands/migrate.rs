//! `resptree migrate --from A --to B`: copy a tree between stores and verify it.

use std::process::ExitCode;

use anyhow::Context as _;
use resptree::store;

use crate::args::MigrateArgs;

/// Opens both stores, copies every node, ref and attempt, and prints the counts.
pub(crate) fn run(args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let from = store::open_location(&args.from)
        .with_context(|| format!("opening the source store {}", redact(&args.from)))?;
    let to = store::open_location(&args.to)
        .with_context(|| format!("opening the destination store {}", redact(&args.to)))?;
    let report = store::migrate(&*from, &*to)?;
    super::print(&format!(
        "copied {} nodes, {} refs, {} attempts; counts verified",
        report.nodes, report.refs, report.attempts
    ))?;
    Ok(ExitCode::SUCCESS)
}

/// A location fit to print: a URL's password is replaced by `***`.
fn redact(location: &str) -> String {
    let Some((scheme, rest)) = location.split_once("://") else {
        return location.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return location.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
        None => location.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_never_print() {
        assert_eq!(
            redact("postgres://me:s3cret@127.0.0.1:5432/db"),
            "postgres://me:***@127.0.0.1:5432/db"
        );
        assert_eq!(redact("postgres://me@host/db"), "postgres://me@host/db");
        assert_eq!(redact("/var/lib/tree"), "/var/lib/tree");
    }
}
