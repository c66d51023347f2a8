//! The newline-delimited JSON decoder on arbitrary bytes in arbitrary chunks:
//! never panics, never returns a line over the limit, never buffers much more
//! than the limit.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use mcp_protocol::codec::ndjson::LineDecoder;

fuzz_target!(|data: &[u8]| {
    let Some((&control, input)) = data.split_first() else { return };
    let max = usize::from(control % 64) + 1;
    let chunk = usize::from(control / 64) + 1;
    let mut decoder = LineDecoder::new(max);
    let mut buf = BytesMut::new();
    for piece in input.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(line)) => assert!(line.len() <= max),
                Ok(None) => break,
                Err(_) => {}
            }
        }
        assert!(buf.len() <= max + 1);
    }
    let _ = decoder.decode_eof(&mut buf);
});
