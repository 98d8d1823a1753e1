//! zstd with one reused context per thread, for the records the sled store
//! compresses itself (segments: [`super::segment`]).
//!
//! Why not sled's page compression, which stores of schemas 3–5 use: sled 0.34
//! compresses every page fragment it writes with a fresh zstd context, and
//! creating and freeing that context cost more than compressing. It was about
//! half of a group commit's write in a fan-out and a fifth of an import's
//! writer thread (`docs/benchmarks.md`, sections 2b and 8f). A context kept
//! per thread costs its allocation once; and only segments, where the bodies
//! are, are worth compressing.

use std::cell::RefCell;

/// zstd's level. Level 1 (zstd's `fast` strategy) is what sled's pages were
/// compressed at since it was measured against 3 (`docs/benchmarks.md`,
/// section 4, *Bulk insert profiled*); a segment of similar bodies compresses
/// well at it.
const LEVEL: i32 = 1;

thread_local! {
    static COMPRESSOR: RefCell<zstd::block::Compressor> =
        RefCell::new(zstd::block::Compressor::new());
    static DECOMPRESSOR: RefCell<zstd::block::Decompressor> =
        RefCell::new(zstd::block::Decompressor::new());
}

/// `data` as one zstd frame, compressed with this thread's context.
pub(crate) fn compress(data: &[u8]) -> std::io::Result<Vec<u8>> {
    COMPRESSOR
        .try_with(|context| match context.try_borrow_mut() {
            Ok(mut context) => context.compress(data, LEVEL),
            // Not reentrant, so never borrowed here; a fresh context is correct anyway.
            Err(_) => zstd::block::compress(data, LEVEL),
        })
        // The thread is exiting and its context is gone.
        .unwrap_or_else(|_| zstd::block::compress(data, LEVEL))
}

/// Decompresses the zstd frame `data` into exactly `len` bytes; an error if
/// it is damaged or does not hold `len` bytes.
pub(crate) fn decompress(data: &[u8], len: usize) -> std::io::Result<Vec<u8>> {
    let out = DECOMPRESSOR
        .try_with(|context| match context.try_borrow_mut() {
            Ok(mut context) => context.decompress(data, len),
            Err(_) => zstd::block::decompress(data, len),
        })
        .unwrap_or_else(|_| zstd::block::decompress(data, len))?;
    if out.len() == len {
        Ok(out)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} bytes where {len} were recorded", out.len()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_an_error() {
        let data: Vec<u8> = b"the same words again and again, "
            .iter()
            .copied()
            .cycle()
            .take(10_000)
            .collect();
        let packed = compress(&data).unwrap();
        assert!(packed.len() < data.len() / 10, "{} bytes", packed.len());
        // The context is reused: a second frame is alike and independent.
        assert_eq!(compress(&data).unwrap(), packed);
        assert_eq!(decompress(&packed, data.len()).unwrap(), data);
        // A length that does not match, a cut frame or flipped bytes are errors.
        assert!(decompress(&packed, data.len() - 1).is_err());
        assert!(decompress(&packed, data.len() + 1).is_err());
        for cut in 0..packed.len() {
            assert!(
                decompress(&packed[..cut], data.len()).is_err(),
                "cut at {cut}"
            );
        }
        let mut flipped = packed.clone();
        flipped[0] ^= 0xff;
        assert!(decompress(&flipped, data.len()).is_err());
        assert_eq!(decompress(&compress(b"").unwrap(), 0).unwrap(), b"");
    }
}
