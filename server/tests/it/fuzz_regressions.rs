//! Inputs of the `server_requests` fuzz target (fuzz/fuzz_targets/server_requests.rs), kept
//! under tests/it/fuzz_data/server_requests/ at the workspace root and replayed here so that
//! every change runs them: the seeds that show the input layout, and any crash the fuzzer
//! finds (name the file after what it does).

use std::path::PathBuf;

fn inputs() -> Vec<(String, Vec<u8>)> {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/it/fuzz_data/server_requests");
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("readable input"))
        })
        .collect();
    all.sort();
    all
}

#[test]
fn every_kept_input_replays_cleanly() {
    let all = inputs();
    assert!(all.len() >= 2, "the seeds are missing: {all:?}");
    for (name, data) in all {
        eprintln!("replaying {name} ({} bytes)", data.len());
        lessor_server::fuzz::requests(&data);
    }
}

#[test]
fn the_seed_really_exercises_expiry_and_keys() {
    // Guards the input layout: the seed grants a lease, puts a key on it, lets it expire and
    // reads the store; if the layout drifted, the key would never have been written.
    let (_, seed) = inputs()
        .into_iter()
        .find(|(n, _)| n == "grant-put-expire-delete")
        .expect("the seed");
    lessor_server::fuzz::requests(&seed);
    let rev = lessor_server::fuzz::revision();
    assert!(rev >= 4, "put, put, expiry, delete: revision {rev}");
}
