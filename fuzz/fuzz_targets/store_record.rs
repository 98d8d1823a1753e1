//! The store's record decoders; decoded topology records must round-trip.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    assert!(
        resptree::fuzzing::store_record(data),
        "a topology record does not round-trip"
    );
});
