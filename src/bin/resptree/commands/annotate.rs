//! `resptree annotate`: bookmark, label, note or score a node by hand, remove
//! annotations, or list them.

use std::process::ExitCode;

use anyhow::Context as _;
use resptree::{Annotation, AnnotationKey, Score, ScoreMethod};

use crate::args::AnnotateArgs;
use crate::context::Context;

/// Applies the removals, then the additions, then prints the node's
/// annotations (one per line, or `--json`: the stored records).
pub(crate) fn run(ctx: &Context, args: &AnnotateArgs) -> anyhow::Result<ExitCode> {
    // Parse everything before writing anything, so a typo changes nothing.
    let removals = args
        .remove
        .iter()
        .map(|key| AnnotationKey::new(key))
        .collect::<Result<Vec<_>, _>>()?;
    let mut additions = Vec::new();
    if args.bookmark {
        additions.push(Annotation::Bookmark);
    }
    additions.extend(args.label.iter().map(Annotation::label));
    if let Some(note) = &args.note {
        additions.push(Annotation::note(note));
    }
    for score in &args.score {
        additions.push(parse_score(score)?);
    }
    for annotation in &additions {
        annotation.validate()?;
    }

    let tree = ctx.open_tree()?;
    let id = Context::resolve(&tree, &args.id)?;
    for key in &removals {
        tree.remove_annotation(&id, key)?;
    }
    if !additions.is_empty() {
        tree.annotate_all(additions.into_iter().map(|a| (id.clone(), a)))?;
    }
    let annotations = tree.annotations(&id)?;
    if args.json {
        super::print_json(&annotations)?;
    } else {
        let text: String = annotations
            .iter()
            .map(|s| format!("{}\n", s.annotation))
            .collect();
        super::print(&text)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// `CRITERION=VALUE` as a manual score.
fn parse_score(text: &str) -> anyhow::Result<Annotation> {
    let (criterion, value) = text
        .rsplit_once('=')
        .with_context(|| format!("--score {text:?}: expected CRITERION=VALUE"))?;
    let value: f64 = value
        .trim()
        .parse()
        .with_context(|| format!("--score {text:?}: {value:?} is not a number"))?;
    Ok(Annotation::Score(Score::new(
        criterion.trim(),
        value,
        ScoreMethod::Manual,
    )))
}
