//! `resptree search`: full-text search over the nodes' inputs and outputs.

use std::process::ExitCode;

use resptree::search::{Field, SearchHit, SearchOptions, Snippet};

use crate::args::SearchArgs;
use crate::context::Context;
use crate::output::Style;

/// One line per hit, best first: `short-id  in|out: …snippet…`, the matches
/// highlighted on a terminal; `--json`: the hits as `ResponseTree::search`
/// returns them (full ids, scores, snippets with byte ranges).
pub(crate) fn run(ctx: &Context, args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let tree = ctx.open_tree()?;
    let mut options = SearchOptions::new().with_limit(args.limit);
    if let Some(under) = &args.under {
        options = options.with_under(Context::resolve(&tree, under)?);
    }
    if let Some(name) = &args.under_ref {
        options = options.with_ref(name.clone());
    }
    if let Some(model) = &args.answered_by {
        options = options.with_model(model.clone());
    }
    if let Some(at) = args.after {
        options = options.with_created_after(at);
    }
    if let Some(at) = args.before {
        options = options.with_created_before(at);
    }
    let hits = tree.search(&args.query, &options)?;
    if args.json {
        super::print_json(&hits)?;
        return Ok(ExitCode::SUCCESS);
    }
    let text: String = hits.iter().map(|hit| line(ctx.style, hit)).collect();
    super::print(&text)?;
    Ok(ExitCode::SUCCESS)
}

/// `short-id  in: …text with [matches]…` on one line.
fn line(style: Style, hit: &SearchHit) -> String {
    let snippet = hit
        .snippets
        .first()
        .map_or_else(String::new, |s| snippet(style, s));
    format!("{}  {snippet}\n", style.id(hit.id.short()))
}

fn snippet(style: Style, s: &Snippet) -> String {
    let field = match s.field {
        Field::Input => "in",
        _ => "out",
    };
    let mut out = format!("{}: ", style.dim(field));
    if s.cut_before {
        out.push('…');
    }
    let mut at = 0;
    for m in &s.matches {
        out.push_str(&one_line(&s.text[at..m.start]));
        out.push_str(&style.matched(&one_line(&s.text[m.clone()])));
        at = m.end;
    }
    out.push_str(&one_line(&s.text[at..]));
    if s.cut_after {
        out.push('…');
    }
    out
}

/// `text` with line breaks and tabs as spaces, and other control characters
/// dropped, so a hit stays on its line and model text cannot move the cursor.
fn one_line(text: &str) -> String {
    text.chars()
        .filter_map(|c| match c {
            '\n' | '\r' | '\t' => Some(' '),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect()
}
