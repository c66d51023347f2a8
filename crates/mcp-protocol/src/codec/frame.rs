//! The frame socket's binary framing: a fixed 24-byte little-endian header,
//! then the payload (one JSON-RPC message), or, for a large payload, a
//! header alone whose payload travels beside the stream (a memory-mapped
//! file passed with the frame).
//!
//! ```text
//!  0        4     5      6         8            12                   20                   28
//!  +--------+-----+------+---------+------------+--------------------+--------------------+
//!  | "MCPF" | ver | kind |  flags  |  reserved  |      id (u64)      |   length (u64)     |
//!  +--------+-----+------+---------+------------+--------------------+--------------------+
//!  then `length` bytes of payload, unless `flags` has MAPPED
//! ```
//!
//! Precisely: `magic` (4 bytes, `MCPF`), `version` (1 byte, [`VERSION`]),
//! `kind` (1 byte, [`FrameKind`]), `flags` (u16, [`flags`]), `reserved`
//! (u32, zero), `id` (u64: the message's request id when it is a
//! non-negative integer, else 0; advisory, for logs and for matching a
//! mapped payload to its frame), `length` (u64: the payload's length in
//! bytes, inline after the header or in the mapped region). All integers
//! are little-endian; the header has no alignment requirement and is read
//! in place from the buffer ([`FrameHeader::read`]), never copied.
//!
//! A header that cannot be read (bad magic, unknown version, kind or flag,
//! reserved bits set, a length past the limit) ends the stream: the framing
//! cannot be found again after it. The decoder reports it once; the caller
//! answers with an [`FrameKind::Error`] frame ([`error_frame`]) and closes.

use bytes::{Buf, Bytes, BytesMut};
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::error::{Error, ErrorKind};

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"MCPF";

/// The version of the framing this module reads and writes.
pub const VERSION: u8 = 1;

/// The header's size in bytes.
pub const HEADER_LEN: usize = 28;

/// The default largest inline payload: 16 MiB.
pub const DEFAULT_MAX_INLINE: usize = 16 * 1024 * 1024;

/// The default largest mapped payload: 4 GiB.
pub const DEFAULT_MAX_MAPPED: u64 = 4 * 1024 * 1024 * 1024;

/// The flags a header may carry.
pub mod flags {
    /// The payload is not inline: it is the content of the file descriptor
    /// sent with this frame, `length` bytes from its start.
    pub const MAPPED: u16 = 1;
    /// Every flag this version knows.
    pub const KNOWN: u16 = MAPPED;
}

/// The fixed header of a frame, as it lies in the buffer.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct FrameHeader {
    /// [`MAGIC`].
    pub magic: [u8; 4],
    /// [`VERSION`].
    pub version: u8,
    /// A [`FrameKind`].
    pub kind: u8,
    /// [`flags`].
    pub flags: U16,
    /// Zero in this version.
    pub reserved: U32,
    /// The message's request id when it is a non-negative integer, else 0.
    pub id: U64,
    /// The payload's length in bytes.
    pub length: U64,
}

const _: () = assert!(size_of::<FrameHeader>() == HEADER_LEN);

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum FrameKind {
    /// One JSON-RPC message.
    Message = 1,
    /// Why the sender is closing the stream: a JSON-RPC error object, whose
    /// `data` lists the framing versions the sender speaks.
    Error = 2,
}

impl FrameKind {
    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(Self::Message),
            2 => Some(Self::Error),
            _ => None,
        }
    }
}

impl FrameHeader {
    /// A header for a payload of `length` bytes.
    #[must_use]
    pub fn new(kind: FrameKind, flags: u16, id: u64, length: u64) -> Self {
        Self {
            magic: MAGIC,
            version: VERSION,
            kind: kind as u8,
            flags: U16::new(flags),
            reserved: U32::new(0),
            id: U64::new(id),
            length: U64::new(length),
        }
    }

    /// The header at the start of `bytes`, read in place; `None` when fewer
    /// than [`HEADER_LEN`] bytes are there.
    #[must_use]
    pub fn read(bytes: &[u8]) -> Option<&Self> {
        Self::ref_from_prefix(bytes).ok().map(|(header, _)| header)
    }

    /// The header as the bytes that go on the wire.
    #[must_use]
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut bytes = [0; HEADER_LEN];
        bytes.copy_from_slice(self.as_bytes());
        bytes
    }

    /// Whether the payload is mapped, not inline.
    #[must_use]
    pub fn is_mapped(&self) -> bool {
        self.flags.get() & flags::MAPPED != 0
    }
}

/// A frame's payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The payload's bytes, taken from the stream's buffer without a copy.
    Inline(Bytes),
    /// The payload is the first `length` bytes of the file descriptor that
    /// came with the frame.
    Mapped {
        /// Its length in bytes.
        length: u64,
    },
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// What it carries.
    pub kind: FrameKind,
    /// The advisory request id of its header.
    pub id: u64,
    /// Its payload.
    pub payload: Payload,
}

/// Splits a byte stream into frames.
#[derive(Debug)]
pub struct FrameDecoder {
    max_inline: usize,
    max_mapped: u64,
    /// Set once a header could not be read: nothing more is decoded.
    broken: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_INLINE, DEFAULT_MAX_MAPPED)
    }
}

impl FrameDecoder {
    /// A decoder that refuses inline payloads over `max_inline` bytes and
    /// mapped ones over `max_mapped` (all of them when it is 0).
    #[must_use]
    pub fn new(max_inline: usize, max_mapped: u64) -> Self {
        Self {
            max_inline,
            max_mapped,
            broken: false,
        }
    }

    /// Takes the next complete frame out of `buf`; `Ok(None)` means more
    /// bytes are needed.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidFrame`] for a header that cannot be read, or
    /// [`ErrorKind::MessageTooLarge`] for a length past the limit. The
    /// stream is then unusable: every later call fails the same way.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if self.broken {
            return Err(invalid("the stream's framing was already lost"));
        }
        let Some(header) = FrameHeader::read(buf) else {
            // Check what is there already: a stream of garbage is refused
            // as soon as its first bytes show it, not after 28 of them.
            if !MAGIC.starts_with(buf.get(..buf.len().min(MAGIC.len())).unwrap_or_default()) {
                return Err(self.fail(bad_magic()));
            }
            return Ok(None);
        };
        let (kind, flags, id, length) = match self.check(header) {
            Ok(checked) => checked,
            Err(error) => return Err(self.fail(error)),
        };
        if flags & flags::MAPPED != 0 {
            buf.advance(HEADER_LEN);
            return Ok(Some(Frame {
                kind,
                id,
                payload: Payload::Mapped { length },
            }));
        }
        // `check` kept an inline length within `max_inline`, a usize.
        let length = usize::try_from(length).unwrap_or(usize::MAX);
        if buf.len() - HEADER_LEN < length {
            buf.reserve(HEADER_LEN + length - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        let payload = buf.split_to(length).freeze();
        Ok(Some(Frame {
            kind,
            id,
            payload: Payload::Inline(payload),
        }))
    }

    /// At the end of the stream: fails if a frame was cut short.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidFrame`] when `buf` holds part of a frame.
    pub fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        if buf.is_empty() {
            return Ok(None);
        }
        let what = if buf.len() < HEADER_LEN {
            "header"
        } else {
            "payload"
        };
        let error = invalid(format!(
            "the stream ended within a frame's {what} ({} bytes of it arrived)",
            buf.len()
        ));
        buf.clear();
        Err(self.fail(error))
    }

    fn check(&self, header: &FrameHeader) -> Result<(FrameKind, u16, u64, u64), Error> {
        if header.magic != MAGIC {
            return Err(bad_magic());
        }
        if header.version != VERSION {
            return Err(unsupported_version(header.version));
        }
        let kind = FrameKind::from_byte(header.kind)
            .ok_or_else(|| invalid(format!("unknown frame kind {}", header.kind)))?;
        let flags = header.flags.get();
        if flags & !flags::KNOWN != 0 {
            return Err(invalid(format!("unknown frame flags {flags:#06x}")));
        }
        if header.reserved.get() != 0 {
            return Err(invalid("the frame header's reserved bytes are not zero"));
        }
        let length = header.length.get();
        if flags & flags::MAPPED != 0 && self.max_mapped == 0 {
            return Err(invalid(
                "mapped payloads are not accepted on this stream; send the message inline",
            ));
        }
        let (limit, how) = if flags & flags::MAPPED != 0 {
            (self.max_mapped, "mapped")
        } else {
            (u64::try_from(self.max_inline).unwrap_or(u64::MAX), "inline")
        };
        if length > limit {
            return Err(Error::new(
                ErrorKind::MessageTooLarge,
                format!("a frame's {how} payload of {length} bytes is over the limit of {limit}"),
            ));
        }
        Ok((kind, flags, header.id.get(), length))
    }

    fn fail(&mut self, error: Error) -> Error {
        self.broken = true;
        error
    }
}

fn invalid(message: impl Into<std::borrow::Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidFrame, message)
}

fn bad_magic() -> Error {
    invalid("not a frame: the stream does not start with the magic `MCPF`")
}

fn unsupported_version(version: u8) -> Error {
    invalid(format!(
        "frame version {version} is not supported; this peer speaks version {VERSION}"
    ))
}

/// Appends a frame with an inline `payload` to `buf`.
///
/// # Panics
///
/// Never: a payload longer than `u64::MAX` bytes cannot exist.
pub fn encode(kind: FrameKind, id: u64, payload: &[u8], buf: &mut BytesMut) {
    let length = u64::try_from(payload.len()).unwrap_or(u64::MAX);
    buf.reserve(HEADER_LEN + payload.len());
    buf.extend_from_slice(FrameHeader::new(kind, 0, id, length).as_bytes());
    buf.extend_from_slice(payload);
}

/// Appends `message` to `out` as one inline [`FrameKind::Message`] frame,
/// its JSON written straight after the header: no copy of the message.
pub fn encode_message(message: &crate::Message<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    out.reserve(HEADER_LEN + message.size_hint());
    out.extend_from_slice(&[0; HEADER_LEN]);
    message.write_to(out);
    let length = u64::try_from(out.len() - start - HEADER_LEN).unwrap_or(u64::MAX);
    let header = FrameHeader::new(FrameKind::Message, 0, message_header_id(message), length);
    if let Some(slot) = out.get_mut(start..start + HEADER_LEN) {
        slot.copy_from_slice(header.as_bytes());
    }
}

/// The header of a frame whose payload of `length` bytes is mapped.
#[must_use]
pub fn mapped_header(kind: FrameKind, id: u64, length: u64) -> [u8; HEADER_LEN] {
    FrameHeader::new(kind, flags::MAPPED, id, length).to_bytes()
}

/// The [`FrameKind::Error`] frame that tells the peer why the stream is
/// closing: a JSON-RPC error object for `error`, its `data` naming the
/// framing versions this side speaks.
#[must_use]
pub fn error_frame(error: &Error) -> BytesMut {
    let payload = serde_json::json!({
        "code": error.kind().code(),
        "message": error.message(),
        "data": {"frameVersions": [VERSION]},
    });
    let payload = serde_json::to_vec(&payload).unwrap_or_default();
    let mut buf = BytesMut::new();
    encode(FrameKind::Error, 0, &payload, &mut buf);
    buf
}

/// The header id of `message`: its request id when that is a non-negative
/// integer, else 0.
#[must_use]
pub fn message_header_id(message: &crate::Message<'_>) -> u64 {
    match message {
        crate::Message::Request(request) => header_id(Some(&request.id)),
        crate::Message::Response(response) => header_id(Some(&response.id)),
        crate::Message::Error(error) => header_id(error.id.as_ref()),
        crate::Message::Notification(_) => 0,
    }
}

/// The header id for a message whose request id is `id`: the id when it
/// is a non-negative integer, else 0.
#[must_use]
pub fn header_id(id: Option<&crate::RequestId<'_>>) -> u64 {
    match id {
        Some(crate::RequestId::Number(n)) => u64::try_from(*n).unwrap_or(0),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use proptest::prelude::*;

    use super::*;

    fn frame(kind: FrameKind, id: u64, payload: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        encode(kind, id, payload, &mut buf);
        buf
    }

    #[test]
    fn the_header_is_read_in_place_as_laid_out() {
        let buf = frame(FrameKind::Message, 0x0102_0304_0506_0708, b"{}");
        assert_eq!(&buf[..4], b"MCPF");
        assert_eq!(buf[4], VERSION);
        assert_eq!(buf[5], 1);
        assert_eq!(&buf[6..8], &[0, 0]);
        assert_eq!(&buf[8..12], &[0, 0, 0, 0]);
        assert_eq!(&buf[12..20], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(&buf[20..28], &[2, 0, 0, 0, 0, 0, 0, 0]);
        let header = FrameHeader::read(&buf).unwrap();
        // Read where it lies: the same address as the buffer's first byte.
        assert_eq!(std::ptr::from_ref(header).cast::<u8>(), buf.as_ptr());
        assert_eq!(header.length.get(), 2);
        // And at an odd address too: the header needs no alignment.
        let mut odd = BytesMut::from(&b"x"[..]);
        odd.extend_from_slice(&buf);
        assert_eq!(FrameHeader::read(&odd[1..]), Some(header));
    }

    #[test]
    fn frames_come_whole_however_the_bytes_arrive() {
        let mut stream = frame(
            FrameKind::Message,
            1,
            br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        );
        stream.extend_from_slice(&mapped_header(FrameKind::Message, 2, 1 << 20));
        stream.extend_from_slice(&frame(FrameKind::Message, 0, b""));
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for byte in stream {
            buf.extend_from_slice(&[byte]);
            while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0].id, 1);
        assert!(matches!(&frames[0].payload, Payload::Inline(p) if p.starts_with(b"{\"jsonrpc\"")));
        assert_eq!(frames[1].payload, Payload::Mapped { length: 1 << 20 });
        assert_eq!(frames[2].payload, Payload::Inline(Bytes::new()));
        assert!(decoder.decode_eof(&mut buf).unwrap().is_none());
    }

    #[test]
    fn bad_headers_end_the_stream_with_a_reason() {
        let good = frame(FrameKind::Message, 0, b"{}");
        // (byte, its spoilt value, what the error says)
        let cases = [
            (0, b'X', "magic"),
            (
                4,
                9,
                "frame version 9 is not supported; this peer speaks version 1",
            ),
            (5, 7, "unknown frame kind 7"),
            (6, 4, "unknown frame flags 0x0004"),
            (9, 1, "reserved"),
            (27, 1, "over the limit"),
        ];
        for (at, value, expected) in cases {
            let mut buf = good.clone();
            buf[at] = value;
            let mut decoder = FrameDecoder::default();
            let error = decoder.decode(&mut buf).unwrap_err();
            assert!(error.message().contains(expected), "{error}");
            // Nothing more is read from a stream whose framing is lost.
            assert!(decoder.decode(&mut good.clone()).is_err());
        }
        // Garbage is refused from its first byte.
        let mut decoder = FrameDecoder::default();
        assert!(decoder.decode(&mut BytesMut::from(&b"{"[..])).is_err());
    }

    #[test]
    fn limits_hold_for_inline_and_mapped_payloads() {
        let mut decoder = FrameDecoder::new(4, 8);
        assert!(
            decoder
                .decode(&mut frame(FrameKind::Message, 0, b"1234"))
                .unwrap()
                .is_some()
        );
        let error = decoder
            .decode(&mut frame(FrameKind::Message, 0, b"12345"))
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::MessageTooLarge);
        let mut decoder = FrameDecoder::new(4, 8);
        let mut mapped = BytesMut::from(&mapped_header(FrameKind::Message, 0, 9)[..]);
        let error = decoder.decode(&mut mapped).unwrap_err();
        assert!(
            error.message().contains("mapped payload of 9 bytes"),
            "{error}"
        );
        let mut decoder = FrameDecoder::new(4, 0);
        let mut mapped = BytesMut::from(&mapped_header(FrameKind::Message, 0, 1)[..]);
        let error = decoder.decode(&mut mapped).unwrap_err();
        assert!(error.message().contains("not accepted"), "{error}");
    }

    #[test]
    fn a_stream_cut_within_a_frame_says_where() {
        let whole = frame(FrameKind::Message, 0, b"{\"a\":1}");
        for (cut, what) in [(10, "header"), (30, "payload")] {
            let mut buf = BytesMut::from(&whole[..cut]);
            let mut decoder = FrameDecoder::default();
            assert!(decoder.decode(&mut buf).unwrap().is_none());
            let error = decoder.decode_eof(&mut buf).unwrap_err();
            assert!(error.message().contains(what), "{error}");
        }
    }

    #[test]
    fn the_error_frame_names_the_versions_spoken() {
        let mut buf = error_frame(&unsupported_version(3));
        let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.kind, FrameKind::Error);
        let Payload::Inline(payload) = frame.payload else {
            panic!("inline");
        };
        let error: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(error["code"], -32600);
        assert_eq!(error["data"]["frameVersions"], serde_json::json!([1]));
        assert!(error["message"].as_str().unwrap().contains("version 3"));
    }

    #[test]
    fn a_message_is_framed_with_its_id_and_parses_back() {
        let message = crate::Message::request(42, "tools/list", None);
        let mut out = b"before".to_vec();
        encode_message(&message, &mut out);
        let mut buf = BytesMut::from(&out[6..]);
        let frame = FrameDecoder::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(frame.id, 42);
        let Payload::Inline(payload) = frame.payload else {
            panic!("inline");
        };
        assert_eq!(crate::Message::parse(&payload).unwrap(), message);
        assert!(buf.is_empty());
    }

    #[test]
    fn header_ids_come_from_integer_request_ids() {
        use crate::RequestId;
        assert_eq!(header_id(Some(&RequestId::Number(7))), 7);
        assert_eq!(header_id(Some(&RequestId::Number(-7))), 0);
        assert_eq!(header_id(Some(&RequestId::String("7".into()))), 0);
        assert_eq!(header_id(None), 0);
    }

    proptest! {
        #[test]
        fn frames_round_trip(
            frames in proptest::collection::vec(
                (any::<bool>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..300), 0u64..1 << 40),
                0..8,
            ),
            chunk in 1usize..64,
        ) {
            let mut stream = BytesMut::new();
            for (mapped, id, payload, length) in &frames {
                if *mapped {
                    stream.extend_from_slice(&mapped_header(FrameKind::Message, *id, *length));
                } else {
                    encode(FrameKind::Message, *id, payload, &mut stream);
                }
            }
            let mut decoder = FrameDecoder::new(300, 1 << 40);
            let mut buf = BytesMut::new();
            let mut decoded = Vec::new();
            for piece in stream.chunks(chunk) {
                buf.extend_from_slice(piece);
                while let Some(frame) = decoder.decode(&mut buf).unwrap() {
                    decoded.push(frame);
                }
            }
            prop_assert!(decoder.decode_eof(&mut buf).unwrap().is_none());
            prop_assert_eq!(decoded.len(), frames.len());
            for (frame, (mapped, id, payload, length)) in decoded.iter().zip(&frames) {
                prop_assert_eq!(frame.id, *id);
                let expected = if *mapped {
                    Payload::Mapped { length: *length }
                } else {
                    Payload::Inline(Bytes::copy_from_slice(payload))
                };
                prop_assert_eq!(&frame.payload, &expected);
            }
        }

        #[test]
        fn garbage_never_panics_and_never_yields_more_than_it_was_given(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut decoder = FrameDecoder::new(64, 1 << 20);
            let mut buf = BytesMut::from(&bytes[..]);
            let mut taken = 0usize;
            while let Ok(Some(frame)) = decoder.decode(&mut buf) {
                taken += HEADER_LEN;
                if let Payload::Inline(payload) = frame.payload {
                    prop_assert!(payload.len() <= 64);
                    taken += payload.len();
                }
            }
            prop_assert!(taken <= bytes.len());
        }
    }
}
