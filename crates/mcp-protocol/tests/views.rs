//! Typed views: what they read, what they refuse, and that rewriting one
//! member passes every other member through unchanged.

#![allow(clippy::indexing_slicing)]

use std::borrow::Cow;

use mcp_protocol::mcp::{
    CallToolParams, CancelledParams, CompleteParams, CompletionTarget, DiscoverResult,
    InitializeParams, InitializeResult, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, LoggingLevel, LoggingMessageParams, ProgressParams,
    RequestParams, ResourceRequestParams, SetLevelParams, SubscriptionsListenParams, View,
};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorKind, Message, RequestId};

fn params_of<'m>(message: &'m Message<'_>) -> Option<Raw<'m>> {
    match message {
        Message::Request(r) => r.params.as_ref().map(Raw::reborrow),
        Message::Notification(n) => n.params.as_ref().map(Raw::reborrow),
        _ => None,
    }
}

#[test]
fn call_tool_rename_keeps_the_rest_verbatim() {
    let wire = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"github__search","arguments":{"q":"x", "n": 1.50},"task":{"ttl":5},"_meta":{"progressToken":"t1","traceparent":"00-abc-def-01"}}}"#;
    let message = Message::parse(wire).unwrap();
    let mut params = CallToolParams::from_params(params_of(&message)).unwrap();
    assert_eq!(params.name, "github__search");
    assert!(matches!(params.name, Cow::Borrowed(_)));
    assert_eq!(
        params.arguments.as_ref().unwrap().get(),
        r#"{"q":"x", "n": 1.50}"#
    );
    let meta = params.meta.as_ref().unwrap();
    assert_eq!(meta.progress_token, Some(RequestId::from("t1")));
    assert_eq!(meta.traceparent().as_deref(), Some("00-abc-def-01"));

    params.name = Cow::Borrowed("search");
    assert_eq!(
        params.to_raw().get(),
        r#"{"name":"search","arguments":{"q":"x", "n": 1.50},"_meta":{"progressToken":"t1","traceparent":"00-abc-def-01"},"task":{"ttl":5}}"#
    );
}

#[test]
fn stateless_meta_is_read() {
    let params = Raw::from_json(
        r#"{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}},"io.modelcontextprotocol/clientInfo":{"name":"c","version":"1"},"io.modelcontextprotocol/logLevel":"warning"}}"#,
    )
    .unwrap();
    let meta = RequestParams::from_params(Some(params))
        .unwrap()
        .meta
        .unwrap();
    assert_eq!(meta.protocol_version.as_deref(), Some("2026-07-28"));
    assert!(meta.client_capabilities.unwrap().elicitation.is_some());
    assert_eq!(meta.client_info.unwrap().name, "c");
    assert_eq!(meta.log_level, Some(LoggingLevel::Warning));
}

#[test]
fn initialize_round_trip() {
    let params = Raw::from_json(
        r#"{"protocolVersion":"2025-06-18","capabilities":{"roots":{"listChanged":true},"sampling":{}},"clientInfo":{"name":"inspector","version":"0.1","title":"Inspector"}}"#,
    )
    .unwrap();
    let init = InitializeParams::from_params(Some(params)).unwrap();
    assert_eq!(init.protocol_version, "2025-06-18");
    assert_eq!(
        init.capabilities.roots.as_ref().unwrap().list_changed,
        Some(true)
    );
    assert_eq!(init.client_info.title.as_deref(), Some("Inspector"));
    let again = InitializeParams::from_params(Some(init.to_raw())).unwrap();
    assert_eq!(again, init);

    let result = Raw::from_json(
        r#"{"protocolVersion":"2025-06-18","capabilities":{"tools":{"listChanged":true},"resources":{"subscribe":true},"logging":{}},"serverInfo":{"name":"s","version":"2"},"instructions":"be nice"}"#,
    )
    .unwrap();
    let result = InitializeResult::from_result(result).unwrap();
    assert_eq!(result.capabilities.resources.unwrap().subscribe, Some(true));
    assert!(result.capabilities.logging.is_some());
    assert_eq!(result.instructions.as_deref(), Some("be nice"));
}

#[test]
fn list_results_expose_keys_for_aggregation() {
    let tools = Raw::from_json(
        r#"{"tools":[{"name":"a","inputSchema":{"type":"object"},"annotations":{"readOnlyHint":true}},{"name":"b","inputSchema":{}}],"nextCursor":"n2","ttlMs":5}"#,
    )
    .unwrap();
    let tools = ListToolsResult::from_result(tools).unwrap();
    assert_eq!(tools.tools.len(), 2);
    assert!(tools.tools[0].annotations().is_safe_to_retry());
    assert!(!tools.tools[1].annotations().is_safe_to_retry());
    assert_eq!(tools.next_cursor.as_deref(), Some("n2"));
    assert_eq!(tools.rest.get("ttlMs").unwrap().get(), "5");

    let resources =
        Raw::from_json(r#"{"resources":[{"uri":"test://a","name":"A","mimeType":"text/plain"}]}"#)
            .unwrap();
    let resources = ListResourcesResult::from_result(resources).unwrap();
    assert_eq!(resources.resources[0].uri, "test://a");
    let templates =
        Raw::from_json(r#"{"resourceTemplates":[{"uriTemplate":"test://{id}","name":"T"}]}"#)
            .unwrap();
    let templates = ListResourceTemplatesResult::from_result(templates).unwrap();
    assert_eq!(templates.resource_templates[0].uri_template, "test://{id}");
    let prompts =
        Raw::from_json(r#"{"prompts":[{"name":"p","arguments":[{"name":"x"}]}]}"#).unwrap();
    assert_eq!(
        ListPromptsResult::from_result(prompts).unwrap().prompts[0].name,
        "p"
    );
}

#[test]
fn discover_result() {
    let result = Raw::from_json(
        r#"{"resultType":"complete","supportedVersions":["2026-07-28"],"capabilities":{"tools":{}},"_meta":{"io.modelcontextprotocol/serverInfo":{"name":"S","version":"1"}},"ttlMs":3600000,"cacheScope":"public"}"#,
    )
    .unwrap();
    let discover = DiscoverResult::from_result(result).unwrap();
    assert_eq!(discover.supported_versions, ["2026-07-28"]);
    assert_eq!(discover.ttl_ms, Some(3_600_000));
    assert_eq!(discover.meta.unwrap().server_info.unwrap().name, "S");
}

#[test]
fn completion_targets() {
    let prompt = Raw::from_json(
        r#"{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","value":"x"}}"#,
    )
    .unwrap();
    let prompt = CompleteParams::from_params(Some(prompt)).unwrap();
    assert_eq!(
        prompt.reference.target(),
        Some(CompletionTarget::Prompt("p"))
    );
    let resource = Raw::from_json(r#"{"ref":{"type":"ref/resource","uri":"test://{id}"},"argument":{"name":"id","value":"1"}}"#).unwrap();
    let resource = CompleteParams::from_params(Some(resource)).unwrap();
    assert_eq!(
        resource.reference.target(),
        Some(CompletionTarget::ResourceTemplate("test://{id}"))
    );
    let odd = Raw::from_json(r#"{"ref":{"type":"ref/other"},"argument":{}}"#).unwrap();
    assert_eq!(
        CompleteParams::from_params(Some(odd))
            .unwrap()
            .reference
            .target(),
        None
    );
}

#[test]
fn notifications() {
    let progress =
        Raw::from_json(r#"{"progressToken":5,"progress":0.5,"total":1,"message":"half"}"#).unwrap();
    let progress = ProgressParams::from_params(Some(progress)).unwrap();
    assert_eq!(progress.progress_token, RequestId::Number(5));
    assert_eq!((progress.progress, progress.total), (0.5, Some(1.0)));
    let cancelled = Raw::from_json(r#"{"requestId":"r9","reason":"user"}"#).unwrap();
    let cancelled = CancelledParams::from_params(Some(cancelled)).unwrap();
    assert_eq!(cancelled.request_id, Some(RequestId::from("r9")));
    let log = Raw::from_json(r#"{"level":"error","logger":"db","data":{"e":1}}"#).unwrap();
    let log = LoggingMessageParams::from_params(Some(log)).unwrap();
    assert_eq!(
        (log.level, log.data.get()),
        (LoggingLevel::Error, r#"{"e":1}"#)
    );
    let level =
        SetLevelParams::from_params(Some(Raw::from_json(r#"{"level":"debug"}"#).unwrap())).unwrap();
    assert_eq!(level.level, LoggingLevel::Debug);
    let listen = Raw::from_json(
        r#"{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["a://b"]}}"#,
    )
    .unwrap();
    let listen = SubscriptionsListenParams::from_params(Some(listen)).unwrap();
    assert_eq!(listen.notifications.tools_list_changed, Some(true));
}

#[test]
fn owned_input_reads_as_owned_views() {
    let owned = Raw::from_json(r#"{"uri":"file:///x"}"#).unwrap();
    let view = ResourceRequestParams::from_params(Some(owned)).unwrap();
    assert!(matches!(view.uri, Cow::Owned(_)));
    assert_eq!(view.uri, "file:///x");
}

#[test]
fn errors_name_the_member_at_fault() {
    let cases: &[(&str, &str)] = &[
        ("{}", "`name` is missing"),
        (r#"{"name":3}"#, "`name` must be a string"),
        (r#"{"name":"x","_meta":[]}"#, "`_meta` must be an object"),
        (
            r#"{"name":"x","_meta":{"progressToken":1.5}}"#,
            "`_meta` has a member that `progressToken` must be a string or an integer",
        ),
        ("[1]", "`params` must be an object"),
    ];
    for (input, reason) in cases {
        let error = CallToolParams::from_params(Some(Raw::from_json(input).unwrap())).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidParams);
        assert_eq!(error.code(), -32602);
        assert!(error.message().contains(reason), "{input}: {error}");
    }
    assert!(
        CallToolParams::from_params(None)
            .unwrap_err()
            .message()
            .contains("`name` is missing")
    );
    let error = ListToolsResult::from_result(
        Raw::from_json(r#"{"tools":[{"name":"a"},{"title":"b"}]}"#).unwrap(),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidResult);
    assert!(
        error
            .message()
            .contains("`tools` item 1 has a member that `name` is missing"),
        "{error}"
    );
    let error = ProgressParams::from_params(Some(
        Raw::from_json(r#"{"progressToken":"t","progress":"x"}"#).unwrap(),
    ))
    .unwrap_err();
    assert!(
        error.message().contains("`progress` must be a number"),
        "{error}"
    );
}
