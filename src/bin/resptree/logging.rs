//! Log output: the library's `tracing` events, formatted on stderr (stdout is
//! for results). `-v` raises resptree's own level; `RUST_LOG`, when set, wins.

use tracing_subscriber::EnvFilter;

/// Installs the subscriber. `verbose` counts `-v` flags; `rust_log` is the
/// `RUST_LOG` variable. Never fails: logging is not worth failing a command.
pub(crate) fn init(verbose: u8, rust_log: Option<&str>) {
    let filter = EnvFilter::builder().parse_lossy(directives(verbose, rust_log));
    // Only `main` installs a subscriber, once, so this cannot find one already set;
    // if it somehow did, the command runs without logs rather than not at all.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// The filter directives: `RUST_LOG` if it is set and not blank, else warnings
/// from everything plus resptree's own events at the level `-v` asks for.
fn directives(verbose: u8, rust_log: Option<&str>) -> String {
    if let Some(value) = rust_log.filter(|v| !v.trim().is_empty()) {
        return value.to_owned();
    }
    let ours = match verbose {
        0 => return "warn".to_owned(),
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    format!("warn,resptree={ours}")
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn verbosity_raises_only_our_level_and_rust_log_wins() {
        assert_eq!(directives(0, None), "warn");
        assert_eq!(directives(1, None), "warn,resptree=info");
        assert_eq!(directives(2, None), "warn,resptree=debug");
        assert_eq!(directives(3, None), "warn,resptree=trace");
        assert_eq!(directives(7, None), "warn,resptree=trace");
        assert_eq!(directives(3, Some("off")), "off");
        assert_eq!(
            directives(0, Some("resptree::store=debug")),
            "resptree::store=debug"
        );
        // A blank variable is as good as unset.
        assert_eq!(directives(1, Some("  ")), "warn,resptree=info");
    }
}
