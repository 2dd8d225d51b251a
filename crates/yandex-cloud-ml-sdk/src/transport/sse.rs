//! Server-sent events (the `text/event-stream` format of the WHATWG HTML standard, §9.2), as
//! the OpenAI-compatible API streams answers: bytes in, whole events out, however the bytes
//! are split into chunks.
//!
//! Hand-written instead of a crate: the parser is this file (the crates wrap their own stream
//! and error types around the same hundred lines), and the tests below cover every rule of the
//! format that a server can exercise, plus arbitrary splits of the input.

/// One event: its `data` lines joined with `\n`, and its `event` name if it had one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Event {
    pub event: Option<String>,
    pub data: String,
}

/// Incremental parser: feed it chunks, take the events they complete.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    /// Bytes of the line being read (not yet ended by CR, LF or CRLF).
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF at the start of this one belongs to it.
    after_cr: bool,
    /// Whether the stream's first line was seen (a leading BOM is dropped).
    started: bool,
    data: Option<String>,
    event: Option<String>,
}

/// The largest event accepted (the API's chunks are a few hundred bytes).
pub(crate) const MAX_EVENT_BYTES: usize = 16 << 20;

impl Parser {
    /// Parses `chunk`, appending completed events to `out`. Fails when one event grows past
    /// [`MAX_EVENT_BYTES`].
    pub(crate) fn feed(&mut self, chunk: &[u8], out: &mut Vec<Event>) -> Result<(), String> {
        if chunk.is_empty() {
            return Ok(()); // keeps a pending CR's state for the next chunk
        }
        let mut rest = chunk;
        if self.after_cr && rest.first() == Some(&b'\n') {
            rest = &rest[1..];
        }
        self.after_cr = false;
        while let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            self.line.extend_from_slice(&rest[..end]);
            let crlf = rest[end] == b'\r' && rest.get(end + 1) == Some(&b'\n');
            if rest[end] == b'\r' && end + 1 == rest.len() {
                self.after_cr = true;
            }
            rest = &rest[end + if crlf { 2 } else { 1 }..];
            let line = std::mem::take(&mut self.line);
            self.line(&line, out);
        }
        self.line.extend_from_slice(rest);
        // Bounded, so a server cannot grow memory without end.
        if self.line.len() + self.data.as_ref().map_or(0, String::len) > MAX_EVENT_BYTES {
            return Err(format!("an event of the stream is larger than {MAX_EVENT_BYTES} bytes"));
        }
        Ok(())
    }

    fn line(&mut self, mut line: &[u8], out: &mut Vec<Event>) {
        if !self.started {
            self.started = true;
            line = line.strip_prefix("\u{feff}".as_bytes()).unwrap_or(line);
        }
        if line.is_empty() {
            // A blank line dispatches the event; one without data is dropped, as the format says.
            if let Some(data) = self.data.take() {
                out.push(Event { event: self.event.take(), data });
            }
            self.event = None;
            return;
        }
        if line[0] == b':' {
            return; // a comment (keep-alive)
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(&value);
                }
                None => self.data = Some(value.into_owned()),
            },
            b"event" => self.event = Some(value.into_owned()),
            // `id` and `retry` steer reconnection, which this API does not offer.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut out).unwrap();
        }
        out
    }

    fn data(events: &[Event]) -> Vec<&str> {
        events.iter().map(|e| e.data.as_str()).collect()
    }

    #[test]
    fn reads_the_api_shape_one_data_line_per_event() {
        let events = parse_all(&[b"data: {\"a\":1}\n\ndata: [DONE]\n\n"]);
        assert_eq!(data(&events), ["{\"a\":1}", "[DONE]"]);
    }

    #[test]
    fn every_line_ending_counts_and_crlf_split_across_chunks_is_one() {
        assert_eq!(data(&parse_all(&[b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"])), ["a", "b", "c"]);
        // CR at the end of a chunk, LF at the start of the next: one line end, not two.
        assert_eq!(data(&parse_all(&[b"data: a\r", b"\ndata: b\r", b"\n\r\n"])), ["a\nb"]);
        assert_eq!(data(&parse_all(&[b"data: a\r", b"", b"\ndata: b\r\n\r\n"])), ["a\nb"]);
    }

    #[test]
    fn comments_fields_without_colon_bom_and_multi_line_data() {
        let events = parse_all(&["\u{feff}: keep-alive\nevent: x\ndata\ndata:two\nid: 7\nretry: 5\n\n".as_bytes()]);
        assert_eq!(events, [Event { event: Some("x".into()), data: "\ntwo".into() }]);
        // Only one space after the colon is part of the syntax.
        assert_eq!(data(&parse_all(&[b"data:  x\n\n"])), [" x"]);
        // An event without data is not dispatched, and its name does not leak into the next.
        let events = parse_all(&[b"event: ping\n\ndata: y\n\n"]);
        assert_eq!(events, [Event { event: None, data: "y".into() }]);
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        assert!(parse_all(&[b"data: half"]).is_empty());
        assert!(parse_all(&[b"data: half\n"]).is_empty());
    }

    #[test]
    fn huge_events_are_refused() {
        let mut parser = Parser::default();
        let mut out = Vec::new();
        let chunk = vec![b'x'; 1 << 20];
        parser.feed(b"data: ", &mut out).unwrap();
        let e = (0..17).map(|_| parser.feed(&chunk, &mut out)).find_map(Result::err).unwrap();
        assert!(e.contains("larger than"), "{e}");
    }

    proptest! {
        /// However the bytes are cut into chunks, the same events come out.
        #[test]
        fn splitting_never_changes_the_events(cuts in proptest::collection::vec(0usize..200, 0..12)) {
            let stream = "data: {\"x\":\"é\"}\r\n\r\n: c\nevent: e\ndata: 1\ndata: 2\n\ndata: [DONE]\r\r".as_bytes();
            let whole = parse_all(&[stream]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % stream.len()).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut at = 0;
            for c in cuts {
                chunks.push(&stream[at..c]);
                at = c;
            }
            chunks.push(&stream[at..]);
            prop_assert_eq!(parse_all(&chunks), whole);
        }
    }
}
