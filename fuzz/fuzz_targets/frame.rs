//! The binary frame decoder on arbitrary bytes in arbitrary chunks: never
//! panics, never returns an inline payload over the limit or a mapped one
//! over its limit, never takes more bytes than it was given, and once it
//! reports a broken stream it stays broken.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcp_protocol::codec::frame::{FrameDecoder, HEADER_LEN, Payload};

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else { return };
    let max_inline = usize::from(control % 64);
    let max_mapped = u64::from(control) * 1024;
    let chunk = usize::from(control / 64) + 1;
    let mut decoder = FrameDecoder::new(max_inline, max_mapped);
    let mut buf = BytesMut::new();
    let mut given = 0usize;
    let mut taken = 0usize;
    let mut broken = false;
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        given += piece.len();
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(!broken, "a frame after the stream broke");
                    taken += HEADER_LEN;
                    match frame.payload {
                        Payload::Inline(payload) => {
                            assert!(payload.len() <= max_inline);
                            taken += payload.len();
                        }
                        Payload::Mapped { length } => assert!(length <= max_mapped),
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    broken = true;
                    break;
                }
            }
        }
        assert!(taken + buf.len() <= given);
    }
    if decoder.decode_eof(&mut buf).is_err() {
        assert!(decoder.decode(&mut buf).is_err());
    }
});
