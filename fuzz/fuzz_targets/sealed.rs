//! Sealed texts as clients send them back (session ids, `requestState`s):
//! opening any text never panics, a text the key did not seal never opens
//! (a forgery would have to guess a 128-bit tag), and whatever is sealed
//! opens as it was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_runtime::seal::{ClusterKey, Seal};

fuzz_target!(|data: &[u8]| {
    let seal = Seal::new(Some(&ClusterKey([7; 32])));
    if let Ok(text) = std::str::from_utf8(data) {
        assert!(seal.open("purpose", text).is_none());
    }
    let sealed = seal.seal("purpose", data).expect("sealed");
    assert_eq!(seal.open("purpose", &sealed).as_deref(), Some(data));
    assert!(seal.open("another purpose", &sealed).is_none());
});
