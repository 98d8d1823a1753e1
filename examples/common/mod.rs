//! Shared set-up for the examples: the backend (the embedded emulator unless
//! `OPENAI_API_KEY` is set; the Responses API unless `RESPTREE_BACKEND=chat`) and
//! the store location.

use std::path::PathBuf;
use std::sync::Arc;

use resptree::backend::{Backend, ChatBackend, ResponsesBackend};
use resptree::client::Client;
use resptree::emulator::Emulator;

/// The model the examples ask for: `RESPTREE_MODEL`, else a small, cheap one.
pub(crate) fn model() -> String {
    std::env::var("RESPTREE_MODEL").unwrap_or_else(|_| "gpt-4o-mini".to_owned())
}

/// The backend: the real API (`OPENAI_API_KEY`, and `OPENAI_BASE_URL` for an
/// OpenAI-compatible server) when a key is set, otherwise an emulator on loopback
/// (returned too, so it lives as long as the example). `RESPTREE_BACKEND=chat`
/// picks Chat Completions instead of the Responses API.
pub(crate) async fn backend() -> resptree::Result<(Arc<dyn Backend>, Option<Emulator>)> {
    let chat = match std::env::var("RESPTREE_BACKEND").as_deref() {
        Ok("chat") => true,
        Ok("responses") | Err(_) => false,
        Ok(other) => {
            return Err(resptree::Error::Config {
                what: format!("RESPTREE_BACKEND must be \"responses\" or \"chat\", not {other:?}"),
                source: None,
            });
        }
    };
    let make = |client: Client| -> Arc<dyn Backend> {
        if chat {
            Arc::new(ChatBackend::new(client))
        } else {
            Arc::new(ResponsesBackend::new(client))
        }
    };
    let api = if chat {
        "Chat Completions"
    } else {
        "Responses"
    };
    if std::env::var_os("OPENAI_API_KEY").is_some() {
        eprintln!(
            "using the OpenAI {api} API (OPENAI_API_KEY is set), model {}",
            model()
        );
        return Ok((make(Client::from_env()?), None));
    }
    let emulator = Emulator::spawn().await?;
    eprintln!(
        "using the {api} API of the embedded emulator at {}",
        emulator.base_url()
    );
    let client = Client::builder()
        .base_url(emulator.base_url())
        .api_key("sk-emulator")
        .build()?;
    Ok((make(client), Some(emulator)))
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
