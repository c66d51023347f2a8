//! The 2026-07-28 request checks on arbitrary input: the first line is the
//! method, the next three the `MCP-Protocol-Version`, `Mcp-Method` and
//! `Mcp-Name` headers (an empty line for an absent one), the rest the
//! params. Never panics, and every refusal carries one of the codes and
//! statuses the checks give.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_protocol::{Message, VersionSet};
use mcp_protocol::mcp::stateless::{self, Headers};
use mcp_protocol::raw::RawObject;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.splitn(5, '\n');
    let method = lines.next().unwrap_or_default();
    let mut header = || lines.next().filter(|line| !line.is_empty());
    let headers = Headers {
        protocol_version: header(),
        method: header(),
        name: header(),
    };
    let params = lines.next().unwrap_or_default();
    let envelope = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"m","params":{params}}}"#);
    let Ok(Message::Request(request)) = Message::parse(envelope.as_bytes()) else {
        return;
    };
    let Some(Ok(object)) = request.params.map(RawObject::from_cow) else { return };
    for headers in [Some(&headers), None] {
        if let Err(refusal) = stateless::judge(method, Some(&object), headers, &VersionSet::default()) {
            let code = refusal.to_error_object().code;
            assert!([-32602, -32020, -32022, -32601].contains(&code));
            assert!([400, 404].contains(&refusal.http_status()));
        }
    }
    if let Some(value) = headers.name {
        let _ = stateless::decode_header_value(value);
    }
});
