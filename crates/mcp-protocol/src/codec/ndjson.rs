//! Newline-delimited JSON, the stdio transport's framing: one message per
//! line, no embedded newlines.
//!
//! The decoder never buffers more than `max_len` bytes of one line: a longer
//! line is reported once as [`ErrorKind::MessageTooLarge`] and skipped up to
//! its newline, and decoding goes on with the next line. Blank lines are
//! skipped. A trailing `\r` is removed, so CRLF line ends work too.

use bytes::{Bytes, BytesMut};

use crate::error::{Error, ErrorKind};

/// The default maximum line length: 16 MiB.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024 * 1024;

/// Splits a byte stream into lines.
#[derive(Debug)]
pub struct LineDecoder {
    max_len: usize,
    /// How far the current buffer has been searched for a newline.
    scanned: usize,
    /// Inside a line that was too long: drop bytes up to its newline.
    discarding: bool,
    /// Lines seen so far, blank and oversized ones included; 1-based number
    /// of the last line returned or reported.
    line: u64,
}

impl Default for LineDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_LINE)
    }
}

impl LineDecoder {
    /// A decoder that refuses lines longer than `max_len` bytes (newline
    /// excluded).
    #[must_use]
    pub fn new(max_len: usize) -> Self {
        Self {
            max_len,
            scanned: 0,
            discarding: false,
            line: 0,
        }
    }

    /// The maximum line length.
    #[must_use]
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// The number of the last line returned or reported, starting at 1.
    #[must_use]
    pub fn line_number(&self) -> u64 {
        self.line
    }

    /// Takes the next complete, non-blank line out of `buf`, without its line
    /// end. `Ok(None)` means more bytes are needed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::MessageTooLarge`] once for each line over the limit; the
    /// line is skipped and the next call goes on after it.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        loop {
            let Some(offset) = memchr::memchr(b'\n', buf.get(self.scanned..).unwrap_or_default())
            else {
                return self.wait_for_more(buf);
            };
            let end = self.scanned + offset;
            self.scanned = 0;
            let mut line = buf.split_to(end + 1).freeze();
            line.truncate(end);
            if std::mem::take(&mut self.discarding) {
                // The tail of a line that was already reported.
                continue;
            }
            self.line += 1;
            if line.last() == Some(&b'\r') {
                line.truncate(line.len() - 1);
            }
            if line.len() > self.max_len {
                return Err(self.too_large());
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Ok(Some(line));
        }
    }

    /// Takes what is left in `buf` at the end of the stream: a last line with
    /// no newline. Blank leftovers are dropped.
    ///
    /// # Errors
    ///
    /// As [`LineDecoder::decode`].
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        if let Some(line) = self.decode(buf)? {
            return Ok(Some(line));
        }
        let rest = buf.split().freeze();
        self.scanned = 0;
        if std::mem::take(&mut self.discarding) || rest.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        self.line += 1;
        let rest = rest.slice(..rest.len() - usize::from(rest.last() == Some(&b'\r')));
        Ok(Some(rest))
    }

    fn wait_for_more(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, Error> {
        if self.discarding {
            buf.clear();
            self.scanned = 0;
            return Ok(None);
        }
        // One byte of slack for a '\r' that the line end will remove.
        if buf.len() > self.max_len + 1 {
            buf.clear();
            self.scanned = 0;
            self.discarding = true;
            self.line += 1;
            return Err(self.too_large());
        }
        self.scanned = buf.len();
        Ok(None)
    }

    fn too_large(&self) -> Error {
        Error::new(
            ErrorKind::MessageTooLarge,
            format!(
                "line {} is longer than the maximum message size of {} bytes; it was skipped",
                self.line, self.max_len
            ),
        )
    }
}

/// Appends `json` and a newline to `out`, turning any raw line break in it
/// into a space.
///
/// A raw CR or LF byte can only appear in valid JSON as whitespace between
/// tokens (inside strings they must be escaped), so replacing it keeps the
/// JSON equal while making the frame one line. This matters when forwarding
/// pretty-printed raw members received from an HTTP peer.
pub fn encode_line(json: &[u8], out: &mut BytesMut) {
    let start = out.len();
    out.reserve(json.len() + 1);
    out.extend_from_slice(json);
    if memchr::memchr2(b'\n', b'\r', json).is_some() {
        for byte in out.get_mut(start..).unwrap_or_default() {
            if matches!(byte, b'\n' | b'\r') {
                *byte = b' ';
            }
        }
    }
    out.extend_from_slice(b"\n");
}

/// Encodes `message` as one line into `out`.
pub fn encode_message(message: &crate::jsonrpc::Message<'_>, out: &mut BytesMut) {
    let json = message.to_vec();
    encode_line(&json, out);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(decoder: &mut LineDecoder, input: &[u8]) -> Vec<Result<String, ErrorKind>> {
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(line)) => out.push(Ok(String::from_utf8(line.to_vec()).unwrap())),
                Ok(None) => break,
                Err(e) => out.push(Err(e.kind())),
            }
        }
        if let Ok(Some(line)) = decoder.decode_eof(&mut buf) {
            out.push(Ok(String::from_utf8(line.to_vec()).unwrap()));
        }
        out
    }

    #[test]
    fn splits_lines_and_skips_blanks() {
        let mut d = LineDecoder::new(100);
        assert_eq!(
            lines(&mut d, b"{\"a\":1}\r\n\n  \n{\"b\":2}\n{\"c\":3}"),
            vec![
                Ok("{\"a\":1}".to_owned()),
                Ok("{\"b\":2}".to_owned()),
                Ok("{\"c\":3}".to_owned())
            ]
        );
        assert_eq!(d.line_number(), 5);
    }

    #[test]
    fn oversized_line_is_reported_once_and_skipped() {
        let mut d = LineDecoder::new(8);
        assert_eq!(
            lines(&mut d, b"0123456789abcdef\nok\n"),
            vec![Err(ErrorKind::MessageTooLarge), Ok("ok".to_owned())]
        );
        // Arriving in pieces, with the newline far away.
        let mut d = LineDecoder::new(4);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in [&b"abc"[..], b"defgh", b"ijk", b"lm\nxy", b"\n"] {
            buf.extend_from_slice(chunk);
            loop {
                match d.decode(&mut buf) {
                    Ok(Some(line)) => out.push(Ok(line)),
                    Ok(None) => break,
                    Err(e) => out.push(Err(e.kind())),
                }
            }
            assert!(buf.len() <= 6, "buffer grew to {}", buf.len());
        }
        assert_eq!(
            out,
            vec![
                Err(ErrorKind::MessageTooLarge),
                Ok(Bytes::from_static(b"xy"))
            ]
        );
        assert!(
            d.too_large()
                .message()
                .contains("maximum message size of 4 bytes")
        );
    }

    #[test]
    fn line_exactly_at_the_limit_passes() {
        let mut d = LineDecoder::new(4);
        assert_eq!(
            lines(&mut d, b"abcd\r\nabcde\n"),
            vec![Ok("abcd".to_owned()), Err(ErrorKind::MessageTooLarge)]
        );
    }

    #[test]
    fn encoding_flattens_line_breaks() {
        let mut out = BytesMut::new();
        encode_line(b"{\n  \"a\": \"x\\ny\"\r\n}", &mut out);
        assert_eq!(&out[..], b"{   \"a\": \"x\\ny\"  }\n");
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["a"], "x\ny");
    }
}
