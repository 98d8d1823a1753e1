//! Crash consistency: a real process branching concurrently into a sled store is
//! killed with SIGKILL at seeded random moments. After each kill the store must
//! open, hold every node the process reported, satisfy the tree invariants, and
//! `recover()` must account for every attempt left in flight.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use resptree::backend::ResponsesBackend;
use resptree::client::Client;
use resptree::emulator::Emulator;
use resptree::store::{SledStore, Store};
use resptree::{Engine, Error, NodeId, NodeStatus, ResponseTree};

use crate::reliability_support::{Rng, check_invariants, crash_worker};

const TRIALS: usize = 20;
const SEED: u64 = 0x5EED_C0DE;

#[derive(Debug, Default)]
struct Figures {
    printed: usize,
    checked_nodes: usize,
    in_flight: usize,
    recovered: usize,
    unresolved_no_id: usize,
    unresolved_with_id: usize,
}

#[test]
fn sigkill_at_random_moments_loses_no_reported_node() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // The emulator lives in this process, so it outlives every killed worker and
    // can answer recover()'s retrievals.
    let emu = rt
        .block_on(
            Emulator::builder()
                .latency(Duration::from_millis(2))
                .token_delay(Duration::from_millis(1))
                .spawn(),
        )
        .unwrap();
    let exe = crash_worker();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tree");
    let mut rng = Rng(SEED);
    let mut figures = Figures::default();
    let mut reported: HashSet<NodeId> = HashSet::new();

    for trial in 0..TRIALS {
        let wait_for = rng.range(1, 40) as usize;
        let extra = Duration::from_millis(rng.range(0, 30));
        let mut child = Command::new(&exe)
            .args([
                "branch",
                path.to_str().unwrap(),
                &emu.base_url(),
                &rng.next().to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        while lines
            .iter()
            .filter(|l: &&String| l.starts_with("node "))
            .count()
            < wait_for
        {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Timeout) => {
                    child.kill().unwrap();
                    panic!("trial {trial}: worker is stuck after {lines:?}");
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "trial {trial}: worker exited early after {lines:?}: {:?}",
                        child.wait()
                    );
                }
            }
        }
        std::thread::sleep(extra);
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(
            !status.success(),
            "trial {trial}: the worker was not killed"
        );
        reader.join().unwrap();
        // Lines printed before the kill that we had not read yet still count.
        lines.extend(rx.try_iter());
        let failed: Vec<&String> = lines.iter().filter(|l| l.starts_with("failed ")).collect();
        assert!(
            failed.is_empty(),
            "trial {trial}: requests failed without faults: {failed:?}"
        );
        let printed: Vec<NodeId> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("node "))
            .map(|id| NodeId::new(id).unwrap())
            .collect();
        figures.printed += printed.len();
        reported.extend(printed.iter().cloned());

        // The store opens and its child index matches the topology.
        let store = SledStore::open(&path).unwrap();
        let index = store.child_index().unwrap();
        let in_flight = store.attempts().unwrap();
        let tree = ResponseTree::with_store(store).unwrap();
        assert!(
            tree.load_problems().is_empty(),
            "trial {trial}: {:?}",
            tree.load_problems()
        );
        // Every node ever reported, in this trial or an earlier one, is there in full.
        for id in &reported {
            let node = tree
                .get(id)
                .unwrap_or_else(|e| panic!("trial {trial}: reported node {id} lost: {e}"));
            assert_eq!(node.status, NodeStatus::Completed, "trial {trial}: {id}");
            assert!(
                !node.output_text.is_empty(),
                "trial {trial}: {id} has no output"
            );
            assert!(!node.input.is_empty(), "trial {trial}: {id} has no input");
        }
        figures.checked_nodes += check_invariants(&tree, Some(&index));

        // recover() settles every attempt the kill left in flight.
        figures.in_flight += in_flight.len();
        let already: usize = in_flight
            .iter()
            .filter(|a| {
                a.response_id
                    .as_ref()
                    .is_some_and(|r| tree.contains(&NodeId::from(r)))
            })
            .count();
        let client = Client::builder()
            .base_url(emu.base_url())
            .api_key("sk-test-recover")
            .build()
            .unwrap();
        let engine = Engine::builder(tree, ResponsesBackend::new(client))
            .build()
            .unwrap();
        let report = rt.block_on(engine.recover()).unwrap();
        assert_eq!(
            report.recovered.len() + report.unresolved.len() + already,
            in_flight.len(),
            "trial {trial}: {report:?}"
        );
        for id in &report.recovered {
            let node = engine.tree().get(id).unwrap();
            assert!(in_flight.iter().any(|a| {
                a.response_id
                    .as_ref()
                    .is_some_and(|r| r.as_str() == id.as_str())
            }));
            assert!(!node.output_text.is_empty());
        }
        for (attempt, err) in &report.unresolved {
            assert!(
                in_flight.iter().any(|a| a.id == attempt.id),
                "trial {trial}: unknown attempt"
            );
            match &attempt.response_id {
                // Killed before the server answered: nothing to fetch.
                None => {
                    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
                    figures.unresolved_no_id += 1;
                }
                // Killed mid-stream: the server dropped the unfinished response.
                Some(_) => {
                    assert!(
                        err.status().is_some(),
                        "trial {trial}: untyped failure {err:?}"
                    );
                    figures.unresolved_with_id += 1;
                }
            }
        }
        figures.recovered += report.recovered.len();
        assert!(
            engine.tree().attempts().unwrap().is_empty(),
            "trial {trial}: journal not empty"
        );
        check_invariants(engine.tree(), None);
    }
    assert!(figures.printed >= TRIALS, "{figures:?}");
    eprintln!("reliability figures (crash): trials {TRIALS}, {figures:?}");
}

#[cfg(feature = "cli")]
#[derive(Debug, Default)]
struct CliFigures {
    /// Responses the emulator created for the killed runs.
    created: usize,
    /// Of those, committed by the run itself before the kill.
    committed_before_kill: usize,
    /// Recorded by `resptree recover` (or by the next command's settling).
    recovered: usize,
    /// Attempts `recover` dropped: no id was journaled, or the server never
    /// made their response.
    unresolved: usize,
    /// Kills at a random moment: responses the server made whose run was
    /// killed inside the window between `response.created` arriving and its id
    /// being durably journaled (one store flush), so nothing can find them.
    lost_in_id_window: usize,
}

/// `resptree branch`, `fanout` and `ask` (streamed) killed with SIGKILL while
/// their requests are in flight at the server, some already answered. The kills
/// come after the run logged that it journaled its response ids, at a random
/// moment after the server announced them, or just after the server finished
/// every response (before or after the run committed them). After `resptree recover`:
/// every response the server created is in the tree, once — for the random
/// kills, except those whose run died inside the id-journal window, which are
/// counted (each shows up as an attempt without an id); no request was ever
/// sent twice; nothing is left for later while the server is reachable.
#[cfg(feature = "cli")]
#[test]
fn sigkill_of_the_cli_loses_no_response_the_server_made() {
    cli_sigkill_trials(false);
}

/// The same trials with `--background`: the server keeps working on every
/// response whose run was killed, so `resptree recover` adopts all of them
/// (waiting for those still running); the only attempts it cannot settle are
/// those killed before their id was journaled, never one the server dropped.
#[cfg(feature = "cli")]
#[test]
fn sigkill_of_background_cli_runs_loses_no_response_the_server_made() {
    cli_sigkill_trials(true);
}

#[cfg(feature = "cli")]
fn cli_sigkill_trials(background: bool) {
    const CLI_TRIALS: usize = 12;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let emu = rt
        .block_on(
            Emulator::builder()
                .latency(Duration::from_millis(300))
                .token_delay(Duration::from_millis(1))
                .spawn(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("tree");
    let cli = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_resptree"));
        cmd.env("RUST_LOG", "warn,resptree::engine=debug")
            .env("OPENAI_API_KEY", "sk-test-crash")
            .env("OPENAI_BASE_URL", emu.base_url())
            .arg("--store")
            .arg(&store)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    let out = cli(&["ask", "root"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let root = String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .lines()
        .last()
        .unwrap()
        .to_owned();

    let mut rng = Rng(SEED ^ 0xC11);
    let mut figures = CliFigures::default();
    // Responses the server surely made: the trials killed after it finished.
    let mut finished_before_kill = 0;
    for trial in 0..CLI_TRIALS {
        let created_before: HashSet<String> = emu.created_responses().into_iter().collect();
        let created_count_before = emu.created_count();
        let texts: Vec<String> = (0..3).map(|i| format!("trial {trial} text {i}")).collect();
        let (args, requests): (Vec<String>, usize) = match trial % 3 {
            0 => (
                ["branch", &root]
                    .into_iter()
                    .map(str::to_owned)
                    .chain(texts.iter().cloned())
                    .collect(),
                3,
            ),
            1 => (
                ["fanout", &root, &texts[0], "-n", "3"]
                    .map(str::to_owned)
                    .to_vec(),
                3,
            ),
            _ => (
                ["ask", "--parent", &root, &texts[0]]
                    .map(str::to_owned)
                    .to_vec(),
                1,
            ),
        };
        // The server thinks for 300 ms after `response.created`. The run is
        // killed once it logged every response id as journaled, 0–400 ms later
        // (before or after the answers, and the run's commits); 0–30 ms after it
        // journaled its attempts (around `response.created`); or 0–30 ms after
        // the server finished every response (around the run's commits). Only
        // the last kind is sure to leave responses the server made: how the
        // others fall against the 300 ms depends on the machine's speed.
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        if background {
            args.insert(1, "--background");
        }
        let mut child = cli(&args).spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let kind = (trial / 3) % 3;
        let after_journal = kind != 1;
        let after_finish = kind == 2;
        let (marker, wanted, extra) = match kind {
            0 => ("journaled the response id", requests, rng.range(0, 400)),
            1 => ("journaled attempts=", 1, rng.range(0, 30)),
            _ => ("journaled the response id", requests, rng.range(0, 30)),
        };
        let mut seen = 0;
        while seen < wanted {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|e| panic!("trial {trial}: no {marker:?} line: {e}"));
            seen += usize::from(line.contains(marker));
        }
        if after_finish {
            let target = created_count_before + requests as u64;
            rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(60), emu.wait_created(target))
                    .await
                    .unwrap_or_else(|_| panic!("trial {trial}: the server never finished"));
            });
            finished_before_kill += requests;
        }
        std::thread::sleep(Duration::from_millis(extra));
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        reader.join().unwrap();
        // Let the server finish (or abandon) what the run left in flight.
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(60), emu.wait_idle())
                .await
                .expect("the emulator never went idle");
        });
        let created: Vec<String> = emu
            .created_responses()
            .into_iter()
            .filter(|id| !created_before.contains(id))
            .collect();
        figures.created += created.len();
        {
            let tree = ResponseTree::open(&store).unwrap();
            figures.committed_before_kill += created
                .iter()
                .filter(|id| tree.contains(&NodeId::new(id.as_str()).unwrap()))
                .count();
        }
        let out = cli(&["recover"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let summary = stdout.lines().last().unwrap_or_default().to_owned();
        let count = |label: &str| -> usize {
            summary
                .split(", ")
                .find_map(|part| part.strip_prefix(label))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("trial {trial}: no {label:?} in {summary:?}"))
        };
        figures.recovered += count("recovered ");
        figures.unresolved += count("unresolved ");
        assert_eq!(count("left for later "), 0, "trial {trial}: {stderr}");
        assert_eq!(count("owned by live processes "), 0, "trial {trial}");
        // What could not be settled is only what the server never made.
        for line in stderr
            .lines()
            .filter(|l| l.contains("could not be recovered"))
        {
            // A background response outlives its client: never a 404.
            assert!(
                line.contains("never received") || (!background && line.contains("404")),
                "trial {trial} ({status:?}): {line}"
            );
        }

        let tree = ResponseTree::open(&store).unwrap();
        assert!(tree.attempts().unwrap().is_empty(), "trial {trial}");
        let lost = created
            .iter()
            .filter(|id| !tree.contains(&NodeId::new(id.as_str()).unwrap()))
            .count();
        if after_journal {
            assert_eq!(
                lost, 0,
                "trial {trial}: the server made {created:?}, the tree lost some ({stdout} {stderr})"
            );
        } else {
            let no_id = stderr.matches("never received").count();
            assert!(
                lost <= no_id,
                "trial {trial}: {lost} lost, {no_id} without an id: {stderr}"
            );
            figures.lost_in_id_window += lost;
        }
        check_invariants(&tree, None);
    }
    // No request was ever sent twice: at most one POST per branch text (a
    // fan-out's three share one text).
    let mut posts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for request in emu.requests() {
        if request.method == "POST" && request.path == "/v1/responses" {
            let body = request.body.unwrap();
            let text = resptree::node::item_text(body["input"].as_array().unwrap().last().unwrap());
            *posts.entry(text).or_default() += 1;
        }
    }
    for (text, n) in &posts {
        let trial: Option<usize> = text
            .strip_prefix("trial ")
            .and_then(|rest| rest.split(' ').next()?.parse().ok());
        let expected = match trial {
            Some(t) if t % 3 == 1 => 3, // a fan-out: three requests, one text
            _ => 1,
        };
        // Fewer when the kill came first.
        assert!(*n <= expected, "{text:?} sent {n} times");
    }
    assert!(figures.created >= finished_before_kill, "{figures:?}");
    assert!(finished_before_kill > 0);
    eprintln!(
        "reliability figures (CLI SIGKILL, background {background}): trials {CLI_TRIALS}, {figures:?}"
    );
}
