//! `import::import_json` into an empty in-memory tree.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    resptree::fuzzing::import_json(data);
});
