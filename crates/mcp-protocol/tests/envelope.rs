//! Test vectors for the JSON-RPC envelope: what is accepted, what it reads
//! as, and what is rejected with which code and reason.

#![allow(clippy::indexing_slicing)]

use std::borrow::Cow;

use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::{BatchPolicy, ErrorKind, Message, Packet, RequestId};

/// A short description of a parsed message, for table-driven checks.
fn describe(message: &Message<'_>) -> String {
    match message {
        Message::Request(r) => format!(
            "request id={} method={} params={}",
            r.id,
            r.method,
            r.params.as_ref().map_or("-", |p| p.get())
        ),
        Message::Notification(n) => format!(
            "notification method={} params={}",
            n.method,
            n.params.as_ref().map_or("-", |p| p.get())
        ),
        Message::Response(r) => format!("response id={} result={}", r.id, r.result.get()),
        Message::Error(e) => format!(
            "error id={} code={} message={} data={}",
            e.id.as_ref().map_or("null".to_owned(), ToString::to_string),
            e.error.code,
            e.error.message,
            e.error.data.as_ref().map_or("-", |d| d.get())
        ),
    }
}

#[test]
fn accepts_valid_messages() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
            "request id=1 method=ping params=-",
        ),
        (
            r#"{"jsonrpc":"2.0","id":"a-1","method":"tools/call","params":{"name":"x","arguments":{"n":[1, 2]}}}"#,
            r#"request id="a-1" method=tools/call params={"name":"x","arguments":{"n":[1, 2]}}"#,
        ),
        (
            r#"{"method":"notifications/progress","params":{"progressToken":7,"progress":1},"jsonrpc":"2.0"}"#,
            r#"notification method=notifications/progress params={"progressToken":7,"progress":1}"#,
        ),
        (
            r#"{"jsonrpc":"2.0","id":-3,"result":{}}"#,
            "response id=-3 result={}",
        ),
        (
            r#"{"jsonrpc":"2.0","id":"x","result":{"content":[{"type":"text","text":"hi\n"}]}}"#,
            r#"response id="x" result={"content":[{"type":"text","text":"hi\n"}]}"#,
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#,
            "error id=null code=-32700 message=Parse error data=-",
        ),
        (
            // 2026-07-28 allows an error response without an id.
            r#"{"jsonrpc":"2.0","error":{"code":-32600,"message":"bad","data":{"why":[1]}}}"#,
            r#"error id=null code=-32600 message=bad data={"why":[1]}"#,
        ),
        (
            r#"{"jsonrpc":"2.0","id":9,"error":{"code":-32022,"message":"Unsupported","data":{"supported":["2026-07-28"]}}}"#,
            r#"error id=9 code=-32022 message=Unsupported data={"supported":["2026-07-28"]}"#,
        ),
        (
            // Params may be an array in JSON-RPC; unknown members are ignored.
            r#"{"jsonrpc":"2.0","id":0,"method":"m","params":[1,2],"x-extra":{"a":1}}"#,
            "request id=0 method=m params=[1,2]",
        ),
        (
            // Whitespace anywhere, and escapes in the method.
            " \n{ \"jsonrpc\" : \"2.0\" , \"id\" : \"\\u0041\" , \"method\" : \"a\\/b\" }\r\n",
            r#"request id="A" method=a/b params=-"#,
        ),
        (
            r#"{"jsonrpc":"2.0","id":9223372036854775807,"method":"big"}"#,
            "request id=9223372036854775807 method=big params=-",
        ),
    ];
    for (input, expected) in cases {
        let message =
            Message::parse(input.as_bytes()).unwrap_or_else(|e| panic!("rejected {input}: {e}"));
        assert_eq!(&describe(&message), expected, "input: {input}");
    }
}

#[test]
fn rejects_what_the_spec_forbids() {
    // (input, kind, id kept in the error, part of the reason)
    let cases: &[(&str, ErrorKind, Option<RequestId<'static>>, &str)] = &[
        ("", ErrorKind::Parse, None, "invalid JSON"),
        ("{", ErrorKind::Parse, None, "invalid JSON"),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"x"} trailing"#,
            ErrorKind::Parse,
            None,
            "trailing",
        ),
        ("\u{FEFF}{}", ErrorKind::Parse, None, "invalid JSON"),
        ("[1,", ErrorKind::Parse, None, "invalid JSON"),
        (
            "42",
            ErrorKind::InvalidRequest,
            None,
            "must be a JSON object",
        ),
        (
            r#""str""#,
            ErrorKind::InvalidRequest,
            None,
            "must be a JSON object",
        ),
        (
            "null",
            ErrorKind::InvalidRequest,
            None,
            "must be a JSON object",
        ),
        (
            "{}",
            ErrorKind::InvalidRequest,
            None,
            "`jsonrpc` is missing",
        ),
        (
            r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "exactly \"2.0\"",
        ),
        (
            r#"{"jsonrpc":2.0,"id":1,"method":"x"}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "exactly \"2.0\"",
        ),
        (
            r#"{"id":1,"method":"x"}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`jsonrpc` is missing",
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"method":"x"}"#,
            ErrorKind::InvalidRequest,
            None,
            "must not be null",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1.5,"method":"x"}"#,
            ErrorKind::InvalidRequest,
            None,
            "integer",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1e3,"method":"x"}"#,
            ErrorKind::InvalidRequest,
            None,
            "integer",
        ),
        (
            r#"{"jsonrpc":"2.0","id":true,"method":"x"}"#,
            ErrorKind::InvalidRequest,
            None,
            "string or an integer",
        ),
        (
            r#"{"jsonrpc":"2.0","id":[1],"method":"x"}"#,
            ErrorKind::InvalidRequest,
            None,
            "string or an integer",
        ),
        (
            r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#,
            ErrorKind::InvalidRequest,
            None,
            "string or an integer",
        ),
        (
            r#"{"jsonrpc":"2.0","id":99999999999999999999,"method":"x"}"#,
            ErrorKind::InvalidRequest,
            None,
            "64 bits",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":7}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`method` must be a string",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":null}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`method` must be a string",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":"p"}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`params` must be an object or an array",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"x","params":null}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`params` must be an object or an array",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "both `result` and `error`",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"x","result":{}}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "must not carry `result` or `error`",
        ),
        (
            r#"{"jsonrpc":"2.0","method":"x","error":{"code":1,"message":"m"}}"#,
            ErrorKind::InvalidRequest,
            None,
            "must not carry `result` or `error`",
        ),
        (
            r#"{"jsonrpc":"2.0","result":{}}"#,
            ErrorKind::InvalidRequest,
            None,
            "must carry an `id`",
        ),
        (
            r#"{"jsonrpc":"2.0","id":null,"result":{}}"#,
            ErrorKind::InvalidRequest,
            None,
            "null id",
        ),
        (
            r#"{"jsonrpc":"2.0","id":"r","params":{}}"#,
            ErrorKind::InvalidRequest,
            Some("r".into()),
            "without `method`",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "no `method`, `result` or `error`",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"error":"oops"}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`error` must be an object",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"error":{"message":"m"}}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`error.code` is missing",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":"1","message":"m"}}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`error.code` must be an integer",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":1}}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`error.message` is missing",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":1,"message":2}}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`error.message` must be a string",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"x"}"#,
            ErrorKind::InvalidRequest,
            Some(2.into()),
            "`id` appears more than once",
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"x","method":"y"}"#,
            ErrorKind::InvalidRequest,
            Some(1.into()),
            "`method` appears more than once",
        ),
        ("[]", ErrorKind::InvalidRequest, None, "found a batch"),
    ];
    for (input, kind, id, reason) in cases {
        let error = Message::parse(input.as_bytes())
            .map(|m| panic!("accepted {input:?} as {}", describe(&m)))
            .unwrap_err();
        assert_eq!(error.kind(), *kind, "input: {input}: {error}");
        assert_eq!(error.id(), id.as_ref(), "input: {input}");
        assert!(error.message().contains(reason), "input: {input}: {error}");
        let expected_code = match kind {
            ErrorKind::Parse => error_code::PARSE_ERROR,
            _ => error_code::INVALID_REQUEST,
        };
        assert_eq!(error.code(), expected_code);
    }
}

#[test]
fn invalid_utf8_is_a_parse_error() {
    let input = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}";
    assert_eq!(Message::parse(input).unwrap_err().kind(), ErrorKind::Parse);
}

#[test]
fn error_response_for_a_bad_request_names_it() {
    let error =
        Message::parse(br#"{"jsonrpc":"2.0","id":"q","method":"x","params":1}"#).unwrap_err();
    let response = Message::Error(error.to_response());
    assert_eq!(
        String::from_utf8(response.to_vec()).unwrap(),
        r#"{"jsonrpc":"2.0","id":"q","error":{"code":-32600,"message":"`params` must be an object or an array"}}"#
    );
    let error = Message::parse(b"{nope").unwrap_err();
    let text = String::from_utf8(Message::Error(error.to_response()).to_vec()).unwrap();
    assert!(
        text.starts_with(
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"invalid JSON: "#
        ),
        "{text}"
    );
}

#[test]
fn batches_follow_the_policy() {
    let batch =
        br#"[{"jsonrpc":"2.0","id":1,"method":"a"},{"jsonrpc":"2.0","method":"n"},{"bad":1},5]"#;
    let Packet::Batch(items) = Packet::parse(batch, BatchPolicy::Allow).unwrap() else {
        panic!("not a batch");
    };
    assert_eq!(items.len(), 4);
    assert_eq!(
        describe(items[0].as_ref().unwrap()),
        "request id=1 method=a params=-"
    );
    assert_eq!(
        describe(items[1].as_ref().unwrap()),
        "notification method=n params=-"
    );
    assert_eq!(
        items[2].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );
    assert_eq!(
        items[3].as_ref().unwrap_err().kind(),
        ErrorKind::InvalidRequest
    );

    let rejected = Packet::parse(batch, BatchPolicy::Reject).unwrap_err();
    assert_eq!(rejected.kind(), ErrorKind::InvalidRequest);
    assert!(rejected.message().contains("batches are not supported"));

    let empty = Packet::parse(b" [ ] ", BatchPolicy::Allow).unwrap_err();
    assert!(empty.message().contains("must not be empty"));

    let single = Packet::parse(
        br#"{"jsonrpc":"2.0","id":1,"result":{}}"#,
        BatchPolicy::Reject,
    )
    .unwrap();
    assert!(matches!(single, Packet::Single(Message::Response(_))));
    assert_eq!(
        Packet::parse(b"[", BatchPolicy::Allow).unwrap_err().kind(),
        ErrorKind::Parse
    );
}

#[test]
fn batch_serializes_errors_in_place() {
    let batch = br#"[{"jsonrpc":"2.0","id":1,"result":true},{"jsonrpc":"2.0","id":2}]"#;
    let packet = Packet::parse(batch, BatchPolicy::Allow).unwrap();
    assert_eq!(
        String::from_utf8(packet.to_vec()).unwrap(),
        r#"[{"jsonrpc":"2.0","id":1,"result":true},{"jsonrpc":"2.0","id":2,"error":{"code":-32600,"message":"not a JSON-RPC message: it has no `method`, `result` or `error`"}}]"#
    );
}

#[test]
fn raw_members_are_borrowed_and_re_emitted_verbatim() {
    let input = br#"{"jsonrpc":"2.0","id":"k","method":"tools/call","params":{"name":"t","arguments":{"b": 2.50, "a": "\u00e9"}}}"#;
    let message = Message::parse(input).unwrap();
    let Message::Request(request) = &message else {
        panic!()
    };
    assert!(matches!(request.method, Cow::Borrowed(_)));
    assert!(matches!(request.id, RequestId::String(Cow::Borrowed("k"))));
    assert!(request.params.as_ref().unwrap().is_borrowed());
    assert_eq!(message.to_vec(), input.to_vec());

    let owned: Message<'static> = message.clone().into_owned();
    assert_eq!(owned, message);
    assert_eq!(owned.to_vec(), input.to_vec());
}

#[test]
fn constructors_build_the_expected_json() {
    let params = mcp_protocol::raw::Raw::from_value(&serde_json::json!({"cursor": "c"}));
    let cases = [
        (
            Message::request(5, "tools/list", Some(params.clone())),
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/list","params":{"cursor":"c"}}"#,
        ),
        (
            Message::notification("notifications/initialized", None),
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ),
        (
            Message::response("r", params),
            r#"{"jsonrpc":"2.0","id":"r","result":{"cursor":"c"}}"#,
        ),
        (
            Message::error(
                None,
                mcp_protocol::ErrorObject::new(-32601, "Method not found"),
            ),
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32601,"message":"Method not found"}}"#,
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(String::from_utf8(message.to_vec()).unwrap(), expected);
        assert_eq!(Message::parse(expected.as_bytes()).unwrap(), message);
    }
}
