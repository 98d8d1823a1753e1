//! Cuts an export read from a stream into the bytes of one conversation at a
//! time, so each can be parsed from a slice (`serde_json::from_slice`,
//! borrowing its strings) rather than through `serde_json::from_reader`, which
//! reads byte by byte and copies every string it keeps.
//!
//! The cutter only finds where a top-level value ends (brackets outside
//! strings); whether the bytes are JSON is the parser's business, so a
//! malformed conversation is reported by `serde_json` with its position,
//! which [`Piece::position`] turns into a position in the whole document.
//! Memory: the bytes of the largest conversation plus one read.

use std::io::Read;

/// How much is asked of the reader at a time.
const READ: usize = 256 * 1024;

/// One top-level value of the document: a conversation's bytes and where
/// they start.
pub(super) struct Piece<'a> {
    pub(super) bytes: &'a [u8],
    /// 1-based line of the first byte in the document.
    line: u64,
    /// Bytes before the first byte on its line.
    column: u64,
}

impl Piece<'_> {
    /// The document position of a `serde_json` position (1-based line and
    /// column) inside this piece.
    pub(super) fn position(&self, line: usize, column: usize) -> (u64, u64) {
        let (line, column) = (line as u64, column as u64);
        if line <= 1 {
            (self.line, self.column + column)
        } else {
            (self.line + line - 1, column)
        }
    }
}

/// What cutting the document met that is not a conversation.
#[derive(Debug)]
pub(super) enum Cut {
    /// The reader failed.
    Read(std::io::Error),
    /// The document is not an array of values or one object: `message` is
    /// the parser's (or the cutter's) and names the position.
    Shape(String),
    /// The document ends inside a top-level value: the parser's message.
    Truncated(String),
}

/// What the document is, as far as the cutter has read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing read yet.
    Start,
    /// Inside the top-level array; `first`: no element read yet.
    Array { first: bool },
    /// The top level is one object (one conversation).
    Single,
    /// Every value was handed out; only whitespace may follow.
    Done,
}

/// Where a scan for the end of a value stopped (resumable across reads).
#[derive(Default, Clone, Copy)]
struct Scan {
    /// Offset from `start` of the next byte to look at.
    at: usize,
    depth: u32,
    in_string: bool,
    escaped: bool,
}

/// Hands out the top-level values of an export one at a time.
pub(super) struct Splitter<R> {
    reader: R,
    buf: Vec<u8>,
    /// `buf[start..end]` is read and not handed out yet.
    start: usize,
    end: usize,
    eof: bool,
    state: State,
    /// Line and column of `buf[start]`.
    line: u64,
    column: u64,
}

impl<R: Read> Splitter<R> {
    pub(super) fn new(reader: R) -> Self {
        Self {
            reader,
            buf: Vec::new(),
            start: 0,
            end: 0,
            eof: false,
            state: State::Start,
            line: 1,
            column: 0,
        }
    }

    /// The next conversation's bytes, or `None` at the end of the document.
    ///
    /// # Errors
    ///
    /// [`Cut::Read`] if the reader fails, [`Cut::Shape`] if the document's top
    /// level is not an array or an object, has a missing separator or
    /// trailing characters, or ends inside a value (the parser's message for
    /// the truncated value).
    pub(super) fn next_piece(&mut self) -> Result<Option<Piece<'_>>, Cut> {
        loop {
            self.skip_whitespace()?;
            match self.state {
                State::Start => match self.peek()? {
                    None => return Err(self.shape("EOF while parsing a value")),
                    Some(b'[') => {
                        self.consume(1);
                        self.state = State::Array { first: true };
                    }
                    Some(b'{') => {
                        self.state = State::Single;
                    }
                    Some(_) => {
                        // Enough of the value for the parser to name it.
                        while self.end - self.start < 1024 && self.fill()? {}
                        return Err(self.not_an_export());
                    }
                },
                State::Array { first } => match self.peek()? {
                    None => return Err(self.shape("EOF while parsing a list")),
                    Some(b']') if first => {
                        self.consume(1);
                        self.state = State::Done;
                    }
                    Some(b']') => {
                        self.consume(1);
                        self.state = State::Done;
                    }
                    Some(b',') if !first => {
                        self.consume(1);
                        self.skip_whitespace()?;
                        if self.peek()? == Some(b']') {
                            return Err(self.shape("trailing comma"));
                        }
                        self.state = State::Array { first: true };
                    }
                    Some(_) if first => {
                        self.state = State::Array { first: false };
                        return self.value().map(Some);
                    }
                    Some(_) => return Err(self.shape("expected `,` or `]`")),
                },
                State::Single => {
                    self.state = State::Done;
                    return self.value().map(Some);
                }
                State::Done => {
                    return match self.peek()? {
                        None => Ok(None),
                        Some(_) => Err(self.shape("trailing characters")),
                    };
                }
            }
        }
    }

    /// Cuts the value starting at `buf[start]` and hands it out.
    fn value(&mut self) -> Result<Piece<'_>, Cut> {
        let mut scan = Scan::default();
        let len = loop {
            if let Some(len) = scan_value(&self.buf[self.start..self.end], &mut scan) {
                break len;
            }
            if !self.fill()? {
                // The document ends inside the value: let the parser say how.
                return Err(self.truncated());
            }
        };
        let (line, column) = (self.line, self.column);
        let from = self.start;
        self.consume(len);
        Ok(Piece {
            bytes: &self.buf[from..from + len],
            line,
            column,
        })
    }

    /// The parser's message for the value that the document cuts short.
    fn truncated(&self) -> Cut {
        let piece = Piece {
            bytes: &self.buf[self.start..self.end],
            line: self.line,
            column: self.column,
        };
        match serde_json::from_slice::<serde::de::IgnoredAny>(piece.bytes) {
            Err(e) => Cut::Truncated(located(&e, &piece)),
            Ok(_) => Cut::Truncated(self.here("EOF while parsing a value")),
        }
    }

    /// The parser's message for a top level that is neither an array nor an
    /// object ("invalid type: integer `42`, expected …").
    fn not_an_export(&self) -> Cut {
        let piece = Piece {
            bytes: &self.buf[self.start..self.end],
            line: self.line,
            column: self.column,
        };
        let mut deserializer = serde_json::Deserializer::from_slice(piece.bytes);
        match serde::de::Deserializer::deserialize_any(&mut deserializer, NotAnExport) {
            Err(e) => Cut::Shape(located(&e, &piece)),
            Ok(()) => self.shape("expected an array of conversations or one conversation object"),
        }
    }

    /// A [`Cut::Shape`] of `message` at the current position.
    fn shape(&self, message: &str) -> Cut {
        Cut::Shape(self.here(message))
    }

    /// `message` at the current position (the next byte, 1-based column, as
    /// the parser counts).
    fn here(&self, message: &str) -> String {
        format!(
            "{message} at line {} column {}",
            self.line,
            self.column + u64::from(self.start < self.end)
        )
    }

    /// The next byte, reading if needed; `None` at the end of the document.
    fn peek(&mut self) -> Result<Option<u8>, Cut> {
        if self.start == self.end && !self.fill()? {
            return Ok(None);
        }
        Ok(self.buf.get(self.start).copied())
    }

    fn skip_whitespace(&mut self) -> Result<(), Cut> {
        loop {
            let skipped = self.buf[self.start..self.end]
                .iter()
                .take_while(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
                .count();
            self.consume(skipped);
            if self.start < self.end || !self.fill()? {
                return Ok(());
            }
        }
    }

    /// Hands `n` bytes over, keeping the line and column of `buf[start]`.
    fn consume(&mut self, n: usize) {
        let bytes = &self.buf[self.start..self.start + n];
        let newlines = bytes.iter().filter(|&&b| b == b'\n').count() as u64;
        if newlines == 0 {
            self.column += n as u64;
        } else {
            self.line += newlines;
            let after = bytes.iter().rev().take_while(|&&b| b != b'\n').count();
            self.column = after as u64;
        }
        self.start += n;
    }

    /// Reads more; `false` at the end of the document. Moves what is not
    /// handed out yet to the front of the buffer first.
    fn fill(&mut self) -> Result<bool, Cut> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() < self.end + READ {
            self.buf.resize(self.end + READ, 0);
        }
        loop {
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Cut::Read(e)),
            }
        }
    }
}

/// `error`'s message with its position moved from inside `piece` to the
/// document ("… at line L column C").
pub(super) fn located(error: &serde_json::Error, piece: &Piece<'_>) -> String {
    let text = error.to_string();
    if error.line() == 0 {
        return text;
    }
    let suffix = format!(" at line {} column {}", error.line(), error.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text);
    let (line, column) = piece.position(error.line(), error.column());
    format!("{message} at line {line} column {column}")
}

/// The length of the value at the start of `bytes` (which starts with its
/// first byte), or `None` if `bytes` ends inside it; `scan` carries the
/// state from one call to the next as `bytes` grows.
fn scan_value(bytes: &[u8], scan: &mut Scan) -> Option<usize> {
    let first = *bytes.first()?;
    if !matches!(first, b'{' | b'[' | b'"') {
        // A scalar (the parser rejects it as a conversation): up to the next
        // delimiter.
        let len = bytes
            .iter()
            .position(|b| matches!(b, b',' | b']' | b'}' | b' ' | b'\n' | b'\r' | b'\t'));
        return len;
    }
    let mut i = scan.at;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        if scan.in_string {
            if scan.escaped {
                scan.escaped = false;
                continue;
            }
            // Inside a string only `"` and `\` matter: jump to the next one
            // (strings, mostly message texts, are most of an export's bytes).
            let at = i - 1;
            let Some(skip) = bytes.get(at..).and_then(quote_or_backslash) else {
                i = bytes.len();
                break;
            };
            i = at + skip + 1;
            if bytes.get(at + skip) == Some(&b'\\') {
                scan.escaped = true;
            } else {
                scan.in_string = false;
                if scan.depth == 0 {
                    return Some(i);
                }
            }
            continue;
        }
        match b {
            b'"' => scan.in_string = true,
            b'{' | b'[' => scan.depth += 1,
            b'}' | b']' => {
                scan.depth = scan.depth.saturating_sub(1);
                if scan.depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    scan.at = i;
    None
}

/// The position of the first `"` or `\` in `bytes`, eight bytes at a time.
fn quote_or_backslash(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // High bit set in each byte of `x` that is zero. A borrow can also flag a
    // byte above a zero byte, never below one, so the lowest flag is exact.
    let zeros = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    let mut at = 0;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_le_bytes(word);
        let found =
            zeros(word ^ (ONES * u64::from(b'"'))) | zeros(word ^ (ONES * u64::from(b'\\')));
        if found != 0 {
            return Some(at + (found.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .map(|p| at + p)
}

/// The visitor whose only job is the parser's error for a top-level value
/// that is not an export.
struct NotAnExport;

impl<'de> serde::de::Visitor<'de> for NotAnExport {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("an array of conversations or one conversation object")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out `step` bytes at a time, so values straddle
    /// reads.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(buf.len()).min(self.bytes.len());
            buf[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    /// Every piece of `text` (read `step` bytes at a time) with its start
    /// position, or the cutter's message.
    fn pieces(text: &str, step: usize) -> Result<Vec<(String, u64, u64)>, String> {
        let mut split = Splitter::new(Trickle {
            bytes: text.as_bytes(),
            step,
        });
        let mut out = Vec::new();
        loop {
            match split.next_piece() {
                Ok(Some(piece)) => out.push((
                    String::from_utf8(piece.bytes.to_vec()).unwrap(),
                    piece.line,
                    piece.column,
                )),
                Ok(None) => return Ok(out),
                Err(Cut::Read(e)) => return Err(e.to_string()),
                Err(Cut::Shape(m)) => return Err(format!("shape: {m}")),
                Err(Cut::Truncated(m)) => return Err(format!("truncated: {m}")),
            }
        }
    }

    #[test]
    fn cuts_top_level_values_whatever_the_reads() {
        let text = "[ {\"a\": \"}]\\\"{[\"},\n  {\"b\": [1, {\"c\": \"\\\\\"}]} ,\r\n\t{} ]\n";
        let want = vec![
            ("{\"a\": \"}]\\\"{[\"}".to_owned(), 1, 2),
            ("{\"b\": [1, {\"c\": \"\\\\\"}]}".to_owned(), 2, 2),
            ("{}".to_owned(), 3, 1),
        ];
        for step in [1, 2, 3, 7, 1 << 20] {
            assert_eq!(pieces(text, step).unwrap(), want, "step {step}");
        }
        assert_eq!(pieces("[]", 1).unwrap(), vec![]);
        assert_eq!(
            pieces(" {\"x\": 1} ", 1).unwrap(),
            vec![("{\"x\": 1}".to_owned(), 1, 1)]
        );
        // Values that are not conversations are cut too; the parser rejects them.
        assert_eq!(
            pieces("[1,\"s\"]", 1).unwrap(),
            vec![("1".to_owned(), 1, 1), ("\"s\"".to_owned(), 1, 3)]
        );
    }

    #[test]
    fn a_document_that_is_not_an_array_of_values_is_named_with_its_position() {
        assert_eq!(
            pieces("42", 1).unwrap_err(),
            "shape: invalid type: integer `42`, expected an array of conversations or one \
             conversation object at line 1 column 2"
        );
        assert_eq!(
            pieces("", 1).unwrap_err(),
            "shape: EOF while parsing a value at line 1 column 0"
        );
        assert_eq!(
            pieces("[{} {}]", 1).unwrap_err(),
            "shape: expected `,` or `]` at line 1 column 5"
        );
        assert_eq!(
            pieces("[{},\n]", 1).unwrap_err(),
            "shape: trailing comma at line 2 column 1"
        );
        assert_eq!(
            pieces("[{}\n] x", 1).unwrap_err(),
            "shape: trailing characters at line 2 column 3"
        );
        assert_eq!(
            pieces("[{}", 1).unwrap_err(),
            "shape: EOF while parsing a list at line 1 column 3"
        );
        assert_eq!(
            pieces("[{},\n {\"a\": [", 1).unwrap_err(),
            "truncated: EOF while parsing a list at line 2 column 8"
        );
    }

    /// The word-at-a-time search finds what a byte-at-a-time one finds, at
    /// every offset and length, with the bytes around `"` and `\\` (0x22,
    /// 0x5c) that a borrow between lanes could confuse.
    #[test]
    fn quote_or_backslash_agrees_with_a_plain_search() {
        let alphabet = [
            b'a', b'"', b'\\', 0x21, 0x23, 0x5b, 0x5d, 0x00, 0x80, 0xff, 0x01,
        ];
        let mut state = 0x9e37_79b9_u32;
        for len in 0..40 {
            for _ in 0..200 {
                let bytes: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        // Mostly plain bytes, so matches land in every lane.
                        if state % 8 == 0 {
                            alphabet[(state as usize / 8) % alphabet.len()]
                        } else {
                            alphabet[0]
                        }
                    })
                    .collect();
                let plain = bytes.iter().position(|&b| b == b'"' || b == b'\\');
                assert_eq!(quote_or_backslash(&bytes), plain, "{bytes:?}");
            }
        }
    }

    #[test]
    fn parser_positions_inside_a_piece_become_document_positions() {
        let piece = Piece {
            bytes: b"",
            line: 3,
            column: 5,
        };
        assert_eq!(piece.position(1, 4), (3, 9));
        assert_eq!(piece.position(2, 4), (4, 4));
    }
}
