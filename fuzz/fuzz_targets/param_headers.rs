//! Arguments mirrored in headers on arbitrary input: the first line is a
//! tool's input schema, the second its arguments, each later line a
//! `NAME: VALUE` header. Reading the annotations and checking the headers
//! never panics; a refusal is always `-32020`; and the headers a client
//! writes from valid annotations always pass the check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_protocol::mcp::param_headers::{self, header_value};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.lines();
    let Some(Ok(schema)) = lines.next().map(serde_json::from_str::<Value>) else { return };
    let arguments = lines.next().and_then(|line| serde_json::from_str::<Value>(line).ok());
    let arguments = arguments.as_ref().and_then(Value::as_object);
    let sent: Vec<(&str, &str)> = lines.filter_map(|line| line.split_once(": ")).collect();
    let Ok(mirrored) = param_headers::param_headers(&schema) else { return };
    let lookup = |name: &str| {
        sent.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| *value)
    };
    if let Err(refusal) = param_headers::check(&mirrored, arguments, &lookup) {
        assert_eq!(refusal.to_error_object().code, -32020);
    }
    // What a client writes passes.
    let written: Vec<(String, String)> = mirrored
        .iter()
        .filter_map(|param| {
            let value = header_value(arguments?.get(&param.argument)?)?;
            Some((param.name(), value.into_owned()))
        })
        .collect();
    let unwritable = mirrored.iter().any(|param| {
        arguments
            .and_then(|a| a.get(&param.argument))
            .is_some_and(|v| !v.is_null() && header_value(v).is_none())
    });
    if !unwritable {
        let lookup = |name: &str| {
            written
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        };
        assert!(param_headers::check(&mirrored, arguments, &lookup).is_ok());
    }
});
