//! The typed MCP views on arbitrary JSON: never panic, and a view that reads
//! re-serializes to JSON that reads as the same view.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_protocol::mcp::{
    CallToolParams, CompleteParams, InitializeParams, ListToolsResult, ProgressParams, View,
};
use mcp_protocol::raw::Raw;

fn check<'a, V: View<'a> + PartialEq + std::fmt::Debug>(raw: Raw<'a>) {
    if let Ok(view) = V::from_params(Some(raw)) {
        let again = V::from_params(Some(view.to_raw())).expect("re-encoded view must read");
        assert_eq!(again, view);
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(raw) = Raw::from_json(text) else { return };
    check::<CallToolParams<'_>>(raw.reborrow());
    check::<CompleteParams<'_>>(raw.reborrow());
    check::<InitializeParams<'_>>(raw.reborrow());
    check::<ProgressParams<'_>>(raw.reborrow());
    let _ = ListToolsResult::from_result(raw.reborrow());
});
