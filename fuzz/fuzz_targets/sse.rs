//! The SSE parser, fed in chunks of `data[0]` bytes, plus the event decoders.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    resptree::fuzzing::sse(data);
});
