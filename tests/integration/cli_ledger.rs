//! The CLI's view of annotations and costs: `show` lists a subtree's
//! annotations under the tree.

// Tests unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resptree::{Annotation, NodeId, ResponseTree, Score, ScoreMethod};

use crate::cli_support::*;

/// Annotates nodes of the CLI's store through the library (the tree is
/// dropped, so its lock is released, before the next command runs).
fn annotate(cli: &Cli, annotations: &[(&str, Annotation)]) {
    let tree = ResponseTree::open(&cli.store).unwrap();
    for (id, annotation) in annotations {
        tree.annotate(&NodeId::new(id).unwrap(), annotation.clone())
            .unwrap();
    }
}

#[test]
fn show_lists_the_annotations_of_the_shown_subtree() {
    let cli = Cli::new();
    let root = cli.ask(None, "Plan a weekend in Paris");
    let child = cli.ask(Some(&root), "Make it cheaper");
    // Nothing annotated: no section.
    assert!(!cli.ok(&["show"]).contains("annotations:"));
    annotate(
        &cli,
        &[
            (
                &child,
                Annotation::Score(Score::new("thrift", 0.5, ScoreMethod::Rubric)),
            ),
            (&child, Annotation::note("good\nbut long")),
            (&root, Annotation::Bookmark),
        ],
    );
    let short = |id: &str| NodeId::new(id).unwrap().short().to_owned();
    let out = cli.ok(&["show"]);
    let (_, section) = out.split_once("\nannotations:\n").unwrap();
    assert_eq!(
        section,
        format!(
            "{r}  bookmark\n{c}  note: good⏎but long\n{c}  score thrift = 0.5 (rubric)\n",
            r = short(&root),
            c = short(&child)
        )
    );
    // Under the child: only the child's.
    let out = cli.ok(&["show", &child]);
    assert!(!out.contains("bookmark"), "{out}");
    assert!(out.contains("score thrift"), "{out}");
}
