//! The in-repo protocol fixtures (`tests/fixtures/protocol/`) against the team's
//! reference copy, `shared/protocol/fixtures`, where that sits beside the repository.

use std::collections::BTreeMap;
use std::path::Path;

use crate::support::fixtures_dir;

/// Every file of a directory (not recursive), by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// The one test that looks outside the repository, on purpose: the fixtures were
/// copied from `../shared/protocol/fixtures`, and when that reference changes the copy
/// must follow. A clone with nothing beside it has no reference to compare with, so
/// the test says so and passes; every other test reads only the in-repo copy.
#[test]
fn in_repo_copy_matches_shared() {
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/protocol/fixtures");
    if !shared.is_dir() {
        println!(
            "note: {} not found (a clone on its own); the in-repo fixtures are not compared",
            shared.display()
        );
        return;
    }
    let ours = files(&fixtures_dir());
    let theirs = files(&shared);
    let names = |m: &BTreeMap<String, Vec<u8>>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        names(&ours),
        names(&theirs),
        "tests/fixtures/protocol/ and {} hold different files: copy the reference over",
        shared.display()
    );
    for (name, bytes) in &ours {
        assert!(
            *bytes == theirs[name],
            "tests/fixtures/protocol/{name} differs from {}: copy the reference over",
            shared.join(name).display()
        );
    }
}
