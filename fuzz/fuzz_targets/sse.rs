//! The Server-Sent Events decoder on arbitrary bytes in arbitrary chunks:
//! never panics and never buffers much more than the maximum event size.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcp_protocol::codec::sse::SseDecoder;

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else { return };
    let max = usize::from(control % 64) + 1;
    let chunk = usize::from(control / 64) + 1;
    let mut decoder = SseDecoder::new(max);
    let mut buf = BytesMut::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(event)) => assert!(event.data.len() <= max),
                Ok(None) => break,
                Err(_) => {}
            }
        }
        assert!(buf.len() <= max + 17);
    }
});
