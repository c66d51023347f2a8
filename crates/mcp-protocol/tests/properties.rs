//! Property tests: encode/decode round-trips, and no panic on any input.

#![allow(clippy::indexing_slicing)]

use bytes::BytesMut;
use mcp_protocol::codec::ndjson::{LineDecoder, encode_line, encode_message};
use mcp_protocol::codec::sse::{SseDecoder, SseEvent};
use mcp_protocol::mcp::stateless;
use mcp_protocol::mcp::{
    CallToolParams, CompleteParams, ListToolsResult, ProgressParams, RequestParams, View,
};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{BatchPolicy, ErrorObject, Message, Packet, RequestId, VersionSet};
use proptest::prelude::*;
use serde_json::{Value, json};

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(".{0,8}", json_value(), 0..6)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn request_id() -> impl Strategy<Value = RequestId<'static>> {
    prop_oneof![
        any::<i64>().prop_map(RequestId::Number),
        ".{0,16}".prop_map(RequestId::from),
    ]
}

fn message() -> impl Strategy<Value = Message<'static>> {
    let params = prop::option::of(prop_oneof![
        json_object(),
        prop::collection::vec(json_value(), 0..4).prop_map(Value::Array)
    ]);
    prop_oneof![
        (request_id(), ".{0,24}", params.clone()).prop_map(|(id, method, params)| {
            Message::request(id, method, params.map(|p| Raw::from_value(&p)))
        }),
        (".{0,24}", params).prop_map(|(method, params)| {
            Message::notification(method, params.map(|p| Raw::from_value(&p)))
        }),
        (request_id(), json_value())
            .prop_map(|(id, result)| Message::response(id, Raw::from_value(&result))),
        (
            prop::option::of(request_id()),
            any::<i64>(),
            ".{0,24}",
            prop::option::of(json_value())
        )
            .prop_map(|(id, code, text, data)| {
                let mut error = ErrorObject::new(code, text);
                error.data = data.map(|d| Raw::from_value(&d));
                Message::error(id, error)
            }),
    ]
}

/// Splits `bytes` into chunks at the given cut points.
fn chunks(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        out.push(bytes[start..p].to_vec());
        start = p;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn messages_round_trip(message in message()) {
        let bytes = message.to_vec();
        let parsed = Message::parse(&bytes).unwrap();
        prop_assert_eq!(&parsed, &message);
        prop_assert_eq!(parsed.to_vec(), bytes);
    }

    #[test]
    fn batches_round_trip(messages in prop::collection::vec(message(), 1..5)) {
        let packet = Packet::Batch(messages.into_iter().map(Ok).collect());
        let bytes = packet.to_vec();
        prop_assert_eq!(Packet::parse(&bytes, BatchPolicy::Allow).unwrap(), packet);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = Packet::parse(&bytes, BatchPolicy::Allow);
        let _ = Message::parse(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics_and_errors_carry_codes(value in json_value(), member in json_value()) {
        // Put arbitrary values in the envelope's members to reach deep paths.
        for key in ["jsonrpc", "id", "method", "params", "result", "error"] {
            let mut object = json!({"jsonrpc": "2.0", "id": 1, "method": "m"});
            object[key] = member.clone();
            let bytes = serde_json::to_vec(&object).unwrap();
            if let Err(e) = Message::parse(&bytes) {
                prop_assert!(e.code() == -32600 || e.code() == -32700);
            }
        }
        let bytes = serde_json::to_vec(&value).unwrap();
        let _ = Packet::parse(&bytes, BatchPolicy::Allow);
    }

    #[test]
    fn views_never_panic(value in json_value()) {
        let raw = Raw::from_value(&value);
        let _ = CallToolParams::from_params(Some(raw.clone()));
        let _ = CompleteParams::from_params(Some(raw.clone()));
        let _ = ProgressParams::from_params(Some(raw.clone()));
        let _ = RequestParams::from_params(Some(raw.clone()));
        let _ = ListToolsResult::from_result(raw);
    }

    #[test]
    fn tool_lists_round_trip(names in prop::collection::vec("[a-z_]{1,10}", 0..5), extra in json_object()) {
        let tools: Vec<Value> = names
            .iter()
            .map(|n| json!({"name": n, "inputSchema": {"type": "object"}, "x": extra}))
            .collect();
        let result = json!({"tools": tools, "nextCursor": "c"});
        let raw = Raw::from_value(&result);
        let view = ListToolsResult::from_result(raw.clone()).unwrap();
        let names_read: Vec<&str> = view.tools.iter().map(|t| &*t.name).collect();
        prop_assert_eq!(&names_read, &names.iter().map(String::as_str).collect::<Vec<_>>());
        let back: Value = serde_json::from_str(view.to_raw().get()).unwrap();
        prop_assert_eq!(back, result);
    }

    #[test]
    fn ndjson_round_trips_in_any_chunking(
        messages in prop::collection::vec(message(), 0..6),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let mut wire = BytesMut::new();
        for m in &messages {
            encode_message(m, &mut wire);
        }
        let mut decoder = LineDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for chunk in chunks(&wire, &cuts) {
            buf.extend_from_slice(&chunk);
            while let Some(line) = decoder.decode(&mut buf).unwrap() {
                decoded.push(Message::parse(&line).unwrap().into_owned());
            }
        }
        prop_assert_eq!(decoder.decode_eof(&mut buf).unwrap(), None);
        prop_assert_eq!(decoded, messages);
    }

    #[test]
    fn ndjson_never_panics_and_stays_bounded(
        bytes in prop::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), any::<u8>()], 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        max in 1usize..32,
    ) {
        let mut decoder = LineDecoder::new(max);
        let mut buf = BytesMut::new();
        for chunk in chunks(&bytes, &cuts) {
            buf.extend_from_slice(&chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(line)) => prop_assert!(line.len() <= max),
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
            prop_assert!(buf.len() <= max + 1);
        }
        let _ = decoder.decode_eof(&mut buf);
    }

    #[test]
    fn ndjson_lines_survive_pretty_printing(value in json_value()) {
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        let mut wire = BytesMut::new();
        encode_line(&pretty, &mut wire);
        prop_assert_eq!(wire.iter().filter(|b| **b == b'\n').count(), 1);
        let back: Value = serde_json::from_slice(&wire).unwrap();
        prop_assert_eq!(back, value);
    }

    #[test]
    fn sse_round_trips_in_any_chunking(
        events in prop::collection::vec(
            (prop::option::of("[^\r\n]{0,8}"), "[^\r]{0,40}", prop::option::of("[^\r\n\0]{0,8}"), prop::option::of(any::<u64>())),
            0..6,
        ),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        let events: Vec<SseEvent> = events
            .into_iter()
            .map(|(event, data, id, retry)| SseEvent { event, data, id, retry })
            .collect();
        let mut wire = BytesMut::new();
        for e in &events {
            e.encode(&mut wire).unwrap();
        }
        let mut decoder = SseDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut decoded = Vec::new();
        for chunk in chunks(&wire, &cuts) {
            buf.extend_from_slice(&chunk);
            while let Some(event) = decoder.decode(&mut buf).unwrap() {
                decoded.push(event);
            }
        }
        prop_assert_eq!(decoded, events.clone());
        let last_id = events.iter().rev().find_map(|e| e.id.clone());
        prop_assert_eq!(decoder.last_event_id().map(str::to_owned), last_id);
    }

    #[test]
    fn sse_never_panics_and_stays_bounded(
        bytes in prop::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b':'), any::<u8>()], 0..300),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
        max in 1usize..64,
    ) {
        let mut decoder = SseDecoder::new(max);
        let mut buf = BytesMut::new();
        for chunk in chunks(&bytes, &cuts) {
            buf.extend_from_slice(&chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(event)) => prop_assert!(event.data.len() <= max),
                    Ok(None) => break,
                    Err(_) => {}
                }
            }
            prop_assert!(buf.len() <= max + 17);
        }
    }
}

/// A stateless request's params with the envelope, and `member` set to
/// `name` when the method names something.
fn stateless_params(method: &str, name: &str) -> Value {
    let mut params = json!({"_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }});
    if let Some(member) = stateless::name_member(method) {
        params[member] = json!(name);
    }
    params
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn header_values_round_trip(value in ".{0,24}") {
        let encoded = stateless::encode_header_value(&value);
        prop_assert!(encoded.bytes().all(|b| (0x20..0x7f).contains(&b)));
        let decoded = stateless::decode_header_value(encoded.trim()).map(|d| d.into_owned());
        prop_assert_eq!(decoded, Some(value));
    }

    #[test]
    fn headers_mirrored_as_a_client_sends_them_pass(
        method in prop_oneof![Just("tools/call"), Just("prompts/get"), Just("resources/read"), Just("tools/list"), Just("server/discover")],
        name in ".{1,16}",
    ) {
        let params = stateless_params(method, &name);
        let object = RawObject::from_cow(Raw::from_value(&params)).unwrap();
        let encoded = stateless::encode_header_value(&name);
        let headers = stateless::Headers {
            protocol_version: Some("2026-07-28"),
            method: Some(method),
            name: stateless::name_member(method).map(|_| &*encoded),
        };
        let judged = stateless::judge(method, Some(&object), Some(&headers), &VersionSet::default());
        prop_assert!(matches!(judged, Ok(stateless::Generation::Stateless { .. })), "{:?}", judged);
        // Any other name in the header is a mismatch.
        if stateless::name_member(method).is_some() {
            let other = format!("{name}x");
            let wrong = stateless::Headers { name: Some(&other), ..headers };
            let judged = stateless::judge(method, Some(&object), Some(&wrong), &VersionSet::default());
            prop_assert!(matches!(judged, Err(stateless::Refusal::HeaderMismatch(_))));
        }
    }

    #[test]
    fn judging_never_panics(
        params in json_value(),
        method in prop_oneof![Just("tools/call".to_owned()), Just("initialize".to_owned()), ".{0,12}"],
        version in prop::option::of(".{0,12}"),
        method_header in prop::option::of(".{0,12}"),
        name_header in prop::option::of(".{0,12}"),
    ) {
        let raw = Raw::from_value(&params);
        let text = raw.get().to_owned();
        let Ok(object) = RawObject::from_cow(raw) else { return Ok(()); };
        let headers = stateless::Headers {
            protocol_version: version.as_deref(),
            method: method_header.as_deref(),
            name: name_header.as_deref(),
        };
        let judged = stateless::judge(&method, Some(&object), Some(&headers), &VersionSet::default());
        // The cheap filter rules out only what the checks leave alone.
        if !stateless::may_be_stateless(&method, Some(&text), version.as_deref()) {
            prop_assert!(matches!(judged, Ok(stateless::Generation::Stateful)), "{:?}", judged);
        }
        if let Err(refusal) = judged {
            let error = refusal.to_error_object();
            prop_assert!([-32602, -32020, -32022, -32601].contains(&error.code));
            prop_assert!([400, 404].contains(&refusal.http_status()));
        }
    }
}
