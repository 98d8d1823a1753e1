//! One module per subcommand (`branch` also holds `fanout`, `import` also
//! `import-chatgpt`: each pair shares its code).

pub(crate) mod adopt;
pub(crate) mod ask;
pub(crate) mod branch;
pub(crate) mod diff;
pub(crate) mod emulate;
pub(crate) mod export;
pub(crate) mod import;
pub(crate) mod log;
pub(crate) mod migrate;
pub(crate) mod path;
pub(crate) mod prune;
pub(crate) mod recover;
pub(crate) mod refs;
pub(crate) mod search;
pub(crate) mod serve;
pub(crate) mod show;
pub(crate) mod stats;

use std::io::Write;

/// Writes `text` to stdout, adding a final newline if it has none.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    if !text.is_empty() && !text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Writes `value` to stdout as pretty JSON.
pub(crate) fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    print(&serde_json::to_string_pretty(value)?)
}
