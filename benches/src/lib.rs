//! Shared fixtures for the benchmarks of mcp-manager.
#![forbid(unsafe_code)]

/// A typical small `tools/call` request.
#[must_use]
pub fn small_request() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"get_weather","arguments":{"location":"New York"},"_meta":{"progressToken":"p-42"}}}"#.to_vec()
}

/// A `tools/call` response whose text content is about `size` bytes, with
/// newlines and quotes to escape, as a real tool result would have.
#[must_use]
pub fn tool_result(size: usize) -> Vec<u8> {
    let line = "The quick brown fox said \\\"hello\\\" and jumped over the lazy dog.\\n";
    let text = line.repeat(size / line.len() + 1);
    format!(
        r#"{{"jsonrpc":"2.0","id":"call-7","result":{{"content":[{{"type":"text","text":"{text}"}}],"isError":false}}}}"#
    )
    .into_bytes()
}
