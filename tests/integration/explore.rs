//! `Engine::explore` against the emulator: ranking, beam shape, the judge's
//! plumbing and swap logic, budgets, warming, and resuming without paying twice.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use resptree::annotation::{Annotation, Score, ScoreMethod};
use resptree::backend::{
    Backend, BackendEvent, BackendReply, BackendRequest, BoxFuture, ResponsesBackend,
    RetrievedResponse,
};
use resptree::client::Client;
use resptree::emulator::{Emulator, Fault};
use resptree::explore::{
    Budget, ExplorePhase, ExploreProgress, Judge, StopReason, Strategy, Tally,
};
use resptree::node::message_item;
use resptree::{Engine, Node, NodeId, ResponseId, ResponseTree};
use serde_json::Value;
use tokio::sync::mpsc;

fn client(emu: &Emulator) -> Client {
    Client::builder()
        .base_url(emu.base_url())
        .api_key("sk-test-explore")
        .max_retries(0)
        .build()
        .unwrap()
}

fn engine(emu: &Emulator, tree: ResponseTree) -> Engine {
    Engine::builder(tree, ResponsesBackend::new(client(emu)))
        .model("gpt-4o-mini")
        .settle_wait(Duration::from_secs(5))
        .build()
        .unwrap()
}

async fn setup() -> (Emulator, Engine, NodeId) {
    let emu = Emulator::spawn().await.unwrap();
    let engine = engine(&emu, ResponseTree::in_memory());
    let root = engine
        .respond(None, "Plan a weekend in Paris")
        .await
        .unwrap();
    (emu, engine, root.id)
}

fn text(engine: &Engine, id: &NodeId) -> String {
    engine.tree().get(id).unwrap().output_text
}

/// The POST /v1/responses bodies the emulator saw, oldest first.
fn posts(emu: &Emulator) -> Vec<Value> {
    emu.requests()
        .into_iter()
        .filter(|r| r.method == "POST" && r.path == "/v1/responses")
        .filter_map(|r| r.body)
        .collect()
}

/// Every response the emulator created is a node of the tree, once, and the
/// tree holds no server node the emulator did not create: nothing was paid
/// for twice, nothing paid for was lost.
fn assert_created_once(emu: &Emulator, engine: &Engine) {
    let created: Vec<String> = emu.created_responses();
    let unique: BTreeSet<&String> = created.iter().collect();
    assert_eq!(unique.len(), created.len(), "the emulator made a duplicate");
    let recorded: BTreeSet<String> = engine
        .tree()
        .all_ids()
        .into_iter()
        .map(|id| id.to_string())
        .filter(|id| id.starts_with("resp_"))
        .collect();
    let created: BTreeSet<String> = created.into_iter().collect();
    assert_eq!(created, recorded);
}

#[tokio::test]
async fn best_of_n_keeps_the_answer_the_scorer_likes_best() {
    let (emu, engine, root) = setup().await;
    let scores: HashMap<&str, f64> = HashMap::from([
        ("walk the Seine", 2.0),
        ("see the Louvre", 9.0),
        ("eat crêpes", 5.0),
        ("sleep late", -1.0),
    ]);
    emu.script_replies(scores.keys().copied());
    let table = scores.clone();
    let strategy = Strategy::best_of(4).scorer(move |node: Node| {
        let score = table[node.output_text.as_str()];
        async move { Ok(score) }
    });
    let outcome = engine.explore(&root, "One idea?", &strategy).await.unwrap();

    assert_eq!(emu.created_count(), 1 + 4);
    assert_eq!(outcome.levels.len(), 1);
    let level = &outcome.levels[0];
    let ranked: Vec<String> = level
        .candidates
        .iter()
        .map(|c| text(&engine, &c.node))
        .collect();
    assert_eq!(
        ranked,
        [
            "see the Louvre",
            "eat crêpes",
            "walk the Seine",
            "sleep late"
        ]
    );
    let values: Vec<f64> = level.candidates.iter().map(|c| c.score).collect();
    assert_eq!(values, [9.0, 5.0, 2.0, -1.0]);
    assert_eq!(level.kept, [level.candidates[0].node.clone()]);
    assert_eq!(outcome.best, Some(level.candidates[0].node.clone()));
    assert!(level.candidates.iter().all(|c| c.parent == root));
    // Candidates are labelled, and share the exploration's cache key.
    let label = format!("explore:{}", outcome.id);
    for c in &level.candidates {
        assert!(engine.tree().get(&c.node).unwrap().labels.contains(&label));
    }
    let keys: BTreeSet<String> = posts(&emu)[1..]
        .iter()
        .map(|b| b["prompt_cache_key"].to_string())
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([format!("\"resptree-explore-{}\"", outcome.id)])
    );
    assert_eq!(level.usage.nodes, 4);
    // Each score is stored on its node.
    for c in &level.candidates {
        let notes = engine.tree().annotations(&c.node).unwrap();
        assert_eq!(notes.len(), 1);
        assert_eq!(
            notes[0].annotation,
            Annotation::Score(Score::new("score", c.score, ScoreMethod::Function))
        );
    }
    assert!(outcome.stopped.is_none());
    assert!(outcome.judges.is_none());
}

#[tokio::test]
async fn beam_search_grows_only_the_kept_nodes() {
    let (emu, engine, root) = setup().await;
    // A deterministic score from the text: the emulator's sentences differ.
    let strategy = Strategy::beam(3, 2, 3)
        .follow_up("Make it cheaper.")
        .follow_up("Make it shorter.")
        .scorer(|node: Node| async move {
            Ok(node.output_text.bytes().map(f64::from).sum::<f64>() % 97.0)
        });
    let outcome = engine
        .explore(&root, "Suggest a first stop.", &strategy)
        .await
        .unwrap();

    assert_eq!(outcome.levels.len(), 3);
    // 3 children of the root, then 3 under each of 2 kept nodes, twice.
    assert_eq!(emu.created_count(), 1 + 3 + 6 + 6);
    let tree = engine.tree();
    for (i, level) in outcome.levels.iter().enumerate() {
        let expected = if i == 0 { 3 } else { 6 };
        assert_eq!(level.candidates.len(), expected);
        assert_eq!(level.kept.len(), 2);
        // Best first.
        assert!(
            level
                .candidates
                .windows(2)
                .all(|w| w[0].score >= w[1].score)
        );
        assert_eq!(
            level.kept,
            [
                level.candidates[0].node.clone(),
                level.candidates[1].node.clone()
            ]
        );
        if let Some(next) = outcome.levels.get(i + 1) {
            for c in &next.candidates {
                assert!(level.kept.contains(&c.parent), "a child of a dropped node");
            }
            for dropped in level.candidates.iter().skip(2) {
                assert!(tree.children(&dropped.node).unwrap().is_empty());
            }
            for kept in &level.kept {
                assert_eq!(tree.children(kept).unwrap().len(), 3);
            }
        }
    }
    let best = outcome.best.unwrap();
    assert_eq!(tree.depth(&best).unwrap(), tree.depth(&root).unwrap() + 3);
    // Each level sent its own prompt.
    let user = |id: &NodeId| tree.get(id).unwrap().user_text().unwrap();
    assert_eq!(
        user(&outcome.levels[1].candidates[0].node),
        "Make it cheaper."
    );
    assert_eq!(user(&best), "Make it shorter.");
}

#[tokio::test]
async fn a_pairwise_judge_asks_both_orders_and_calls_a_disagreement_a_tie() {
    let (emu, engine, root) = setup().await;
    // The emulator's judge follows the first `winner=` hint of its message,
    // which is in the answer shown first: "A" there means "the answer shown
    // first (me) wins", "B" means "the other one wins". So X (always itself)
    // beats Y (always the other) in both orders; Z (always itself) beats Y in
    // both orders; X vs Z flips with the order: a tie.
    emu.script_replies([
        "X says winner=A here",
        "Y says winner=B there",
        "Z says winner=A too",
    ]);
    let strategy = Strategy::best_of(3).judge(Judge::pairwise("Which answer is better?"));
    let outcome = engine.explore(&root, "One idea?", &strategy).await.unwrap();

    let level = &outcome.levels[0];
    let by_text: HashMap<char, (Tally, f64)> = level
        .candidates
        .iter()
        .map(|c| {
            (
                text(&engine, &c.node).chars().next().unwrap(),
                (c.tally.unwrap(), c.score),
            )
        })
        .collect();
    let t = |wins, losses, ties| Tally { wins, losses, ties };
    assert_eq!(by_text[&'X'], (t(1, 0, 1), 0.75));
    assert_eq!(by_text[&'Y'], (t(0, 2, 0), 0.0));
    assert_eq!(by_text[&'Z'], (t(1, 0, 1), 0.75));
    assert_eq!(
        text(&engine, &level.candidates[2].node).chars().next(),
        Some('Y')
    );
    let stored = engine
        .tree()
        .annotations(&level.candidates[2].node)
        .unwrap();
    let Annotation::Score(score) = &stored[0].annotation else {
        panic!("{stored:?}")
    };
    assert_eq!((score.criterion.as_str(), score.value), ("judge", 0.0));
    assert_eq!(
        score.method,
        ScoreMethod::Pairwise {
            wins: 0,
            losses: 2,
            ties: 0
        }
    );
    assert_eq!(score.judge_model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(score.judge_usage, None);
    assert_eq!(level.unparsable, 0);

    // 3 × 2 ordered comparisons, each one judge node under the anchor, with
    // structured output asked for and the usage recorded.
    assert_eq!(emu.created_count(), 1 + 3 + 6);
    let anchor = outcome.judges.clone().unwrap();
    let judges = engine.tree().children(&anchor).unwrap();
    assert_eq!(judges.len(), 6);
    assert_eq!(level.judge_usage.nodes, 6);
    assert!(level.judge_usage.output_tokens > 0);
    assert_eq!(
        engine
            .tree()
            .get_ref(format!("explore/{}/judges", outcome.id).as_str())
            .unwrap(),
        anchor
    );
    let judge_posts: Vec<Value> = posts(&emu)
        .into_iter()
        .filter(|b| b["text"]["format"]["type"] == "json_schema")
        .collect();
    assert_eq!(judge_posts.len(), 6);
    // Every ordered pair once: (first, second) over the three candidates.
    let pairs: BTreeSet<(String, String)> = judge_posts
        .iter()
        .map(|b| {
            let meta = &b["metadata"];
            (
                meta["resptree_judge_first"].as_str().unwrap().to_owned(),
                meta["resptree_judge_second"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(pairs.len(), 6);
    assert!(pairs.iter().all(|(a, b)| a != b));
    // The judges are not in the explored subtree.
    assert_eq!(engine.tree().children(&root).unwrap().len(), 3);
    // Everything spent is candidates plus judges.
    assert_eq!(outcome.spent.nodes, 3 + 6);
    assert_created_once(&emu, &engine);
}

#[tokio::test]
async fn a_rubric_judge_scores_each_candidate_once() {
    let (emu, engine, root) = setup().await;
    emu.script_replies(["plan one score=3", "plan two score=9", "plan three score=5"]);
    let strategy = Strategy::best_of(3).judge(Judge::rubric("How good is it?", 1, 10));
    let outcome = engine.explore(&root, "One idea?", &strategy).await.unwrap();
    let level = &outcome.levels[0];
    let ranked: Vec<(String, f64)> = level
        .candidates
        .iter()
        .map(|c| (text(&engine, &c.node), c.score))
        .collect();
    assert_eq!(
        ranked,
        [
            ("plan two score=9".to_owned(), 9.0),
            ("plan three score=5".to_owned(), 5.0),
            ("plan one score=3".to_owned(), 3.0)
        ]
    );
    assert_eq!(emu.created_count(), 1 + 3 + 3);
    assert_eq!(level.judge_usage.nodes, 3);
}

#[tokio::test]
async fn unreadable_verdicts_are_recorded_as_ties() {
    let (emu, engine, root) = setup().await;
    // Two candidates, then two judge replies that are not the schema's JSON.
    emu.script_replies(["first plan", "second plan", "A, clearly", "I cannot decide"]);
    let strategy = Strategy::best_of(2)
        .no_warming()
        .judge(Judge::pairwise("Which is better?"));
    let outcome = engine.explore(&root, "One idea?", &strategy).await.unwrap();
    let level = &outcome.levels[0];
    assert_eq!(level.unparsable, 2);
    for c in &level.candidates {
        assert_eq!(
            c.tally,
            Some(Tally {
                wins: 0,
                losses: 0,
                ties: 1
            })
        );
        assert!((c.score - 0.5).abs() < 1e-9);
    }
    // The raw replies stay on the judge nodes.
    let anchor = outcome.judges.unwrap();
    let replies: BTreeSet<String> = engine
        .tree()
        .children(&anchor)
        .unwrap()
        .iter()
        .map(|id| text(&engine, id))
        .collect();
    assert_eq!(
        replies,
        BTreeSet::from(["A, clearly".to_owned(), "I cannot decide".to_owned()])
    );
}

/// A deterministic scorer over the emulator's sentences.
fn by_bytes() -> impl Fn(Node) -> std::future::Ready<resptree::Result<f64>> + Send + Sync {
    |node: Node| {
        std::future::ready(Ok(
            node.output_text.bytes().map(f64::from).sum::<f64>() % 89.0
        ))
    }
}

#[tokio::test]
async fn a_budget_is_never_exceeded_and_the_stop_says_why() {
    // What level 1 of a width-3 exploration costs at most: 3 × (counted input
    // + output bound).
    let (_emu, probe, root) = setup().await;
    let strategy = |budget: u64| {
        Strategy::beam(3, 1, 3)
            .scorer(by_bytes())
            .budget(Budget::tokens(budget))
            .max_output_tokens(24)
            .id("budgeted")
    };
    let input = probe
        .count_input_tokens(
            Some(&root),
            vec![message_item("user", "One idea?")],
            &Default::default(),
        )
        .await
        .unwrap();
    let level1 = 3 * (input + 24);
    let full = probe
        .explore(&root, "One idea?", &strategy(1_000_000))
        .await
        .unwrap();
    assert!(full.stopped.is_none());
    assert_eq!(full.levels[0].priced_tokens, level1);
    let full_spend = full.spent.total_tokens;

    for budget in [
        0,
        level1 - 1,
        level1,
        level1 + 50,
        full_spend - 1,
        full_spend,
        1_000_000,
    ] {
        let (emu, engine, root) = setup().await;
        let outcome = engine
            .explore(&root, "One idea?", &strategy(budget))
            .await
            .unwrap();
        let spent = outcome.spent.total_tokens;
        assert!(spent <= budget, "spent {spent} of a budget of {budget}");
        match &outcome.stopped {
            Some(StopReason::Budget {
                level,
                limit,
                spent: before,
                needed,
            }) => {
                assert_eq!(*limit, budget);
                assert_eq!(*level, outcome.levels.len() + 1);
                assert!(before + needed > budget);
                assert_eq!(*before, spent, "nothing is spent after the stop");
                assert!(
                    outcome
                        .to_owned()
                        .stopped
                        .unwrap()
                        .to_string()
                        .contains(&format!("before level {level}"))
                );
            }
            None => assert_eq!(outcome.levels.len(), 3),
            Some(other) => panic!("unexpected stop: {other}"),
        }
        // The emulator made exactly what the tree records.
        assert_eq!(emu.created_count() as usize, 1 + 3 * outcome.levels.len());
        if budget < level1 {
            assert!(outcome.levels.is_empty() && outcome.best.is_none());
        } else {
            assert!(!outcome.levels.is_empty() && outcome.best.is_some());
        }
    }
}

#[tokio::test]
async fn a_budget_covers_the_judge_requests_too() {
    let (_emu, engine, root) = setup().await;
    let judge = Judge::rubric("How good is it?", 1, 10).max_output_tokens(40);
    let unlimited = Strategy::beam(2, 1, 2)
        .judge(judge.clone())
        .max_output_tokens(24);
    let full = engine
        .explore(&root, "One idea?", &unlimited)
        .await
        .unwrap();
    let need = full.spent.total_tokens;
    assert!(full.levels.iter().all(|l| l.judge_usage.nodes == 2));

    for budget in [need / 3, need / 2, need, need * 2] {
        let (emu, engine, root) = setup().await;
        let strategy = unlimited.clone().budget(Budget::tokens(budget));
        let outcome = engine.explore(&root, "One idea?", &strategy).await.unwrap();
        assert!(
            outcome.spent.total_tokens <= budget,
            "{} > {budget}",
            outcome.spent.total_tokens
        );
        // Candidates and their judges: 2 + 2 per level.
        assert_eq!(emu.created_count() as usize, 1 + 4 * outcome.levels.len());
        for level in &outcome.levels {
            assert!(
                level.priced_tokens >= level.usage.total_tokens + level.judge_usage.total_tokens
            );
        }
    }
}

#[tokio::test]
async fn a_budget_needs_a_backend_that_counts() {
    let emu = Emulator::spawn().await.unwrap();
    let engine = Engine::builder(
        ResponseTree::in_memory(),
        resptree::backend::ChatBackend::new(client(&emu)),
    )
    .build()
    .unwrap();
    let root = engine.respond(None, "hi").await.unwrap();
    let strategy = Strategy::best_of(2)
        .scorer(by_bytes())
        .budget(Budget::tokens(10_000));
    let err = engine
        .explore(&root.id, "One idea?", &strategy)
        .await
        .unwrap_err();
    assert!(matches!(err, resptree::Error::Unsupported(_)), "{err}");
    // Without a budget the chat backend explores (one request with n = 2).
    let outcome = engine
        .explore(
            &root.id,
            "One idea?",
            &Strategy::best_of(2).scorer(by_bytes()),
        )
        .await
        .unwrap();
    assert_eq!(outcome.levels[0].candidates.len(), 2);
}

#[tokio::test]
async fn strategies_that_cannot_run_are_refused_before_anything_is_sent() {
    let (emu, engine, root) = setup().await;
    let before = emu.requests().len();
    for strategy in [
        Strategy::beam(0, 1, 1).scorer(by_bytes()),
        Strategy::beam(2, 0, 1).scorer(by_bytes()),
        Strategy::beam(2, 1, 0).scorer(by_bytes()),
        Strategy::best_of(2),
        Strategy::best_of(2)
            .scorer(by_bytes())
            .id("no spaces allowed"),
        Strategy::best_of(2).scorer(by_bytes()).max_output_tokens(8),
        Strategy::best_of(2).judge(Judge::rubric("x", 5, 5)),
    ] {
        let err = engine
            .explore(&root, "One idea?", &strategy)
            .await
            .unwrap_err();
        assert!(
            matches!(err, resptree::Error::Config { .. }),
            "{strategy:?}: {err}"
        );
    }
    let missing = NodeId::new("resp_missing").unwrap();
    let err = engine
        .explore(&missing, "x", &Strategy::best_of(2).scorer(by_bytes()))
        .await
        .unwrap_err();
    assert!(matches!(err, resptree::Error::NodeNotFound(_)), "{err}");
    // A scorer that returns NaN is refused, naming the candidate.
    let err = engine
        .explore(
            &root,
            "x",
            &Strategy::best_of(1).scorer(|_n: Node| async { Ok(f64::NAN) }),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not finite"), "{err}");
    assert_eq!(
        emu.requests().len() - before,
        1,
        "only the NaN run's child was sent"
    );
}

/// Records when each request starts and ends, to check warming's order.
#[derive(Debug)]
struct Ordered {
    inner: ResponsesBackend,
    events: Arc<Mutex<Vec<(&'static str, usize)>>>,
    next: std::sync::atomic::AtomicUsize,
}

impl Backend for Ordered {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn is_stateful(&self) -> bool {
        true
    }
    fn reports_id_early(&self) -> bool {
        true
    }
    fn respond(&self, request: BackendRequest) -> BoxFuture<'_, resptree::Result<BackendReply>> {
        self.inner.respond(request)
    }
    fn respond_stream(
        &self,
        request: BackendRequest,
        events: mpsc::UnboundedSender<BackendEvent>,
    ) -> BoxFuture<'_, resptree::Result<BackendReply>> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.events.lock().unwrap().push(("start", n));
        Box::pin(async move {
            let reply = self.inner.respond_stream(request, events).await;
            self.events.lock().unwrap().push(("end", n));
            reply
        })
    }
    fn retrieve(&self, id: &ResponseId) -> BoxFuture<'_, resptree::Result<RetrievedResponse>> {
        self.inner.retrieve(id)
    }
    fn count_input_tokens(&self, request: BackendRequest) -> BoxFuture<'_, resptree::Result<u64>> {
        self.inner.count_input_tokens(request)
    }
}

#[tokio::test]
async fn a_wide_level_is_warmed_by_its_first_child() {
    let emu = Emulator::spawn().await.unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let backend = Ordered {
        inner: ResponsesBackend::new(client(&emu)),
        events: Arc::clone(&events),
        next: Default::default(),
    };
    let engine = Engine::builder(ResponseTree::in_memory(), backend)
        .build()
        .unwrap();
    let root = engine
        .respond(None, "Plan a weekend in Paris")
        .await
        .unwrap();
    events.lock().unwrap().clear();

    let wide = Strategy::best_of(4).scorer(by_bytes());
    engine.explore(&root.id, "One idea?", &wide).await.unwrap();
    let log = events.lock().unwrap().clone();
    // The first child ends before any sibling starts.
    assert_eq!(log[..2], [("start", 1), ("end", 1)], "{log:?}");
    assert_eq!(log.len(), 8);

    // Narrower than the threshold: all four at once.
    events.lock().unwrap().clear();
    let narrow = Strategy::best_of(4)
        .scorer(by_bytes())
        .warm_from(5)
        .id("narrow");
    engine
        .explore(&root.id, "One idea?", &narrow)
        .await
        .unwrap();
    assert_eq!(events.lock().unwrap().len(), 8);
}

/// Runs `strategy` in a task and kills it (aborts the task: its future is
/// dropped, as a Ctrl-C would) once `phase` of level 1 has `done` requests
/// committed; then waits until the emulator is idle. When `phase` starts, the
/// next generating request is held, so one request is certainly in flight
/// when the run dies.
async fn run_and_kill(
    emu: &Arc<Emulator>,
    engine: &Engine,
    root: &NodeId,
    strategy: Strategy,
    phase: ExplorePhase,
    done: usize,
) {
    let reached = Arc::new(tokio::sync::Notify::new());
    let armed = std::sync::atomic::AtomicBool::new(false);
    let (e, r) = (Arc::clone(emu), Arc::clone(&reached));
    let strategy = strategy.on_progress(move |p: &ExploreProgress| {
        if p.level != 1 || p.phase != phase {
            return;
        }
        if !armed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            e.inject(Fault::Hold { count: 1 });
        }
        if p.done >= done {
            r.notify_one();
        }
    });
    let (engine2, root2) = (engine.clone(), root.clone());
    let task = tokio::spawn(async move { engine2.explore(&root2, "One idea?", &strategy).await });
    emu.wait_held(1).await;
    reached.notified().await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    // The held stream was cut with its client; should it still be held,
    // let it finish unheard.
    emu.release(1);
    emu.wait_idle().await;
}

#[tokio::test]
async fn an_exploration_killed_mid_level_resumes_without_paying_twice() {
    let emu = Arc::new(Emulator::spawn().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let engine = engine(&emu, ResponseTree::open(&path).unwrap());
    let root = engine
        .respond(None, "Plan a weekend in Paris")
        .await
        .unwrap()
        .id;
    let strategy = Strategy::beam(3, 1, 2).no_warming().scorer(by_bytes());

    // One child of level 1 is held; the other two are recorded; the run dies.
    run_and_kill(
        &emu,
        &engine,
        &root,
        strategy.clone(),
        ExplorePhase::Growing,
        2,
    )
    .await;
    assert_eq!(engine.tree().children(&root).unwrap().len(), 2);

    // Reopened, as a new process would.
    drop(engine);
    let engine = self::engine(&emu, ResponseTree::open(&path).unwrap());
    let outcome = engine.explore(&root, "One idea?", &strategy).await.unwrap();
    assert_eq!(outcome.levels.len(), 2);
    // The dead run's two children count toward level 1: one more was made.
    assert_eq!(outcome.levels[0].resumed, 2);
    assert_eq!(outcome.levels[0].candidates.len(), 3);
    assert_eq!(engine.tree().children(&root).unwrap().len(), 3);
    assert_eq!(emu.created_count(), 1 + 3 + 3);
    assert_created_once(&emu, &engine);
    assert!(engine.tree().attempts().unwrap().is_empty());

    // Run again: finished, nothing to pay, the same winner.
    let again = engine.explore(&root, "One idea?", &strategy).await.unwrap();
    assert_eq!(emu.created_count(), 1 + 3 + 3);
    assert_eq!(again.best, outcome.best);
    assert_eq!(again.spent, outcome.spent);
    assert_eq!(again.levels[1].resumed, 3);
}

#[tokio::test]
async fn an_exploration_killed_while_judging_keeps_its_verdicts() {
    let emu = Arc::new(Emulator::spawn().await.unwrap());
    let engine = engine(&emu, ResponseTree::in_memory());
    let root = engine
        .respond(None, "Plan a weekend in Paris")
        .await
        .unwrap()
        .id;
    let strategy =
        Strategy::beam(3, 1, 2)
            .no_warming()
            .judge(Judge::rubric("How good is it?", 1, 10));
    // Killed with two of level 1's three verdicts recorded.
    run_and_kill(
        &emu,
        &engine,
        &root,
        strategy.clone(),
        ExplorePhase::Scoring,
        2,
    )
    .await;

    let outcome = engine.explore(&root, "One idea?", &strategy).await.unwrap();
    assert_eq!(outcome.levels.len(), 2);
    // Per level: 3 candidates and 3 verdicts, each made once.
    assert_eq!(emu.created_count(), 1 + 2 * (3 + 3));
    assert_created_once(&emu, &engine);
    let anchor = outcome.judges.unwrap();
    assert_eq!(engine.tree().children(&anchor).unwrap().len(), 6);
    assert_eq!(outcome.spent.nodes, 12);
    assert_eq!(outcome.levels[0].resumed, 3);
}

#[tokio::test]
async fn a_failed_request_stops_the_level_and_a_rerun_fills_it_in() {
    let (emu, engine, root) = setup().await;
    let strategy = Strategy::best_of(3).no_warming().scorer(by_bytes());
    emu.inject_for(
        "/v1/responses",
        Fault::Status {
            status: 500,
            count: 1,
        },
    );
    let err = engine
        .explore(&root, "One idea?", &strategy)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500), "{err}");
    assert_eq!(engine.tree().children(&root).unwrap().len(), 2);
    let outcome = engine.explore(&root, "One idea?", &strategy).await.unwrap();
    assert_eq!(outcome.levels[0].resumed, 2);
    assert_eq!(engine.tree().children(&root).unwrap().len(), 3);
    assert_eq!(emu.created_count(), 1 + 3);
}

#[tokio::test]
async fn a_money_budget_is_never_exceeded() {
    use resptree::cost::{PriceTable, Usd};
    let prices = PriceTable::builtin();
    let strategy = |budget: Usd| {
        Strategy::beam(2, 1, 3)
            .judge(Judge::rubric("How good is it?", 1, 10).max_output_tokens(32))
            .max_output_tokens(32)
            .budget(Budget::usd(budget, prices.clone()))
    };
    let (_emu, engine, root) = setup().await;
    let full = engine
        .explore(&root, "One idea?", &strategy(Usd::from_micros(1_000_000)))
        .await
        .unwrap();
    assert!(full.stopped.is_none());
    let whole = full.spent_usd.unwrap();
    assert!(!whole.is_zero());
    for micros in [
        0,
        whole.micros() / 3,
        whole.micros() / 2,
        whole.micros() * 2,
    ] {
        let (_emu, engine, root) = setup().await;
        let budget = Usd::from_micros(micros);
        let outcome = engine
            .explore(&root, "One idea?", &strategy(budget))
            .await
            .unwrap();
        let spent = outcome.spent_usd.unwrap();
        assert!(spent <= budget, "{spent} > {budget}");
        match &outcome.stopped {
            Some(StopReason::MoneyBudget {
                level,
                spent: before,
                needed,
                ..
            }) => {
                assert_eq!(*level, outcome.levels.len() + 1);
                assert!(*before + *needed > budget);
            }
            None => assert_eq!(outcome.levels.len(), 3),
            Some(other) => panic!("unexpected stop: {other}"),
        }
    }
    // A model the table does not price cannot be budgeted in money.
    let (_emu, engine, root) = setup().await;
    let unpriced = strategy(Usd::from_micros(1_000))
        .options(resptree::engine::RespondOptions::default().model("emu-unpriced"));
    let err = engine
        .explore(&root, "One idea?", &unpriced)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("emu-unpriced"), "{err}");
}
