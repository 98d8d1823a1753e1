//! `import::import_chatgpt` into an empty in-memory tree; a success must leave
//! exactly the nodes it reports, a refusal none.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    assert!(resptree::fuzzing::import_chatgpt(data));
});
