//! Renderers: exact output for a hand-built tree, JSON round trips and rejections.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use resptree::import;
use resptree::render::{self, AsciiOptions, DiagramOptions};
use resptree::{Error, Node, RefName, ResponseTree, Timestamp, TreeViolation};
use serde_json::{Value, json};

use crate::tree::{fill, id, node, sample_nodes};

fn sample() -> ResponseTree {
    let t = ResponseTree::in_memory();
    fill(&t);
    t.set_ref(RefName::new("formal").unwrap(), &id("resp_b1"))
        .unwrap();
    t.set_ref(RefName::new("kids").unwrap(), &id("resp_a2"))
        .unwrap();
    t.set_ref(RefName::new("z").unwrap(), &id("resp_a2"))
        .unwrap();
    t
}

#[test]
fn ascii_whole_forest() {
    let text = render::ascii(&sample(), None, &AsciiOptions::default().with_width(None)).unwrap();
    assert_eq!(
        text,
        "\
root Plan a weekend in Paris → Louvre on Saturday, Montmartre on Sunday. (10/1 tok)
├── a Make it cheaper → Walk the Marais, picnic by the Seine. (20/2 tok)
│   ├── a1 Add a rainy-day option → Musée d'Orsay. (40/4 tok)
│   └── a2 [kids, z] Kid friendly? → Jardin d'Acclimatation. (50/5 tok)
└── b Make it fancier → Dinner at Le Meurice. (30/3 tok)
    b1 [formal] Merge both plans → Orsay, then Le Meurice. (60/6 tok)
other Unrelated question → Unrelated answer. (70/7 tok)
"
    );
}

#[test]
fn ascii_truncates_to_width() {
    let text = render::ascii(
        &sample(),
        None,
        &AsciiOptions::default().with_width(Some(60)),
    )
    .unwrap();
    assert_eq!(
        text,
        "\
root Plan a weekend in P… → Louvre on Saturday, … (10/1 tok)
├── a Make it cheaper → Walk the Marais, picnic … (20/2 tok)
│   ├── a1 Add a rainy-day opti… → Musée d'Orsay. (40/4 tok)
│   └── a2 [kids, z] Kid friendl… → Jardin d'Acc… (50/5 tok)
└── b Make it fancier → Dinner at Le Meurice. (30/3 tok)
    b1 [formal] Merge both pla… → Orsay, then Le… (60/6 tok)
other Unrelated question → Unrelated answer. (70/7 tok)
"
    );
    for line in text.lines() {
        assert!(line.chars().count() <= 60, "{line:?}");
    }
}

#[test]
fn ascii_subtree_depth_limit_and_no_tokens() {
    let t = sample();
    let opts = AsciiOptions::default()
        .with_max_depth(Some(1))
        .with_tokens(false);
    assert_eq!(
        render::ascii(&t, None, &opts).unwrap(),
        "\
root Plan a weekend in Paris → Louvre on Saturday, Montmartre on Sunday.
├── a Make it cheaper → Walk the Marais, picnic by the Seine.
│   └── … 2 more
└── b Make it fancier → Dinner at Le Meurice.
    … 1 more
other Unrelated question → Unrelated answer.
"
    );
    assert_eq!(
        render::ascii(&t, Some(&id("resp_a")), &AsciiOptions::default()).unwrap(),
        "\
a Make it cheaper → Walk the Marais, picnic by the Seine. (20/2 tok)
├── a1 Add a rainy-day option → Musée d'Orsay. (40/4 tok)
└── a2 [kids, z] Kid friendly? → Jardin d'Acclimatation. (50/5 tok)
"
    );
    assert!(matches!(
        render::ascii(&t, Some(&id("resp_nope")), &opts),
        Err(Error::NodeNotFound(_))
    ));
}

#[test]
fn ascii_shows_status_when_there_is_no_output() {
    let t = ResponseTree::in_memory();
    let mut n = Node::new(id("resp_x"), None).with_created_at(Timestamp(1));
    n.input
        .push(json!({"type": "function_call_output", "call_id": "c", "output": "42"}));
    t.insert(n).unwrap();
    assert_eq!(
        render::ascii(&t, None, &AsciiOptions::default()).unwrap(),
        "x ⚙ c → 42 → (completed) (0/0 tok)\n"
    );
}

#[test]
fn dot_output() {
    let text = render::dot(&sample(), None, &DiagramOptions::default()).unwrap();
    assert_eq!(
        text,
        r#"digraph resptree {
  node [shape=box];
  "resp_root" [label="root\nPlan a weekend in Paris\n→ Louvre on Saturday, Montmartre on Sunda…"];
  "resp_a" [label="a\nMake it cheaper\n→ Walk the Marais, picnic by the Seine."];
  "resp_a1" [label="a1\nAdd a rainy-day option\n→ Musée d'Orsay."];
  "resp_a2" [label="a2\nKid friendly?\n→ Jardin d'Acclimatation."];
  "resp_b" [label="b\nMake it fancier\n→ Dinner at Le Meurice."];
  "resp_b1" [label="b1\nMerge both plans\n→ Orsay, then Le Meurice."];
  "resp_other" [label="other\nUnrelated question\n→ Unrelated answer."];
  "resp_root" -> "resp_a";
  "resp_a" -> "resp_a1";
  "resp_a" -> "resp_a2";
  "resp_root" -> "resp_b";
  "resp_b" -> "resp_b1";
  "resp_a2" -> "resp_b1" [style=dashed];
}
"#
    );
}

#[test]
fn mermaid_output() {
    let text = render::mermaid(
        &sample(),
        None,
        &DiagramOptions::default().with_label_width(12),
    )
    .unwrap();
    assert_eq!(
        text,
        "\
flowchart TD
  n0[\"root: Plan a week… → Louvre on S…\"]
  n1[\"a: Make it che… → Walk the Ma…\"]
  n2[\"a1: Add a rainy… → Musée d'Ors…\"]
  n3[\"a2: Kid friendl… → Jardin d'Ac…\"]
  n4[\"b: Make it fan… → Dinner at L…\"]
  n5[\"b1: Merge both … → Orsay, then…\"]
  n6[\"other: Unrelated q… → Unrelated a…\"]
  n0 --> n1
  n1 --> n2
  n1 --> n3
  n0 --> n4
  n4 --> n5
  n3 -.-> n5
"
    );
    // A subtree only draws edges between drawn nodes: the context edge from a2
    // into b's subtree is left out.
    let sub = render::mermaid(&sample(), Some(&id("resp_b")), &DiagramOptions::default()).unwrap();
    assert_eq!(
        sub,
        "\
flowchart TD
  n0[\"b: Make it fancier → Dinner at Le Meurice.\"]
  n1[\"b1: Merge both plans → Orsay, then Le Meurice.\"]
  n0 --> n1
"
    );
}

#[test]
fn diagram_labels_are_escaped() {
    let t = ResponseTree::in_memory();
    t.insert(node(
        "resp_q",
        None,
        1,
        r#"Say "hi" [x] <b> #1 \ done"#,
        "ok",
    ))
    .unwrap();
    let m = render::mermaid(&t, None, &DiagramOptions::default()).unwrap();
    assert_eq!(
        m,
        "flowchart TD\n  n0[\"q: Say #quot;hi#quot; #91;x#93; #lt;b#gt; #35;1 \\ done → ok\"]\n"
    );
    let d = render::dot(&t, None, &DiagramOptions::default()).unwrap();
    assert!(
        d.contains(r#"[label="q\nSay \"hi\" [x] <b> #1 \\ done\n→ ok"]"#),
        "{d}"
    );
}

#[test]
fn json_round_trip_is_lossless() {
    let t = sample();
    let exported = render::export_json(&t).unwrap();
    let doc: Value = serde_json::from_str(&exported).unwrap();
    assert_eq!(doc["format"], "resptree");
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["nodes"].as_array().unwrap().len(), 7);
    assert_eq!(doc["edges"].as_array().unwrap().len(), 6);
    assert_eq!(doc["refs"]["formal"], "resp_b1");
    assert!(
        doc["edges"]
            .as_array()
            .unwrap()
            .contains(&json!({"from": "resp_a2", "to": "resp_b1", "kind": "context"}))
    );

    // Into a sled store when available, so the round trip crosses the disk encoding.
    #[cfg(feature = "sled")]
    let copy = ResponseTree::temporary().unwrap();
    #[cfg(not(feature = "sled"))]
    let copy = ResponseTree::in_memory();
    let report = import::import_json(&copy, &exported).unwrap();
    assert_eq!((report.nodes, report.refs), (7, 3));
    assert_eq!(render::export_json(&copy).unwrap(), exported);
    assert_eq!(*copy.graph(), *t.graph());
    for i in t.all_ids() {
        assert_eq!(copy.get(&i).unwrap(), t.get(&i).unwrap());
    }
    assert_eq!(copy.list_refs(), t.list_refs());
}

#[allow(clippy::needless_pass_by_value)] // keeps the call sites readable
fn doc(nodes: Value, edges: Value) -> String {
    json!({"format": "resptree", "version": 1, "nodes": nodes, "edges": edges, "refs": {}})
        .to_string()
}

fn raw(name: &str, parent: Option<&str>) -> Value {
    serde_json::to_value(node(name, parent, 1, "q", "a")).unwrap()
}

#[test]
fn import_rejects_bad_documents() {
    let t = sample();
    let before = render::export_json(&t).unwrap();
    let decode = |text: &str| match import::import_json(&t, text) {
        Err(Error::Decode { .. }) => {}
        other => panic!("expected Decode for {text}, got {other:?}"),
    };
    decode("{not json");
    decode(r#"{"format": "other", "version": 1, "nodes": []}"#);
    decode(r#"{"format": "resptree", "version": 2, "nodes": []}"#);
    decode(r#"{"format": "resptree", "version": 1, "nodes": [{"id": "has space"}]}"#);
    // An edge the nodes do not back, and a parent link missing from the edges.
    decode(&doc(
        json!([raw("n1", None), raw("n2", None)]),
        json!([{"from": "n1", "to": "n2", "kind": "continues"}]),
    ));
    decode(&doc(
        json!([raw("n1", None), raw("n2", Some("n1"))]),
        json!([]),
    ));

    let invalid = |text: &str| match import::import_json(&t, text) {
        Err(Error::InvalidTree(v)) => v,
        other => panic!("expected InvalidTree for {text}, got {other:?}"),
    };
    let v = invalid(&doc(
        json!([raw("x", Some("y")), raw("y", Some("x"))]),
        json!([
            {"from": "y", "to": "x", "kind": "continues"},
            {"from": "x", "to": "y", "kind": "continues"}
        ]),
    ));
    assert!(matches!(v, TreeViolation::Cycle { .. }), "{v:?}");
    let v = invalid(&doc(
        json!([raw("x", Some("ghost"))]),
        json!([{"from": "ghost", "to": "x", "kind": "continues"}]),
    ));
    assert_eq!(
        v,
        TreeViolation::DanglingParent {
            node: id("x"),
            missing: id("ghost")
        }
    );
    let v = invalid(&doc(
        json!([raw("p", None), raw("q", None), raw("x", Some("p"))]),
        json!([
            {"from": "p", "to": "x", "kind": "continues"},
            {"from": "q", "to": "x", "kind": "continues"}
        ]),
    ));
    assert_eq!(v, TreeViolation::SecondParent { node: id("x") });
    // Importing a tree into itself duplicates every node.
    let v = invalid(&before);
    assert!(matches!(v, TreeViolation::DuplicateNode(_)), "{v:?}");

    assert_eq!(
        render::export_json(&t).unwrap(),
        before,
        "a refused import changes nothing"
    );
}

#[test]
fn import_can_attach_to_existing_nodes() {
    let t = sample();
    let text = doc(
        json!([raw("imported", Some("resp_a1"))]),
        json!([{"from": "resp_a1", "to": "imported", "kind": "continues"}]),
    );
    import::import_json(&t, &text).unwrap();
    assert_eq!(t.parent(&id("imported")).unwrap(), Some(id("resp_a1")));
}

#[test]
fn ascii_narrow_widths_cut_texts_but_never_panic() {
    let t = sample();
    for width in [0, 1, 5, 20] {
        let text =
            render::ascii(&t, None, &AsciiOptions::default().with_width(Some(width))).unwrap();
        assert_eq!(text.lines().count(), 7);
        // The structure, ids and token counts survive; only the texts shrink.
        assert!(text.starts_with("root "), "{text}");
        assert!(text.contains("b1 [formal]"), "{text}");
        assert!(text.contains("(60/6 tok)"), "{text}");
    }
    let narrow = render::ascii(&t, None, &AsciiOptions::default().with_width(Some(0))).unwrap();
    assert!(narrow.starts_with("root  →  (10/1 tok)\n"), "{narrow}");
}

/// A chain of `len` nodes under `resp_c0`, each one turn of a conversation.
fn chain(len: usize) -> ResponseTree {
    let t = ResponseTree::in_memory();
    for i in 0..len {
        let parent = (i > 0).then(|| format!("resp_c{}", i - 1));
        t.insert(node(
            &format!("resp_c{i}"),
            parent.as_deref(),
            i as i64,
            "Go on",
            "More.",
        ))
        .unwrap();
    }
    t
}

#[test]
fn ascii_draws_lone_children_in_their_parents_column() {
    let t = ResponseTree::in_memory();
    fill(&t);
    // resp_a2 gets a chain of two below it: a lone child, then its lone child
    // with two children of its own.
    t.insert(node("resp_c1", Some("resp_a2"), 10, "Go on", "More."))
        .unwrap();
    t.insert(node("resp_c2", Some("resp_c1"), 11, "And?", "Done."))
        .unwrap();
    t.insert(node("resp_x", Some("resp_c2"), 12, "x", "X."))
        .unwrap();
    t.insert(node("resp_y", Some("resp_c2"), 13, "y", "Y."))
        .unwrap();
    let options = AsciiOptions::default().with_tokens(false);
    assert_eq!(
        render::ascii(&t, None, &options).unwrap(),
        "\
root Plan a weekend in Paris → Louvre on Saturday, Montmartre on Sunday.
├── a Make it cheaper → Walk the Marais, picnic by the Seine.
│   ├── a1 Add a rainy-day option → Musée d'Orsay.
│   └── a2 Kid friendly? → Jardin d'Acclimatation.
│       c1 Go on → More.
│       c2 And? → Done.
│       ├── x x → X.
│       └── y y → Y.
└── b Make it fancier → Dinner at Le Meurice.
    b1 Merge both plans → Orsay, then Le Meurice.
other Unrelated question → Unrelated answer.
"
    );
    // A depth limit summarises a hidden lone child in its parent's column too.
    assert_eq!(
        render::ascii(&t, Some(&id("resp_a2")), &options.with_max_depth(Some(1))).unwrap(),
        "\
a2 Kid friendly? → Jardin d'Acclimatation.
└── c1 Go on → More.
    … 3 more
"
    );
}

#[test]
fn ascii_of_a_deep_chain_is_linear_in_size() {
    let n = 5_000;
    let text = render::ascii(&chain(n), None, &AsciiOptions::default()).unwrap();
    assert_eq!(text.lines().count(), n);
    // Every line of a chain has the same short shape whatever its depth (the
    // indented drawing was 4 columns more per level: 10 KB for the last line).
    let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 50, "widest line has {widest} characters");
    assert!(text.len() <= 50 * n, "{} bytes for {n} nodes", text.len());
}

#[test]
fn ascii_shows_tool_calls_and_their_outputs_compactly() {
    let t = ResponseTree::in_memory();
    let mut ask = Node::new(id("resp_ask"), None)
        .with_user_text("Weather in Paris?")
        .with_created_at(Timestamp(1));
    ask.output = vec![json!({"type": "function_call", "call_id": "call_1",
        "name": "get_weather", "arguments": "{\"city\":\"Paris\"}"})];
    t.insert(ask).unwrap();
    for (i, (name, out, answer)) in [
        ("resp_sun", "{\"temp\":18}", "Sunny, 18°C."),
        ("resp_rain", "rain", "Take an umbrella."),
    ]
    .into_iter()
    .enumerate()
    {
        let mut n = Node::new(id(name), Some(id("resp_ask")))
            .with_output_text(answer)
            .with_created_at(Timestamp(2 + i as i64));
        n.input = vec![json!({"type": "function_call_output", "call_id": "call_1", "output": out})];
        t.insert(n).unwrap();
    }
    assert_eq!(
        render::ascii(&t, None, &AsciiOptions::default().with_tokens(false)).unwrap(),
        "\
ask Weather in Paris? → ⚙ get_weather(city=\"Paris\")
├── sun ⚙ get_weather(city=\"Paris\") → {\"temp\":18} → Sunny, 18°C.
└── rain ⚙ get_weather(city=\"Paris\") → rain → Take an umbrella.
"
    );
}

/// Nodes with every kind of line: the shared sample, a chain long enough to
/// span several sled segments with texts that JSON escapes, function calls
/// and their answers, odd input items, and an answer without output.
fn varied_nodes() -> Vec<Node> {
    let mut nodes = sample_nodes();
    let texts = [
        "Plain",
        "Two\nlines",
        "A \"quote\", a \\ and a\ttab",
        "Accents: été, 東京, emoji 🙂",
        "  padded  ",
        "",
    ];
    for i in 0..150 {
        let parent = if i == 0 {
            "resp_other".to_owned()
        } else {
            format!("resp_c{}", i - 1)
        };
        let text = texts[i % texts.len()];
        nodes.push(node(
            &format!("resp_c{i}"),
            Some(&parent),
            100 + i as i64,
            &format!("{text} {i}"),
            &format!("{i}: {text}{}", "long answer ".repeat(i % 9)),
        ));
    }
    let mut ask = node("resp_ask", Some("resp_c149"), 300, "Weather?", "");
    ask.output = vec![
        json!({"type": "reasoning", "summary": [{"type": "summary_text", "text": "hm"}]}),
        json!({"type": "function_call", "call_id": "call_1", "name": "get_weather",
               "arguments": "{\"city\":\"Paris\"}"}),
        json!({"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "not json"}),
    ];
    ask.output_text = String::new();
    let mut answer = node("resp_answer", Some("resp_ask"), 301, "", "Sunny at noon.");
    answer.input = vec![
        json!({"type": "function_call_output", "call_id": "call_1", "output": "{\"temp\":18}"}),
        json!({"type": "function_call_output", "call_id": "call_2",
               "output": [{"type": "input_text", "text": "12:00"}]}),
        json!({"type": "function_call_output", "call_id": "call_unknown", "output": "?"}),
    ];
    let mut odd = node("resp_odd", Some("resp_ask"), 302, "", "");
    odd.input = vec![
        json!({"type": "input_image", "image_url": "https://example.com/x.png"}),
        json!("a bare string"),
    ];
    odd.status = resptree::NodeStatus::Incomplete;
    let mut parts = node("resp_parts", Some("resp_ask"), 303, "", "Parts.");
    parts.input = vec![
        json!({"role": "developer", "content": "Be brief."}),
        json!({"role": "user", "content": [
            {"type": "input_text", "text": "First part, "},
            {"type": "input_image", "image_url": "x"},
            {"type": "input_text", "text": "second part\nand more"}
        ]}),
    ];
    nodes.extend([ask, answer, odd, parts]);
    nodes
}

/// A sled store decodes only what a line shows of each body
/// (`Store::for_each_preview`); the renderers must draw from it exactly what
/// they draw from the same nodes in memory, whole tree or subtree, any width.
#[test]
fn sled_and_memory_render_the_same() {
    let nodes = varied_nodes();
    let refs = vec![
        (RefName::new("main").unwrap(), id("resp_c149")),
        (RefName::new("alt").unwrap(), id("resp_c149")),
        (RefName::new("tool").unwrap(), id("resp_answer")),
    ];
    let memory = ResponseTree::in_memory();
    memory.insert_all(nodes.clone(), refs.clone()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    ResponseTree::open(&path)
        .unwrap()
        .insert_all(nodes, refs)
        .unwrap();
    // Reopened, so every body is read back from disk.
    let disk = ResponseTree::open(&path).unwrap();
    let starts = [
        None,
        Some(id("resp_c10")),
        Some(id("resp_answer")),
        Some(id("resp_ask")),
    ];
    for start in &starts {
        for options in [
            AsciiOptions::default(),
            AsciiOptions::default().with_width(None),
            AsciiOptions::default()
                .with_width(Some(40))
                .with_tokens(false),
            AsciiOptions::default().with_max_depth(Some(3)),
        ] {
            let drawn = render::ascii(&memory, start.as_ref(), &options).unwrap();
            assert_eq!(
                render::ascii(&disk, start.as_ref(), &options).unwrap(),
                drawn
            );
        }
        let options = DiagramOptions::default();
        assert_eq!(
            render::dot(&disk, start.as_ref(), &options).unwrap(),
            render::dot(&memory, start.as_ref(), &options).unwrap()
        );
        assert_eq!(
            render::mermaid(&disk, start.as_ref(), &options).unwrap(),
            render::mermaid(&memory, start.as_ref(), &options).unwrap()
        );
    }
    // The lines that matter here, as drawn.
    let text = render::ascii(
        &disk,
        Some(&id("resp_ask")),
        &AsciiOptions::default().with_width(None),
    )
    .unwrap();
    assert_eq!(
        text,
        "\
ask Weather? → ⚙ get_weather(city=\"Paris\"); ⚙ get_time(not json) (3000/300 tok)
├── answer [tool] ⚙ get_weather(city=\"Paris\") → {\"temp\":18}; ⚙ get_time(not json) → 12:00; ⚙ call_unknown → ? → Sunny at noon. (3010/301 tok)
├── odd (input_image) → (incomplete) (3020/302 tok)
└── parts First part, second part → Parts. (3030/303 tok)
"
    );
}
