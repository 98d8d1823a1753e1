//! The wire decoders: Response, Chat Completions reply and chunk, error envelope.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    resptree::fuzzing::wire(data);
});
