//! The JSON-RPC envelope parser on arbitrary bytes: never panics, and what it
//! accepts re-encodes to something it accepts again, unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_protocol::{BatchPolicy, Message, Packet};

fuzz_target!(|data: &[u8]| {
    let _ = Packet::parse(data, BatchPolicy::Allow);
    if let Ok(message) = Message::parse(data) {
        let encoded = message.to_vec();
        let again = Message::parse(&encoded).expect("re-encoded message must parse");
        assert_eq!(again, message);
    }
});
