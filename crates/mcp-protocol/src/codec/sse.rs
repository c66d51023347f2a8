//! Server-Sent Events, both ways, as the HTML Living Standard defines the
//! `text/event-stream` format: fields `event`, `data` (repeatable, joined
//! with `\n`), `id` and `retry`; comments start with `:`; lines end with
//! CRLF, LF or CR; a blank line ends an event.
//!
//! The decoder keeps the stream's state between events: the last event id
//! (for `Last-Event-ID` on reconnection) and the reconnection delay from
//! `retry`, which take effect even in blocks that carry no data and so
//! dispatch no event. An event larger than the maximum is reported once as
//! [`ErrorKind::MessageTooLarge`] and skipped up to its end.

use std::fmt::Write as _;

use bytes::{Buf, BytesMut};

use crate::error::{Error, ErrorKind};

/// The default maximum event size: 16 MiB.
pub const DEFAULT_MAX_EVENT: usize = 16 * 1024 * 1024;

/// One event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The event type; `None` means the default, `message`.
    pub event: Option<String>,
    /// The data lines, joined with `\n`.
    pub data: String,
    /// The `id` field, when the event carried one.
    pub id: Option<String>,
    /// The `retry` field in milliseconds, when the event carried one.
    pub retry: Option<u64>,
}

impl SseEvent {
    /// A `message` event with `data`.
    pub fn message(data: impl Into<String>) -> Self {
        Self {
            data: data.into(),
            ..Self::default()
        }
    }

    /// The event type, with the default applied.
    #[must_use]
    pub fn event_type(&self) -> &str {
        self.event.as_deref().unwrap_or("message")
    }

    /// Appends the event in wire form to `out`. Line breaks inside `data`
    /// become separate `data:` lines.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidRequest`] when `event` or `id` contains a line
    /// break, or `id` a NUL, which the format cannot carry.
    pub fn encode(&self, out: &mut BytesMut) -> Result<(), Error> {
        let mut text = String::with_capacity(self.data.len() + 32);
        if let Some(id) = &self.id {
            if id.contains(['\r', '\n', '\0']) {
                return Err(bad_field("id"));
            }
            let _ = writeln!(text, "id: {id}");
        }
        if let Some(event) = &self.event {
            if event.contains(['\r', '\n']) {
                return Err(bad_field("event"));
            }
            let _ = writeln!(text, "event: {event}");
        }
        if let Some(retry) = self.retry {
            let _ = writeln!(text, "retry: {retry}");
        }
        for line in split_lines(&self.data) {
            text.push_str("data: ");
            text.push_str(line);
            text.push('\n');
        }
        text.push('\n');
        out.extend_from_slice(text.as_bytes());
        Ok(())
    }
}

fn bad_field(name: &str) -> Error {
    Error::new(
        ErrorKind::InvalidRequest,
        format!("an SSE `{name}` field cannot contain a line break or NUL"),
    )
}

/// Splits on CRLF, LF and CR, as the event-stream format does.
fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let current = rest?;
        match current.find(['\r', '\n']) {
            Some(i) => {
                let skip = if current.get(i..i + 2) == Some("\r\n") {
                    2
                } else {
                    1
                };
                rest = current.get(i + skip..);
                current.get(..i)
            }
            None => {
                rest = None;
                Some(current)
            }
        }
    })
}

/// Decodes an event stream.
#[derive(Debug)]
pub struct SseDecoder {
    max_event: usize,
    /// The event being assembled.
    data: String,
    has_data: bool,
    event: Option<String>,
    id: Option<String>,
    block_retry: Option<u64>,
    /// Bytes of the current event so far.
    size: usize,
    /// Stream state.
    last_event_id: Option<String>,
    retry: Option<u64>,
    /// The last line ended with CR; a LF right after it belongs to it.
    pending_cr: bool,
    started: bool,
    scanned: usize,
    /// Skip input up to the end of the current line, then up to the end of
    /// the current event.
    skip_line: bool,
    skip_event: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_EVENT)
    }
}

impl SseDecoder {
    /// A decoder that refuses events larger than `max_event` bytes.
    #[must_use]
    pub fn new(max_event: usize) -> Self {
        Self {
            max_event,
            data: String::new(),
            has_data: false,
            event: None,
            id: None,
            block_retry: None,
            size: 0,
            last_event_id: None,
            retry: None,
            pending_cr: false,
            started: false,
            scanned: 0,
            skip_line: false,
            skip_event: false,
        }
    }

    /// The last event id the stream set, to send as `Last-Event-ID` when
    /// reconnecting.
    #[must_use]
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// The reconnection delay the stream asked for, in milliseconds.
    #[must_use]
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// Takes the next complete event out of `buf`. `Ok(None)` means more
    /// bytes are needed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::MessageTooLarge`] once for each event over the limit;
    /// the event is skipped and decoding goes on after it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<SseEvent>, Error> {
        self.skip_bom(buf);
        loop {
            if self.pending_cr && !buf.is_empty() {
                self.pending_cr = false;
                if buf.first() == Some(&b'\n') {
                    buf.advance(1);
                }
            }
            let Some(offset) =
                memchr::memchr2(b'\n', b'\r', buf.get(self.scanned..).unwrap_or_default())
            else {
                return self.wait_for_more(buf);
            };
            let end = self.scanned + offset;
            self.scanned = 0;
            self.pending_cr = buf.get(end) == Some(&b'\r');
            let line = buf.split_to(end + 1);
            let line = line.get(..end).unwrap_or_default();
            if std::mem::take(&mut self.skip_line) {
                continue;
            }
            if let Some(result) = self.process_line(line) {
                return result.map(Some);
            }
        }
    }

    fn skip_bom(&mut self, buf: &mut BytesMut) {
        if self.started || buf.is_empty() {
            return;
        }
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        if buf.starts_with(BOM) {
            buf.advance(BOM.len());
            self.started = true;
        } else if !BOM.starts_with(buf) {
            self.started = true;
        }
    }

    fn wait_for_more(&mut self, buf: &mut BytesMut) -> Result<Option<SseEvent>, Error> {
        if self.skip_line {
            buf.clear();
            self.scanned = 0;
            return Ok(None);
        }
        if self.size + buf.len() > self.max_event.saturating_add(16) {
            buf.clear();
            self.scanned = 0;
            self.skip_line = true;
            return self.overflow().map(|()| None);
        }
        self.scanned = buf.len();
        Ok(None)
    }

    /// Reports an oversized event (once) and skips to its end.
    fn overflow(&mut self) -> Result<(), Error> {
        let already = std::mem::replace(&mut self.skip_event, true);
        self.reset_event();
        if already {
            return Ok(());
        }
        Err(Error::new(
            ErrorKind::MessageTooLarge,
            format!(
                "an SSE event is larger than the maximum of {} bytes; it was skipped",
                self.max_event
            ),
        ))
    }

    /// Handles one line; `Some` when it completes an event or an error.
    fn process_line(&mut self, line: &[u8]) -> Option<Result<SseEvent, Error>> {
        if line.is_empty() {
            if std::mem::take(&mut self.skip_event) {
                self.reset_event();
                return None;
            }
            return self.dispatch().map(Ok);
        }
        if self.skip_event {
            return None;
        }
        self.size += line.len() + 1;
        if self.size > self.max_event {
            return self.overflow().err().map(Err);
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (&*line, ""),
        };
        match field {
            "" => {} // A comment.
            "event" => self.event = Some(value.to_owned()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.id = Some(value.to_owned());
                self.last_event_id = Some(value.to_owned());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let retry = value.parse().unwrap_or(u64::MAX);
                self.retry = Some(retry);
                self.block_retry = Some(retry);
            }
            _ => {} // Unknown fields are ignored.
        }
        None
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let has_data = self.has_data;
        let event = SseEvent {
            event: self.event.take(),
            data: std::mem::take(&mut self.data),
            id: self.id.take(),
            retry: self.block_retry.take(),
        };
        self.reset_event();
        has_data.then_some(event)
    }

    fn reset_event(&mut self) {
        self.data.clear();
        self.has_data = false;
        self.event = None;
        self.id = None;
        self.block_retry = None;
        self.size = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(decoder: &mut SseDecoder, input: &[u8]) -> Vec<Result<SseEvent, ErrorKind>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(event)) => out.push(Ok(event)),
                Ok(None) => break,
                Err(e) => out.push(Err(e.kind())),
            }
        }
        out
    }

    #[test]
    fn parses_fields_and_multiline_data() {
        let mut d = SseDecoder::default();
        let events = decode_all(
            &mut d,
            b"\xEF\xBB\xBF: comment\r\nid: 7\r\nevent: message\r\ndata: {\"a\":\r\ndata:1}\r\nretry: 1500\r\n\r\ndata\n\n",
        );
        assert_eq!(
            events,
            vec![
                Ok(SseEvent {
                    event: Some("message".into()),
                    data: "{\"a\":\n1}".into(),
                    id: Some("7".into()),
                    retry: Some(1500),
                }),
                Ok(SseEvent::message("")),
            ]
        );
        assert_eq!(d.last_event_id(), Some("7"));
        assert_eq!(d.retry(), Some(1500));
    }

    #[test]
    fn blocks_without_data_update_state_only() {
        let mut d = SseDecoder::default();
        // A priming event (id and empty data) dispatches; an id-only block does not.
        let events = decode_all(&mut d, b"id: a\ndata:\n\nid: b\nretry: 10\n\nretry: x\n\n");
        assert_eq!(
            events,
            vec![Ok(SseEvent {
                id: Some("a".into()),
                ..SseEvent::message("")
            })]
        );
        assert_eq!(d.last_event_id(), Some("b"));
        assert_eq!(d.retry(), Some(10));
    }

    #[test]
    fn cr_split_across_reads() {
        let mut d = SseDecoder::default();
        let mut buf = BytesMut::from(&b"data: x\r"[..]);
        assert_eq!(d.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"\n\r\n");
        assert_eq!(d.decode(&mut buf).unwrap(), Some(SseEvent::message("x")));
    }

    #[test]
    fn oversized_event_is_skipped() {
        let mut d = SseDecoder::new(16);
        let events = decode_all(
            &mut d,
            b"data: 0123456789\ndata: 0123456789\ndata: more\n\ndata: ok\n\n",
        );
        assert_eq!(
            events,
            vec![Err(ErrorKind::MessageTooLarge), Ok(SseEvent::message("ok"))]
        );
        // One huge line arriving without a line end does not grow the buffer.
        let mut d = SseDecoder::new(16);
        let mut buf = BytesMut::from(&[b'a'; 100][..]);
        assert_eq!(
            d.decode(&mut buf).unwrap_err().kind(),
            ErrorKind::MessageTooLarge
        );
        assert!(buf.is_empty());
        buf.extend_from_slice(b"aaa\ndata: y\n\ndata: z\n\n");
        assert_eq!(d.decode(&mut buf).unwrap(), Some(SseEvent::message("z")));
    }

    #[test]
    fn encode_splits_data_lines() {
        let mut out = BytesMut::new();
        let event = SseEvent {
            event: Some("message".into()),
            data: "a\r\nb\rc\nd".into(),
            id: Some("1".into()),
            retry: Some(5),
        };
        event.encode(&mut out).unwrap();
        assert_eq!(
            &out[..],
            b"id: 1\nevent: message\nretry: 5\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        let bad = SseEvent {
            id: Some("a\nb".into()),
            ..SseEvent::default()
        };
        assert!(bad.encode(&mut out).is_err());
    }
}
