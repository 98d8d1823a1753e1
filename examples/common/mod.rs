//! Shared set-up for the examples: the backend (the embedded emulator unless
//! `OPENAI_API_KEY` is set) and the store location.

use std::path::PathBuf;

use resptree::backend::ResponsesBackend;
use resptree::client::Client;
use resptree::emulator::Emulator;

/// The model the examples ask for: `RESPTREE_MODEL`, else a small, cheap one.
pub(crate) fn model() -> String {
    std::env::var("RESPTREE_MODEL").unwrap_or_else(|_| "gpt-4o-mini".to_owned())
}

/// A Responses backend: the real API when `OPENAI_API_KEY` is set, otherwise an
/// emulator on loopback (returned too, so it lives as long as the example).
pub(crate) async fn backend() -> resptree::Result<(ResponsesBackend, Option<Emulator>)> {
    if std::env::var_os("OPENAI_API_KEY").is_some() {
        eprintln!(
            "using the OpenAI API (OPENAI_API_KEY is set), model {}",
            model()
        );
        return Ok((ResponsesBackend::new(Client::from_env()?), None));
    }
    let emulator = Emulator::spawn().await?;
    eprintln!("using the embedded emulator at {}", emulator.base_url());
    let client = Client::builder()
        .base_url(emulator.base_url())
        .api_key("sk-emulator")
        .build()?;
    Ok((ResponsesBackend::new(client), Some(emulator)))
}

/// Where to keep the tree: the first command-line argument, else a fresh
/// temporary directory (returned so that it is removed at the end).
pub(crate) fn store_path(name: &str) -> std::io::Result<(PathBuf, Option<tempfile::TempDir>)> {
    match std::env::args_os().nth(1) {
        Some(dir) => Ok((PathBuf::from(dir), None)),
        None => {
            let dir = tempfile::tempdir()?;
            Ok((dir.path().join(name), Some(dir)))
        }
    }
}
