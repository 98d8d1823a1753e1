//! An incremental parser for `text/event-stream` bodies (server-sent events).
//!
//! Bytes arrive in arbitrary chunks: a chunk may end in the middle of a line, in the
//! middle of a UTF-8 character, or between the `\r` and `\n` of a CRLF, and one
//! chunk may hold many events. [`SseParser::feed`] keeps the unfinished line and the
//! unfinished event between calls and returns every event completed by the chunk.
//!
//! The rules follow the WHATWG "event stream interpretation": lines end in `\n`,
//! `\r\n` or `\r`; a line starting with `:` is a comment; `field: value` drops one
//! space after the colon; several `data` lines join with `\n`; a blank line
//! dispatches the event, unless it has no `data` line at all.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SseEvent {
    /// The `event:` field, when the event had one.
    pub(crate) event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub(crate) data: String,
}

/// The longest line we accept. The biggest real events (a `response.completed`
/// carrying a long answer) are far smaller; the cap stops a broken server from
/// making us buffer without bound.
const MAX_LINE: usize = 32 * 1024 * 1024;

/// The incremental parser. Feed it chunks, then call [`SseParser::finish`] at EOF.
#[derive(Debug, Default)]
pub(crate) struct SseParser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous chunk ended with `\r`; a `\n` starting the next one belongs to it.
    skip_lf: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Consumes `chunk` and appends every event it completes to `out`.
    ///
    /// Fails on a line that is not UTF-8 or is longer than 32 MiB; the parser
    /// should not be used after an error.
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        let mut rest = chunk;
        if self.skip_lf && !rest.is_empty() {
            self.skip_lf = false;
            if let Some(tail) = rest.strip_prefix(b"\n") {
                rest = tail;
            }
        }
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..end]);
            let crlf = rest[end] == b'\r';
            rest = &rest[end + 1..];
            if crlf {
                match rest.first() {
                    Some(b'\n') => rest = &rest[1..],
                    None => self.skip_lf = true,
                    Some(_) => {}
                }
            }
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, out)?;
        }
        self.line.extend_from_slice(rest);
        if self.line.len() > MAX_LINE {
            return Err(format!("a line is longer than {MAX_LINE} bytes"));
        }
        Ok(())
    }

    /// Ends the stream. An event whose lines all arrived but that lacks the final
    /// blank line is dispatched (some servers omit it); a half-received last line
    /// is dropped, because it may be a truncated `data:` line.
    pub(crate) fn finish(&mut self) -> Option<SseEvent> {
        self.line.clear();
        self.take_event()
    }

    fn process_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) -> Result<(), String> {
        if line.is_empty() {
            out.extend(self.take_event());
            return Ok(());
        }
        let line = std::str::from_utf8(line).map_err(|e| format!("a line is not UTF-8 ({e})"))?;
        if line.starts_with(':') {
            return Ok(());
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = Some(value.to_owned()),
            // `id` and `retry` steer browser reconnection, which this client never does.
            _ => {}
        }
        Ok(())
    }

    fn take_event(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !std::mem::take(&mut self.has_data) {
            return None;
        }
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_chunks(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out).unwrap();
        }
        out.extend(parser.finish());
        out
    }

    fn ev(event: Option<&str>, data: &str) -> SseEvent {
        SseEvent {
            event: event.map(str::to_owned),
            data: data.to_owned(),
        }
    }

    #[test]
    fn parses_basic_events() {
        let got = parse_chunks(&[b"event: a\ndata: {\"x\":1}\n\nevent: b\ndata: 2\n\n"]);
        assert_eq!(got, vec![ev(Some("a"), "{\"x\":1}"), ev(Some("b"), "2")]);
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let body = "event: response.created\r\ndata: {\"a\":\"é\"}\r\n\r\n: keep-alive\n\ndata: x\ndata: y\r\rdata: [DONE]\n\n";
        let expected = vec![
            ev(Some("response.created"), "{\"a\":\"é\"}"),
            ev(None, "x\ny"),
            ev(None, "[DONE]"),
        ];
        let bytes = body.as_bytes();
        assert_eq!(parse_chunks(&[bytes]), expected);
        for i in 0..=bytes.len() {
            for j in i..=bytes.len() {
                let got = parse_chunks(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
                assert_eq!(got, expected, "split at {i}/{j}");
            }
        }
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse_chunks(&single), expected);
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        // A `\r` at the end of one chunk and `\n` at the start of the next must not
        // be read as two line ends (that would dispatch an event early).
        let got = parse_chunks(&[b"data: a\r", b"\ndata: b\r\n\r\n"]);
        assert_eq!(got, vec![ev(None, "a\nb")]);
    }

    #[test]
    fn comments_and_unknown_fields_are_ignored() {
        let got = parse_chunks(&[b": hello\nid: 7\nretry: 10\nfoo: bar\ndata: x\n\n: bye\n\n"]);
        assert_eq!(got, vec![ev(None, "x")]);
    }

    #[test]
    fn multi_line_data_joins_with_newline_and_keeps_inner_spaces() {
        let got = parse_chunks(&[b"data:no-space\ndata:  two\ndata\n\n"]);
        assert_eq!(got, vec![ev(None, "no-space\n two\n")]);
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        let got = parse_chunks(&[b"event: ping\n\ndata: real\n\n"]);
        assert_eq!(got, vec![ev(None, "real")]);
    }

    #[test]
    fn finish_keeps_complete_lines_and_drops_a_partial_one() {
        assert_eq!(parse_chunks(&[b"data: whole\n"]), vec![ev(None, "whole")]);
        assert_eq!(
            parse_chunks(&[b"data: whole\ndata: trunc"]),
            vec![ev(None, "whole")]
        );
        assert_eq!(parse_chunks(&[b"data: {\"trunc"]), Vec::new());
    }

    #[test]
    fn utf8_split_inside_a_character() {
        let bytes = "data: 日本\n\n".as_bytes();
        let got = parse_chunks(&[&bytes[..7], &bytes[7..]]);
        assert_eq!(got, vec![ev(None, "日本")]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        let err = parser.feed(b"data: \xff\xfe\n\n", &mut out).unwrap_err();
        assert!(err.contains("UTF-8"), "{err}");
    }
}
