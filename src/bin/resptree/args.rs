//! Command-line arguments: clap derive types ([`Args`]), converted by
//! [`Args::into_options`] into validated [`Options`] before any work is done.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use resptree::{RefName, ResponseId};

/// Turn LLM conversations into durable trees you can branch, walk and keep.
///
/// The tree lives in a local store (--store, else RESPTREE_STORE, else
/// $XDG_DATA_HOME/resptree/store or ~/.local/share/resptree/store). Commands that
/// talk to a model use OPENAI_API_KEY / OPENAI_BASE_URL, or --emulator for an
/// embedded offline emulator. IDs may be full ids, unique prefixes or ref names.
#[derive(Debug, Parser)]
#[command(name = "resptree", version, about)]
pub(crate) struct Args {
    /// The store: a directory (created if missing) or a postgres:// URL.
    #[arg(long, global = true, env = "RESPTREE_STORE", value_name = "PATH|URL")]
    store: Option<PathBuf>,
    /// Run against an embedded, in-process emulator instead of a real server.
    #[arg(long, global = true)]
    emulator: bool,
    /// The model (default: RESPTREE_MODEL, else the engine's default).
    #[arg(long, global = true, env = "RESPTREE_MODEL")]
    model: Option<String>,
    /// Which API creates new nodes: the Responses API (continues server-side
    /// parents) or Chat Completions (replays the path; native `n` for fanout).
    #[arg(
        long,
        global = true,
        env = "RESPTREE_BACKEND",
        value_enum,
        default_value_t = BackendKind::Responses
    )]
    backend: BackendKind,
    /// Log what resptree does on stderr: -v requests and loads (info), -vv
    /// commits and retries in detail (debug), -vvv everything, prompts and
    /// replies included (trace). RUST_LOG, when set, decides instead.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Continue a node (or start a new root) and stream the answer.
    Ask(AskArgs),
    /// One child of PARENT per TEXT, in parallel.
    Branch(BranchArgs),
    /// N alternative answers to TEXT under PARENT (one request with --backend chat).
    Fanout(FanoutArgs),
    /// Best-of-N or beam search under PARENT, scored by a judge, within a budget;
    /// names the best leaf with a ref. Run it again to resume.
    Explore(ExploreArgs),
    /// Print the tree, or the subtree under a node.
    Show(ShowArgs),
    /// Print the path from the root down to a node.
    Path(IdArgs),
    /// Show where two nodes' paths part.
    Diff(DiffArgs),
    /// Print the conversation (transcript) along the path to a node.
    Log(IdArgs),
    /// Manage named refs.
    #[command(subcommand)]
    Ref(RefCommand),
    /// Bookmark, label, note or score a node, or remove those; with no
    /// change, list its annotations.
    Annotate(AnnotateArgs),
    /// Remove a node and everything below it.
    Prune(PruneArgs),
    /// Record an existing server response (and its ancestors) in the tree.
    Adopt(AdoptArgs),
    /// Find nodes whose input or output holds every word (and "quoted phrase").
    Search(SearchArgs),
    /// Count nodes, roots, leaves and depth, and add up tokens (and with
    /// --cost, money) by branch.
    Stats(StatsArgs),
    /// Write the whole tree: lossless JSON (default), or one self-contained
    /// HTML file to browse offline (--format html).
    Export(ExportArgs),
    /// Add the nodes and refs of a file written by `export`.
    Import(FileArgs),
    /// Import a ChatGPT data export (conversations.json) as a tree of local nodes.
    ImportChatgpt(FileArgs),
    /// Copy a whole tree between stores (sled paths, postgres:// URLs), then verify.
    Migrate(MigrateArgs),
    /// Run the Responses-API emulator until interrupted (Ctrl-C).
    Emulate(EmulateArgs),
    /// Browse, compare and grow the tree in a web browser (a local server;
    /// prints its URL first). Writes need a server (OPENAI_API_KEY or --emulator).
    Serve(ServeArgs),
    /// Settle what crashed or interrupted runs left in flight: record the
    /// responses the server finished, report the rest.
    Recover,
}

/// Options of `resptree migrate`.
#[derive(Debug, clap::Args)]
pub(crate) struct MigrateArgs {
    /// Where the tree is now: a sled store path or a postgres:// URL.
    #[arg(long, value_name = "PATH|URL")]
    pub(crate) from: String,
    /// Where to copy it: a sled store path or a postgres:// URL; must be empty.
    #[arg(long, value_name = "PATH|URL")]
    pub(crate) to: String,
}

/// Options of `resptree ask`.
#[derive(Debug, clap::Args)]
pub(crate) struct AskArgs {
    /// The node to continue (id, unique prefix or ref); default: a new root.
    #[arg(long, value_name = "ID|REF")]
    pub(crate) parent: Option<String>,
    /// Instructions (system prompt) for this request; default: the parent's.
    #[arg(long, value_name = "TEXT")]
    pub(crate) instructions: Option<String>,
    /// Tools for this request: a JSON file holding an array of tool definitions
    /// (`{"type": "function", "name": …, "parameters": …}` or any other tool);
    /// default: the parent's.
    #[arg(long, value_name = "FILE")]
    pub(crate) tools: Option<PathBuf>,
    /// Structured output: a JSON file holding a JSON schema, sent as a strict
    /// `text.format` named after the file; default: the parent's format.
    #[arg(long, value_name = "FILE")]
    pub(crate) json_schema: Option<PathBuf>,
    /// Background mode: the server keeps working if this run dies or the
    /// connection drops; a dropped stream is resumed, a response stuck in the
    /// queue is cancelled and sent again, and what a killed run left is
    /// recorded by `resptree recover` (Responses API only).
    #[arg(long)]
    pub(crate) background: bool,
    /// The message to send.
    pub(crate) text: String,
}

/// Options of `resptree branch`.
#[derive(Debug, clap::Args)]
pub(crate) struct BranchArgs {
    /// The node to branch from.
    #[arg(value_name = "PARENT")]
    pub(crate) parent: String,
    /// One message per child.
    #[arg(value_name = "TEXT", required = true)]
    pub(crate) texts: Vec<String>,
    /// Background mode: the server keeps working if this run dies or the
    /// connection drops; a dropped stream is resumed, a response stuck in the
    /// queue is cancelled and sent again, and what a killed run left is
    /// recorded by `resptree recover` (Responses API only).
    #[arg(long)]
    pub(crate) background: bool,
}

/// Options of `resptree fanout`.
#[derive(Debug, clap::Args)]
pub(crate) struct FanoutArgs {
    /// The node to answer under.
    #[arg(value_name = "PARENT")]
    pub(crate) parent: String,
    /// The message every alternative answers.
    pub(crate) text: String,
    /// How many alternatives.
    #[arg(short = 'n', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub(crate) n: u16,
    /// Background mode: the server keeps working if this run dies or the
    /// connection drops; a dropped stream is resumed, a response stuck in the
    /// queue is cancelled and sent again, and what a killed run left is
    /// recorded by `resptree recover` (Responses API only).
    #[arg(long)]
    pub(crate) background: bool,
}

/// Options of `resptree explore`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExploreArgs {
    /// The node to explore under (id, unique prefix or ref).
    #[arg(value_name = "PARENT")]
    pub(crate) parent: String,
    /// The message the first level answers.
    pub(crate) text: String,
    /// Children per kept node and level.
    #[arg(long, short = 'w', default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) width: u16,
    /// Nodes kept per level (1: best-of-N when --depth is 1).
    #[arg(long, short = 'k', default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(crate) keep: u16,
    /// Levels.
    #[arg(long, short = 'd', default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub(crate) depth: u16,
    /// The prompt of the next level after the first (repeat for levels 3, 4, …).
    #[arg(long, value_name = "TEXT")]
    pub(crate) follow_up: Vec<String>,
    /// Stop before a level that could take the spending (candidates and
    /// judges, input plus output tokens) past N.
    #[arg(long, value_name = "N")]
    pub(crate) budget_tokens: Option<u64>,
    /// Stop before a level that could take the spending past USD dollars, at
    /// the price table's prices (worst case per request; see `stats --cost`
    /// for the table and how to override it).
    #[arg(long, value_name = "USD")]
    pub(crate) budget_usd: Option<f64>,
    /// Judge the candidates by these criteria (default: "Which answer is more
    /// helpful, correct and concrete?").
    #[arg(long, value_name = "CRITERIA")]
    pub(crate) judge: Option<String>,
    /// Score each candidate on a 1-10 rubric instead of comparing pairs.
    #[arg(long)]
    pub(crate) rubric: bool,
    /// The judge's model (default: --model).
    #[arg(long, value_name = "MODEL")]
    pub(crate) judge_model: Option<String>,
    /// Bound on each candidate's output tokens (default with a budget: 1024).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(16..))]
    pub(crate) max_output_tokens: Option<u32>,
    /// The ref that names the winning leaf.
    #[arg(long = "ref", value_name = "NAME", default_value = "best")]
    pub(crate) ref_name: RefName,
    /// Name the exploration (default: derived from its parameters, so the
    /// same command resumes it).
    #[arg(long, value_name = "ID")]
    pub(crate) id: Option<String>,
    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Output formats of `resptree show`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A text tree.
    Ascii,
    /// The nodes' full records, as a JSON array.
    Json,
    /// A Graphviz digraph.
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
}

/// Options of `resptree show`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The subtree to print (id, unique prefix or ref); default: the whole tree.
    #[arg(value_name = "ID|REF")]
    pub(crate) id: Option<String>,
    /// The output format.
    #[arg(long, value_enum, default_value_t = Format::Ascii)]
    pub(crate) format: Format,
    /// How many levels below the start to print (ascii and json only).
    #[arg(long, value_name = "N")]
    pub(crate) depth: Option<usize>,
    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub(crate) json: bool,
    /// Also print what the node, its path and its subtree cost (ascii only;
    /// prices: see `stats --cost`).
    #[arg(long)]
    pub(crate) cost: bool,
}

/// Options of `resptree annotate`.
#[derive(Debug, clap::Args)]
pub(crate) struct AnnotateArgs {
    /// The node (id, unique prefix or ref).
    #[arg(value_name = "ID|REF")]
    pub(crate) id: String,
    /// Bookmark the node.
    #[arg(long)]
    pub(crate) bookmark: bool,
    /// Add a label (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub(crate) label: Vec<String>,
    /// Set the node's note (replacing any).
    #[arg(long, value_name = "TEXT")]
    pub(crate) note: Option<String>,
    /// Set a score by hand, as CRITERION=VALUE (repeatable).
    #[arg(long, value_name = "CRITERION=VALUE")]
    pub(crate) score: Vec<String>,
    /// Remove an annotation by its key: bookmark, note, label/TEXT,
    /// score/CRITERION (repeatable; done before the additions).
    #[arg(long, value_name = "KEY")]
    pub(crate) remove: Vec<String>,
    /// Print the node's annotations as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Options of `resptree stats`.
#[derive(Debug, clap::Args)]
pub(crate) struct StatsArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
    /// Also price the tree and each branch, at the built-in list prices merged
    /// with the user's price file ($RESPTREE_PRICES, else
    /// $XDG_CONFIG_HOME/resptree/prices.json or ~/.config/resptree/prices.json).
    #[arg(long)]
    pub(crate) cost: bool,
}

/// Options of `resptree search`.
#[derive(Debug, clap::Args)]
pub(crate) struct SearchArgs {
    /// Words (a node must hold all of them) and "quoted phrases";
    /// case-insensitive, punctuation ignored.
    pub(crate) query: String,
    /// Only this node and the nodes below it (id, unique prefix or ref).
    #[arg(long, value_name = "ID|REF")]
    pub(crate) under: Option<String>,
    /// Only the node a ref points at and the nodes below it.
    #[arg(long = "ref", value_name = "NAME")]
    pub(crate) under_ref: Option<String>,
    /// Only nodes answered by this model. (Not `--model`: that global flag
    /// picks the model new nodes are asked of, and takes RESPTREE_MODEL as its
    /// default, which would filter every search silently.)
    #[arg(long, value_name = "MODEL")]
    pub(crate) answered_by: Option<String>,
    /// Only nodes created after this time (UTC): a date (2026-12-01), a date
    /// and time (2026-12-01T09:30:00Z) or Unix seconds.
    #[arg(long, value_name = "TIME")]
    pub(crate) after: Option<resptree::Timestamp>,
    /// Only nodes created before this time (UTC; same forms as --after).
    #[arg(long, value_name = "TIME")]
    pub(crate) before: Option<resptree::Timestamp>,
    /// The most hits to print, best first.
    #[arg(long, value_name = "N", default_value_t = resptree::search::DEFAULT_LIMIT)]
    pub(crate) limit: usize,
    /// Print the hits as JSON (ids, scores, snippets with match byte ranges).
    #[arg(long)]
    pub(crate) json: bool,
}

/// A command that takes one node.
#[derive(Debug, clap::Args)]
pub(crate) struct IdArgs {
    /// The node (id, unique prefix or ref).
    #[arg(value_name = "ID|REF")]
    pub(crate) id: String,
    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Options of `resptree diff`.
#[derive(Debug, clap::Args)]
pub(crate) struct DiffArgs {
    /// The left node.
    #[arg(value_name = "A")]
    pub(crate) left: String,
    /// The right node.
    #[arg(value_name = "B")]
    pub(crate) right: String,
    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Just `--json`.
#[derive(Debug, clap::Args)]
pub(crate) struct JsonArgs {
    /// Print JSON for scripts.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `resptree ref ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum RefCommand {
    /// Point a ref at a node (creating or moving it).
    Set {
        /// The ref's name.
        name: RefName,
        /// The node (id, unique prefix or ref).
        #[arg(value_name = "ID|REF")]
        target: String,
    },
    /// Print the node a ref points to.
    Get {
        /// The ref's name.
        name: RefName,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// List every ref.
    List(JsonArgs),
    /// Delete a ref (the node stays).
    Delete {
        /// The ref's name.
        name: RefName,
    },
}

/// Options of `resptree prune`.
#[derive(Debug, clap::Args)]
pub(crate) struct PruneArgs {
    /// The node to remove, with everything below it.
    #[arg(value_name = "ID|REF")]
    pub(crate) id: String,
    /// Also delete the removed responses on the server.
    #[arg(long)]
    pub(crate) remote: bool,
}

/// Options of `resptree adopt`.
#[derive(Debug, clap::Args)]
pub(crate) struct AdoptArgs {
    /// The server's response id (resp_...).
    #[arg(value_name = "RESP_ID")]
    pub(crate) id: ResponseId,
}

/// A command that reads or writes one file.
#[derive(Debug, clap::Args)]
pub(crate) struct FileArgs {
    /// The file; `-` for standard input/output.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
}

/// Formats of `resptree export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ExportFormat {
    /// The lossless JSON document `import` reads back.
    Json,
    /// One self-contained, read-only HTML file (outline, node view, search,
    /// compare) that opens offline.
    Html,
}

/// Options of `resptree export`.
#[derive(Debug, clap::Args)]
pub(crate) struct ExportArgs {
    /// The file; `-` for standard output.
    #[arg(value_name = "FILE")]
    pub(crate) file: PathBuf,
    /// What to write.
    #[arg(long, value_enum, default_value_t = ExportFormat::Json)]
    pub(crate) format: ExportFormat,
}

/// Options of `resptree serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on; port 0 picks a free port. A non-loopback address
    /// needs --allow-remote.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// Allow a non-loopback --listen address; every request must then carry
    /// the access token in the printed URL.
    #[arg(long)]
    pub(crate) allow_remote: bool,
}

/// Options of `resptree emulate`.
#[derive(Debug, clap::Args)]
pub(crate) struct EmulateArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub(crate) listen: SocketAddr,
    /// Seed of the fake model.
    #[arg(long, default_value_t = 0)]
    pub(crate) seed: u64,
    /// Fixed latency before each generated reply, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) latency_ms: u64,
    /// Delay between streamed deltas, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) token_delay_ms: u64,
}

/// The API that creates new nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackendKind {
    /// `POST /v1/responses`.
    Responses,
    /// `POST /v1/chat/completions`.
    Chat,
}

/// Validated options: what the commands run with.
#[derive(Debug)]
pub(crate) struct Options {
    /// Where the tree is stored.
    pub(crate) store: PathBuf,
    /// Whether to run against an embedded emulator.
    pub(crate) emulator: bool,
    /// The model, when one was chosen.
    pub(crate) model: Option<String>,
    /// The API that creates new nodes.
    pub(crate) backend: BackendKind,
    /// How many times `-v` was given.
    pub(crate) verbose: u8,
    /// The command, its arguments checked.
    pub(crate) command: Command,
}

/// Arguments that parse but make no sense; reported with exit code 2.
#[derive(Debug)]
pub(crate) struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn usage(msg: impl Into<String>) -> UsageError {
    UsageError(msg.into())
}

impl Args {
    /// Checks what clap cannot and settles the store location.
    ///
    /// `env` looks up environment variables (a parameter so that tests need not
    /// change the process environment).
    pub(crate) fn into_options(
        self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Options, UsageError> {
        let env = |name: &str| env(name).filter(|v| !v.is_empty());
        let store = match self.store {
            Some(path) if path.as_os_str().is_empty() => {
                return Err(usage("--store must not be empty"));
            }
            Some(path) => path,
            None => default_store(&env).ok_or_else(|| {
                usage("no store location: pass --store PATH, or set RESPTREE_STORE or HOME")
            })?,
        };
        if self.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
            return Err(usage("--model must not be empty"));
        }
        check_command(&self.command)?;
        Ok(Options {
            store,
            emulator: self.emulator,
            model: self.model,
            backend: self.backend,
            verbose: self.verbose,
            command: self.command,
        })
    }
}

/// `$XDG_DATA_HOME/resptree/store`, else `$HOME/.local/share/resptree/store`.
fn default_store(env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env("HOME").map(|home| PathBuf::from(home).join(".local/share")))?;
    Some(base.join("resptree").join("store"))
}

fn check_command(command: &Command) -> Result<(), UsageError> {
    let blank = |s: &str| s.trim().is_empty();
    match command {
        Command::Ask(a) if blank(&a.text) => Err(usage("the message TEXT must not be empty")),
        Command::Migrate(m) if blank(&m.from) || blank(&m.to) => {
            Err(usage("--from and --to must not be empty"))
        }
        Command::Migrate(m) if m.from.trim() == m.to.trim() => {
            Err(usage("--from and --to name the same store"))
        }
        Command::Branch(b) if b.texts.iter().any(|t| blank(t)) => {
            Err(usage("every TEXT must be non-empty"))
        }
        Command::Fanout(f) if blank(&f.text) => Err(usage("the message TEXT must not be empty")),
        Command::Serve(s) if !s.listen.ip().is_loopback() && !s.allow_remote => {
            Err(usage(format!(
                "--listen {} is not a loopback address; pass --allow-remote to serve it (a token is then required)",
                s.listen
            )))
        }
        Command::Explore(e) if blank(&e.text) => Err(usage("the message TEXT must not be empty")),
        Command::Explore(e)
            if e.budget_usd
                .is_some_and(|x| !x.is_finite() || !(0.0..=1e9).contains(&x)) =>
        {
            Err(usage(
                "--budget-usd must be a number of dollars from 0 to 1e9",
            ))
        }
        Command::Show(s)
            if s.depth.is_some() && matches!(s.format, Format::Dot | Format::Mermaid) =>
        {
            Err(usage("--depth applies to the ascii and json formats only"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(argv: &[&str], env: &[(&str, &str)]) -> Result<Options, UsageError> {
        let args = Args::try_parse_from(std::iter::once("resptree").chain(argv.iter().copied()))
            .map_err(|e| UsageError(e.to_string()))?;
        args.into_options(|name| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        })
    }

    #[test]
    fn store_comes_from_flag_then_xdg_then_home() {
        let o = options(&["--store", "/s", "stats"], &[("HOME", "/h")]).unwrap();
        assert_eq!(o.store, PathBuf::from("/s"));
        let o = options(&["stats"], &[("XDG_DATA_HOME", "/x"), ("HOME", "/h")]).unwrap();
        assert_eq!(o.store, PathBuf::from("/x/resptree/store"));
        let o = options(&["stats"], &[("XDG_DATA_HOME", "rel"), ("HOME", "/h")]).unwrap();
        assert_eq!(o.store, PathBuf::from("/h/.local/share/resptree/store"));
        let err = options(&["stats"], &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no store location: pass --store PATH, or set RESPTREE_STORE or HOME"
        );
    }

    #[test]
    fn rejects_what_clap_accepts_but_means_nothing() {
        let env = [("HOME", "/h")];
        let err = options(&["ask", "  "], &env).unwrap_err();
        assert_eq!(err.to_string(), "the message TEXT must not be empty");
        let err = options(&["show", "--format", "dot", "--depth", "2"], &env).unwrap_err();
        assert_eq!(
            err.to_string(),
            "--depth applies to the ascii and json formats only"
        );
        let err = options(&["--model", "", "stats"], &env).unwrap_err();
        assert_eq!(err.to_string(), "--model must not be empty");
        assert!(options(&["fanout", "p", "t", "-n", "0"], &env).is_err());
        assert!(options(&["ref", "set", "bad name", "x"], &env).is_err());
    }
}
