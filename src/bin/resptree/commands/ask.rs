//! `resptree ask`: continue a node (or start a root), streaming the answer.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use futures_util::StreamExt;
use resptree::engine::{RespondOptions, StreamUpdate};
use resptree::settings::{TextFormat, Tool};
use serde_json::Value;

use crate::args::AskArgs;
use crate::context::Context;

/// Streams the answer to stdout as it arrives, then prints the new node's id on
/// its own line.
pub(crate) async fn run(ctx: &Context, args: AskArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let parent = args
        .parent
        .as_deref()
        .map(|p| Context::resolve(&tree, p))
        .transpose()?;
    let session = ctx.session(tree).await?;
    let mut options = RespondOptions::default();
    if let Some(text) = args.instructions {
        options = options.instructions(text);
    }
    if let Some(path) = &args.tools {
        options.settings = options.settings.tools(read_tools(path)?);
    }
    if let Some(path) = &args.json_schema {
        options = options.text_format(read_schema(path)?);
    }
    if args.background {
        options = options.background(true);
    }
    let mut stream = session
        .engine
        .respond_stream(parent.as_ref(), &args.text, &options);
    let mut out = std::io::stdout().lock();
    let mut committed = None;
    let mut ends_with_newline = true;
    while let Some(update) = stream.next().await {
        match update? {
            StreamUpdate::Delta(text) => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
                if !text.is_empty() {
                    ends_with_newline = text.ends_with('\n');
                }
            }
            StreamUpdate::Committed(node) => committed = Some(node),
            _ => {}
        }
    }
    let node = committed
        .ok_or_else(|| anyhow::anyhow!("the answer stream ended before the node was recorded"))?;
    if !ends_with_newline {
        writeln!(out)?;
    }
    writeln!(out, "{}", ctx.style.id(node.id.as_str()))?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// Reads a JSON file, naming it in every error.
fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// The tool definitions of `--tools`: a JSON array of tool objects (or an
/// object with such a `tools` array, as a request body holds it).
fn read_tools(path: &Path) -> anyhow::Result<Vec<Tool>> {
    let value = read_json(path)?;
    let list = match value {
        Value::Array(list) => list,
        Value::Object(mut map) => match map.remove("tools") {
            Some(Value::Array(list)) => list,
            _ => anyhow::bail!("{} holds no array of tools", path.display()),
        },
        _ => anyhow::bail!("{} holds no array of tools", path.display()),
    };
    list.into_iter()
        .enumerate()
        .map(|(i, tool)| {
            if tool.get("type").and_then(Value::as_str).is_none() {
                anyhow::bail!("tool {i} in {} has no \"type\"", path.display());
            }
            Ok(Tool::raw(tool))
        })
        .collect()
}

/// The `text.format` of `--json-schema`: the file's schema, strict, named after
/// the file (its stem, with characters the API refuses replaced by `_`).
fn read_schema(path: &Path) -> anyhow::Result<TextFormat> {
    let schema = read_json(path)?;
    if !schema.is_object() {
        anyhow::bail!("{} does not hold a JSON schema object", path.display());
    }
    let name: String = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let name = if name.is_empty() {
        "schema".to_owned()
    } else {
        name
    };
    Ok(TextFormat::json_schema(name, schema))
}
