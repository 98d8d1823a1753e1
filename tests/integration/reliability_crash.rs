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
