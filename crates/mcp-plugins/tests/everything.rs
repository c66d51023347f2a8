//! The `everything` reference server, driven through the real runtime over
//! the in-process transport, in a stateful (2025-11-25) session and in
//! stateless (2026-07-28) mode.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::Duration;

use mcp_core::ServerId;
use mcp_plugins::builtin::EverythingServer;
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, ProtocolVersion};
use mcp_runtime::transport::inprocess::InProcessConnector;
use mcp_runtime::{
    CallOptions, ListKind, McpRuntime, ServerEvent, ServerHandle, ServerSpec, UpstreamProtocol,
};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

const RED_PIXEL: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/// A running server and the runtime's notifications.
struct Fixture {
    _runtime: McpRuntime,
    handle: ServerHandle,
    events: broadcast::Receiver<ServerEvent>,
    /// The listen streams the test opened: a notification tagged with any
    /// other (the runtime's own listen stream's) is not looked at.
    listens: Vec<Value>,
}

async fn start(protocol: UpstreamProtocol) -> Fixture {
    let runtime = McpRuntime::start();
    let events = runtime.subscribe();
    let connector = InProcessConnector::new("everything", Arc::new(EverythingServer::new()));
    let mut spec = ServerSpec::new(ServerId::new("everything").unwrap(), Arc::new(connector));
    spec.protocol = protocol;
    let handle = mcp_runtime::Server::new(runtime.clone(), spec)
        .deploy()
        .await
        .unwrap()
        .into_handle();
    Fixture {
        _runtime: runtime,
        handle,
        events,
        listens: Vec::new(),
    }
}

async fn stateful() -> Fixture {
    start(UpstreamProtocol::Stateful).await
}

async fn stateless() -> Fixture {
    start(UpstreamProtocol::Stateless).await
}

fn params(value: Value) -> Option<Raw<'static>> {
    match value {
        Value::Null => None,
        value => Some(Raw::from_value(&value)),
    }
}

impl Fixture {
    async fn try_request(&self, method: &str, value: Value) -> Result<Value, ErrorObject<'static>> {
        self.handle
            .request(method.to_owned(), params(value), CallOptions::default())
            .await
            .map(|raw| serde_json::from_str(raw.get()).unwrap())
            .map_err(|e| e.rpc_error().cloned().unwrap_or_else(|| panic!("{e}")))
    }

    async fn request(&self, method: &str, value: Value) -> Value {
        self.try_request(method, value)
            .await
            .unwrap_or_else(|e| panic!("{method}: {e:?}"))
    }

    async fn error(&self, method: &str, value: Value) -> ErrorObject<'static> {
        match self.try_request(method, value).await {
            Ok(result) => panic!("{method} answered {result}"),
            Err(error) => error,
        }
    }

    async fn call(&self, name: &str, arguments: Value) -> Value {
        self.request(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        )
        .await
    }

    /// Whether the test looks at `notification`: one with `method` that
    /// is not tagged with a listen stream the test did not open.
    fn looks_at(&self, notification: &mcp_protocol::Notification<'_>, method: &str) -> bool {
        let params: Value = notification
            .params
            .as_ref()
            .map_or(Value::Null, |p| serde_json::from_str(p.get()).unwrap());
        let tag = &params["_meta"]["io.modelcontextprotocol/subscriptionId"];
        // A stream's acknowledgement names the stream being opened.
        let opening = method == "notifications/subscriptions/acknowledged";
        notification.method == method && (opening || tag.is_null() || self.listens.contains(tag))
    }

    /// The next notification with `method`, skipping others.
    async fn next(&mut self, method: &str) -> Value {
        let wait = async {
            loop {
                let event = self.events.recv().await.unwrap();
                if self.looks_at(&event.notification, method) {
                    let params = event.notification.params.unwrap();
                    return serde_json::from_str::<Value>(params.get()).unwrap();
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .unwrap_or_else(|_| panic!("no {method} notification"))
    }

    /// Fails if a notification with `method` comes within a short while.
    async fn none(&mut self, method: &str) {
        let wait = async {
            loop {
                let event = self.events.recv().await.unwrap();
                if self.looks_at(&event.notification, method) {
                    return event;
                }
            }
        };
        if let Ok(event) = tokio::time::timeout(Duration::from_millis(300), wait).await {
            panic!("unexpected {:?}", event.notification);
        }
    }
}

fn text(result: &Value) -> &str {
    result["content"][0]["text"].as_str().unwrap()
}

fn assert_error(error: &ErrorObject<'static>, code: i64, message: &str) {
    assert_eq!((error.code, &*error.message), (code, message));
}

fn data(error: &ErrorObject<'static>) -> Value {
    serde_json::from_str(error.data.as_ref().unwrap().get()).unwrap()
}

const EVERY_TOOL: [&str; 36] = [
    "test_simple_text",
    "test_image_content",
    "test_audio_content",
    "test_embedded_resource",
    "test_multiple_content_types",
    "test_tool_with_logging",
    "test_logging_tool",
    "test_tool_with_progress",
    "test_error_handling",
    "test_sampling",
    "test_elicitation",
    "test_elicitation_sep1034_defaults",
    "test_elicitation_sep1330_enums",
    "test_missing_capability",
    "test_streaming_elicitation",
    "test_input_required_result_elicitation",
    "test_input_required_result_sampling",
    "test_input_required_result_list_roots",
    "test_input_required_result_request_state",
    "test_input_required_result_multiple_inputs",
    "test_input_required_result_multi_round",
    "test_input_required_result_tampered_state",
    "test_input_required_result_capabilities",
    "test_trigger_tool_change",
    "test_trigger_prompt_change",
    "test_trigger_resource_list_change",
    "test_trigger_resource_update",
    "json_schema_2020_12_tool",
    "test_header_mirroring",
    "greet",
    "slow_compute",
    "failing_job",
    "protocol_error_job",
    "confirm_delete",
    "multi_input",
    "test_tool_with_task",
];

fn names(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item[field].as_str().unwrap().to_owned())
        .collect()
}

// ---------------------------------------------------------------------------
// Stateful (2025-11-25)

#[tokio::test]
async fn initialize_negotiates_and_offers_everything() {
    let fixture = stateful().await;
    let session = fixture.handle.session().unwrap();
    assert_eq!(session.protocol_version, ProtocolVersion::V2025_11_25);
    assert_eq!(session.server_info.name, "everything");
    let capabilities = serde_json::to_value(&session.capabilities).unwrap();
    assert_eq!(
        capabilities,
        json!({
            "tools": { "listChanged": true },
            "resources": { "subscribe": true, "listChanged": true },
            "prompts": { "listChanged": true },
            "logging": {},
            "completions": {},
        })
    );
    assert!(session.instructions.is_some());
    // An older version is answered with itself, an unknown one with the
    // newest stateful version.
    let init = |version: &str| {
        json!({
            "protocolVersion": version,
            "capabilities": {},
            "clientInfo": { "name": "test", "version": "1" },
        })
    };
    let old = fixture.request("initialize", init("2025-06-18")).await;
    assert_eq!(old["protocolVersion"], "2025-06-18");
    let unknown = fixture.request("initialize", init("1999-01-01")).await;
    assert_eq!(unknown["protocolVersion"], "2025-11-25");
    assert!(unknown.get("resultType").is_none());
    let bad = fixture
        .error("initialize", json!({ "capabilities": {} }))
        .await;
    assert_eq!(bad.code, -32602);
    assert!(bad.message.contains("protocolVersion"), "{}", bad.message);
}

#[tokio::test]
async fn ping_answers_empty() {
    let fixture = stateful().await;
    assert_eq!(fixture.request("ping", Value::Null).await, json!({}));
}

#[tokio::test]
async fn tools_are_listed_in_a_fixed_order_with_schemas() {
    let fixture = stateful().await;
    let list = fixture.request("tools/list", json!({})).await;
    assert_eq!(names(&list, "tools", "name"), EVERY_TOOL);
    for tool in list["tools"].as_array().unwrap() {
        assert!(tool["description"].is_string(), "{tool}");
        assert_eq!(tool["inputSchema"]["type"], "object", "{tool}");
    }
    assert_eq!(fixture.request("tools/list", json!({})).await, list);
    let sampling = &list["tools"][9];
    assert_eq!(sampling["inputSchema"]["required"], json!(["prompt"]));
    let schema = &list["tools"][27]["inputSchema"];
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["$defs"]["address"]["$anchor"], "addressDef");
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["allOf"][0]["anyOf"].is_array());
    assert!(schema["if"].is_object() && schema["then"].is_object() && schema["else"].is_object());
    // The runtime reads the same list.
    let all = fixture.handle.list_all(ListKind::Tools).await.unwrap();
    assert_eq!(all.len(), EVERY_TOOL.len());
}

#[tokio::test]
async fn content_tools_answer_exactly() {
    let fixture = stateful().await;
    assert_eq!(
        fixture.call("test_simple_text", json!({})).await,
        json!({ "content": [{ "type": "text", "text": "This is a simple text response for testing." }] })
    );
    assert_eq!(
        fixture.call("test_image_content", json!({})).await,
        json!({ "content": [{ "type": "image", "data": RED_PIXEL, "mimeType": "image/png" }] })
    );
    let audio = fixture.call("test_audio_content", json!({})).await;
    assert_eq!(audio["content"][0]["type"], "audio");
    assert_eq!(audio["content"][0]["mimeType"], "audio/wav");
    assert!(
        audio["content"][0]["data"]
            .as_str()
            .unwrap()
            .starts_with("UklGR")
    );
    assert_eq!(
        fixture.call("test_embedded_resource", json!({})).await,
        json!({ "content": [{
            "type": "resource",
            "resource": {
                "uri": "test://embedded-resource",
                "mimeType": "text/plain",
                "text": "This is an embedded resource content.",
            },
        }] })
    );
    assert_eq!(
        fixture.call("test_multiple_content_types", json!({})).await,
        json!({ "content": [
            { "type": "text", "text": "Multiple content types test:" },
            { "type": "image", "data": RED_PIXEL, "mimeType": "image/png" },
            { "type": "resource", "resource": {
                "uri": "test://mixed-content-resource",
                "mimeType": "application/json",
                "text": "{\"test\":\"data\",\"value\":123}",
            } },
        ] })
    );
    // `arguments` may be left out.
    let bare = fixture
        .request("tools/call", json!({ "name": "test_simple_text" }))
        .await;
    assert_eq!(text(&bare), "This is a simple text response for testing.");
    let echo = fixture
        .call("json_schema_2020_12_tool", json!({ "name": "Ada" }))
        .await;
    assert_eq!(text(&echo), r#"Received arguments: {"name":"Ada"}"#);
}

#[tokio::test]
async fn the_error_tool_reports_is_error() {
    let fixture = stateful().await;
    assert_eq!(
        fixture.call("test_error_handling", json!({})).await,
        json!({
            "content": [{ "type": "text", "text": "This tool intentionally returns an error for testing" }],
            "isError": true,
        })
    );
}

async fn progress_of(fixture: &Fixture) -> Vec<Value> {
    let (sink, mut progress) = mpsc::channel(16);
    let options = CallOptions {
        progress: Some(sink),
        ..CallOptions::default()
    };
    let body = json!({
        "name": "test_tool_with_progress",
        "arguments": {},
        "_meta": { "progressToken": "progress-test-1" },
    });
    let result = fixture
        .handle
        .request("tools/call", params(body), options)
        .await
        .unwrap();
    let result: Value = serde_json::from_str(result.get()).unwrap();
    assert_eq!(text(&result), "Tool with progress executed successfully");
    let mut seen = Vec::new();
    while let Ok(notification) = progress.try_recv() {
        assert_eq!(notification.method, "notifications/progress");
        seen.push(serde_json::from_str(notification.params.unwrap().get()).unwrap());
    }
    seen
}

#[tokio::test]
async fn progress_goes_to_the_request_token() {
    let fixture = stateful().await;
    let seen = progress_of(&fixture).await;
    let expected: Vec<Value> = [0, 50, 100]
        .into_iter()
        .map(|p| {
            json!({
                "progressToken": "progress-test-1",
                "progress": p,
                "total": 100,
                "message": format!("{p}% done"),
            })
        })
        .collect();
    assert_eq!(seen, expected);
    // Without a token the tool still runs.
    let plain = fixture.call("test_tool_with_progress", json!({})).await;
    assert_eq!(text(&plain), "Tool with progress executed successfully");
}

#[tokio::test]
async fn log_messages_follow_the_level_set() {
    let mut fixture = stateful().await;
    // No level set: no log messages.
    fixture.call("test_tool_with_logging", json!({})).await;
    fixture.none("notifications/message").await;
    assert_eq!(
        fixture
            .request("logging/setLevel", json!({ "level": "info" }))
            .await,
        json!({})
    );
    let result = fixture.call("test_tool_with_logging", json!({})).await;
    assert!(text(&result).starts_with("Tool with logging executed successfully"));
    for message in [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ] {
        assert_eq!(
            fixture.next("notifications/message").await,
            json!({ "level": "info", "logger": "everything", "data": message })
        );
    }
    fixture
        .request("logging/setLevel", json!({ "level": "error" }))
        .await;
    fixture.call("test_logging_tool", json!({})).await;
    fixture.none("notifications/message").await;
    let bad = fixture
        .error("logging/setLevel", json!({ "level": "loud" }))
        .await;
    assert_eq!(bad.code, -32602);
}

#[tokio::test]
async fn a_tool_added_after_start_is_announced() {
    let mut fixture = stateful().await;
    let added = fixture.call("test_trigger_tool_change", json!({})).await;
    assert_eq!(text(&added), "Added test_dynamic_tool");
    assert_eq!(
        fixture.next("notifications/tools/list_changed").await,
        json!({})
    );
    let list = fixture.request("tools/list", json!({})).await;
    let listed = names(&list, "tools", "name");
    assert_eq!(listed.last().unwrap(), "test_dynamic_tool");
    assert_eq!(listed.len(), EVERY_TOOL.len() + 1);
    let all = fixture.handle.list_all(ListKind::Tools).await.unwrap();
    assert_eq!(all.len(), EVERY_TOOL.len() + 1);
    let called = fixture.call("test_dynamic_tool", json!({})).await;
    assert_eq!(
        text(&called),
        "This tool was added by test_trigger_tool_change."
    );
    let removed = fixture.call("test_trigger_tool_change", json!({})).await;
    assert_eq!(text(&removed), "Removed test_dynamic_tool");
    fixture.next("notifications/tools/list_changed").await;
    let gone = fixture
        .error("tools/call", json!({ "name": "test_dynamic_tool" }))
        .await;
    assert_error(
        &gone,
        -32602,
        "Invalid params: Unknown tool: test_dynamic_tool",
    );
}

#[tokio::test]
async fn prompt_and_resource_list_changes_are_announced() {
    let mut fixture = stateful().await;
    fixture.call("test_trigger_prompt_change", json!({})).await;
    fixture.next("notifications/prompts/list_changed").await;
    let prompts = fixture.request("prompts/list", json!({})).await;
    assert_eq!(
        names(&prompts, "prompts", "name").last().unwrap(),
        "test_dynamic_prompt"
    );
    let got = fixture
        .request("prompts/get", json!({ "name": "test_dynamic_prompt" }))
        .await;
    assert_eq!(
        got["messages"][0]["content"]["text"],
        "This prompt was added by test_trigger_prompt_change."
    );
    fixture
        .call("test_trigger_resource_list_change", json!({}))
        .await;
    fixture.next("notifications/resources/list_changed").await;
    let resources = fixture.request("resources/list", json!({})).await;
    assert_eq!(
        names(&resources, "resources", "uri").last().unwrap(),
        "test://dynamic-resource"
    );
    let read = fixture
        .request(
            "resources/read",
            json!({ "uri": "test://dynamic-resource" }),
        )
        .await;
    assert_eq!(read["contents"][0]["mimeType"], "text/plain");
    fixture
        .call("test_trigger_resource_list_change", json!({}))
        .await;
    fixture.next("notifications/resources/list_changed").await;
    let gone = fixture
        .error(
            "resources/read",
            json!({ "uri": "test://dynamic-resource" }),
        )
        .await;
    assert_eq!(gone.code, -32002);
}

#[tokio::test]
async fn subscribers_hear_of_updates_until_they_unsubscribe() {
    let mut fixture = stateful().await;
    let uri = "test://watched-resource";
    let before = fixture
        .request("resources/read", json!({ "uri": uri }))
        .await;
    assert_eq!(
        before["contents"][0]["text"],
        "Watched resource, revision 0."
    );
    // Not subscribed: no notification.
    fixture
        .call("test_trigger_resource_update", json!({}))
        .await;
    fixture.none("notifications/resources/updated").await;
    assert_eq!(
        fixture
            .request("resources/subscribe", json!({ "uri": uri }))
            .await,
        json!({})
    );
    let updated = fixture
        .call("test_trigger_resource_update", json!({}))
        .await;
    assert_eq!(text(&updated), "Updated test://watched-resource");
    assert_eq!(
        fixture.next("notifications/resources/updated").await,
        json!({ "uri": uri })
    );
    let after = fixture
        .request("resources/read", json!({ "uri": uri }))
        .await;
    assert_eq!(
        after["contents"][0]["text"],
        "Watched resource, revision 2."
    );
    assert_eq!(
        fixture
            .request("resources/unsubscribe", json!({ "uri": uri }))
            .await,
        json!({})
    );
    fixture
        .call("test_trigger_resource_update", json!({}))
        .await;
    fixture.none("notifications/resources/updated").await;
    // Other resources can be subscribed to and updated too.
    let other = "test://template/7/data";
    fixture
        .request("resources/subscribe", json!({ "uri": other }))
        .await;
    fixture
        .call("test_trigger_resource_update", json!({ "uri": other }))
        .await;
    assert_eq!(
        fixture.next("notifications/resources/updated").await,
        json!({ "uri": other })
    );
    let missing = fixture
        .error("resources/subscribe", json!({ "uri": "test://nope" }))
        .await;
    assert_eq!(missing.code, -32002);
    let failed = fixture
        .call(
            "test_trigger_resource_update",
            json!({ "uri": "test://nope" }),
        )
        .await;
    assert_eq!(failed["isError"], true);
}

#[tokio::test]
async fn resources_read_exactly() {
    let fixture = stateful().await;
    let list = fixture.request("resources/list", json!({})).await;
    assert_eq!(
        names(&list, "resources", "uri"),
        [
            "test://static-text",
            "test://static-binary",
            "test://watched-resource"
        ]
    );
    for resource in list["resources"].as_array().unwrap() {
        assert!(resource["name"].is_string() && resource["description"].is_string());
        assert!(resource["mimeType"].is_string());
    }
    assert_eq!(
        fixture
            .request("resources/read", json!({ "uri": "test://static-text" }))
            .await,
        json!({ "contents": [{
            "uri": "test://static-text",
            "mimeType": "text/plain",
            "text": "This is the content of the static text resource.",
        }] })
    );
    assert_eq!(
        fixture
            .request("resources/read", json!({ "uri": "test://static-binary" }))
            .await,
        json!({ "contents": [{ "uri": "test://static-binary", "mimeType": "image/png", "blob": RED_PIXEL }] })
    );
    let templates = fixture.request("resources/templates/list", json!({})).await;
    assert_eq!(
        templates["resourceTemplates"][0]["uriTemplate"],
        "test://template/{id}/data"
    );
    assert_eq!(templates["resourceTemplates"][0]["name"], "template");
    assert_eq!(
        fixture
            .request(
                "resources/read",
                json!({ "uri": "test://template/123/data" })
            )
            .await,
        json!({ "contents": [{
            "uri": "test://template/123/data",
            "mimeType": "application/json",
            "text": "{\"id\":\"123\",\"templateTest\":true,\"data\":\"Data for ID: 123\"}",
        }] })
    );
    let quoted = fixture
        .request(
            "resources/read",
            json!({ "uri": "test://template/a\"b/data" }),
        )
        .await;
    let parsed: Value =
        serde_json::from_str(quoted["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(parsed["id"], "a\"b");
    for uri in [
        "test://nonexistent-resource-for-conformance-testing",
        "test://template//data",
        "test://template/1/2/data",
    ] {
        let error = fixture.error("resources/read", json!({ "uri": uri })).await;
        assert_eq!(error.code, -32002, "{uri}");
        assert_eq!(error.message, "Resource not found");
        assert_eq!(data(&error), json!({ "uri": uri }));
    }
    let no_uri = fixture.error("resources/read", json!({})).await;
    assert_eq!(no_uri.code, -32602);
}

#[tokio::test]
async fn prompts_render_exactly() {
    let fixture = stateful().await;
    let list = fixture.request("prompts/list", json!({})).await;
    assert_eq!(
        names(&list, "prompts", "name"),
        [
            "test_simple_prompt",
            "test_prompt_with_arguments",
            "test_prompt_with_embedded_resource",
            "test_prompt_with_image",
            "test_input_required_result_prompt",
        ]
    );
    assert_eq!(
        list["prompts"][1]["arguments"],
        json!([
            { "name": "arg1", "description": "First test argument", "required": true },
            { "name": "arg2", "description": "Second test argument", "required": true },
        ])
    );
    let simple = fixture
        .request("prompts/get", json!({ "name": "test_simple_prompt" }))
        .await;
    assert_eq!(
        simple["messages"],
        json!([{ "role": "user", "content": { "type": "text", "text": "This is a simple prompt for testing." } }])
    );
    let with_args = fixture
        .request(
            "prompts/get",
            json!({ "name": "test_prompt_with_arguments", "arguments": { "arg1": "hello", "arg2": "world" } }),
        )
        .await;
    assert_eq!(
        with_args["messages"],
        json!([{ "role": "user", "content": {
            "type": "text",
            "text": "Prompt with arguments: arg1='hello', arg2='world'",
        } }])
    );
    let embedded = fixture
        .request(
            "prompts/get",
            json!({ "name": "test_prompt_with_embedded_resource", "arguments": { "resourceUri": "test://example-resource" } }),
        )
        .await;
    assert_eq!(
        embedded["messages"],
        json!([
            { "role": "user", "content": { "type": "resource", "resource": {
                "uri": "test://example-resource",
                "mimeType": "text/plain",
                "text": "Embedded resource content for testing.",
            } } },
            { "role": "user", "content": { "type": "text", "text": "Please process the embedded resource above." } },
        ])
    );
    let image = fixture
        .request("prompts/get", json!({ "name": "test_prompt_with_image" }))
        .await;
    assert_eq!(
        image["messages"],
        json!([
            { "role": "user", "content": { "type": "image", "data": RED_PIXEL, "mimeType": "image/png" } },
            { "role": "user", "content": { "type": "text", "text": "Please analyze the image above." } },
        ])
    );
    let missing = fixture
        .error(
            "prompts/get",
            json!({ "name": "test_prompt_with_arguments", "arguments": { "arg1": "x" } }),
        )
        .await;
    assert_eq!(missing.code, -32602);
    assert!(missing.message.contains("arg2"), "{}", missing.message);
    let not_string = fixture
        .error(
            "prompts/get",
            json!({ "name": "test_prompt_with_arguments", "arguments": { "arg1": 1, "arg2": "y" } }),
        )
        .await;
    assert_eq!(not_string.code, -32602);
    let unknown = fixture
        .error("prompts/get", json!({ "name": "no_such_prompt" }))
        .await;
    assert_error(
        &unknown,
        -32602,
        "Invalid params: Unknown prompt: no_such_prompt",
    );
}

#[tokio::test]
async fn completion_filters_by_prefix() {
    let fixture = stateful().await;
    let complete = |reference: Value, name: &str, value: &str| json!({ "ref": reference, "argument": { "name": name, "value": value } });
    let prompt = json!({ "type": "ref/prompt", "name": "test_prompt_with_arguments" });
    assert_eq!(
        fixture
            .request(
                "completion/complete",
                complete(prompt.clone(), "arg1", "test")
            )
            .await,
        json!({ "completion": { "values": ["test", "testing", "tested"], "total": 3, "hasMore": false } })
    );
    let upper = fixture
        .request(
            "completion/complete",
            complete(prompt.clone(), "arg2", "HEL"),
        )
        .await;
    assert_eq!(upper["completion"]["values"], json!(["hello", "help"]));
    let other = fixture
        .request("completion/complete", complete(prompt.clone(), "arg9", ""))
        .await;
    assert_eq!(other["completion"]["values"], json!([]));
    let template = json!({ "type": "ref/resource", "uri": "test://template/{id}/data" });
    let ids = fixture
        .request("completion/complete", complete(template, "id", "1"))
        .await;
    assert_eq!(ids["completion"]["values"], json!(["1", "123"]));
    let simple = json!({ "type": "ref/prompt", "name": "test_simple_prompt" });
    let none = fixture
        .request("completion/complete", complete(simple, "x", ""))
        .await;
    assert_eq!(none["completion"]["values"], json!([]));
    let unknown = json!({ "type": "ref/prompt", "name": "nope" });
    let error = fixture
        .error("completion/complete", complete(unknown, "x", ""))
        .await;
    assert_eq!(error.code, -32602);
    let bad_ref = json!({ "type": "ref/other" });
    let error = fixture
        .error("completion/complete", complete(bad_ref, "x", ""))
        .await;
    assert_eq!(error.code, -32602);
    let bad_argument = fixture
        .error(
            "completion/complete",
            json!({ "ref": prompt, "argument": { "name": "arg1" } }),
        )
        .await;
    assert_eq!(bad_argument.code, -32602);
}

#[tokio::test]
async fn bad_requests_get_precise_errors() {
    let fixture = stateful().await;
    let unknown = fixture.error("tools/frobnicate", json!({})).await;
    assert_error(&unknown, -32601, "Method not found: tools/frobnicate");
    let tool = fixture
        .error("tools/call", json!({ "name": "no_such_tool" }))
        .await;
    assert_error(&tool, -32602, "Invalid params: Unknown tool: no_such_tool");
    let no_name = fixture.error("tools/call", json!({})).await;
    assert_eq!(no_name.code, -32602);
    assert!(no_name.message.contains("`name`"), "{}", no_name.message);
    let arguments = fixture
        .error(
            "tools/call",
            json!({ "name": "test_simple_text", "arguments": [1] }),
        )
        .await;
    assert_eq!(arguments.code, -32602);
    let array_params = fixture.error("tools/list", json!([1])).await;
    assert_eq!(array_params.code, -32602);
    let cursor = fixture
        .error("tools/list", json!({ "cursor": "next" }))
        .await;
    assert_eq!(cursor.code, -32602);
    // A missing tool argument is the tool's error, not the protocol's.
    let missing = fixture.call("test_sampling", json!({})).await;
    assert_eq!(missing["isError"], true);
    assert!(text(&missing).contains("`prompt`"));
    // 2026-07-28 methods need 2026-07-28 `_meta`.
    let discover = fixture.error("server/discover", Value::Null).await;
    assert_eq!(discover.code, -32602);
    let listen = fixture
        .error("subscriptions/listen", json!({ "notifications": {} }))
        .await;
    assert_eq!(listen.code, -32602);
    // Tasks are not offered.
    let tasks = fixture.error("tasks/list", json!({})).await;
    assert_eq!(tasks.code, -32601);
}

/// A client that answers every elicitation with a name or a colour, by the
/// message it is asked, and records what it was asked.
#[derive(Default)]
struct Answering(std::sync::Mutex<Vec<String>>);

impl mcp_core::Peer for Answering {
    fn notify(&self, _: mcp_protocol::Notification<'static>) -> mcp_core::BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    fn request(
        &self,
        method: &str,
        params: Option<Raw<'static>>,
    ) -> mcp_core::BoxFuture<'_, mcp_core::HandlerResult> {
        let params: Value = serde_json::from_str(params.unwrap().get()).unwrap();
        let message = params["message"].as_str().unwrap_or_default().to_owned();
        self.0.lock().unwrap().push(format!("{method}: {message}"));
        let content = if message.contains("color") {
            json!({"color": "teal"})
        } else {
            json!({"name": "Ada"})
        };
        let answer = json!({"action": "accept", "content": content});
        Box::pin(async move { Ok(Raw::from_value(&answer)) })
    }
}

#[tokio::test]
async fn stateful_sessions_ask_the_caller_that_can_be_asked() {
    let fixture = stateful().await;
    // A caller that gave nobody to ask gets the runtime's refusal.
    let error = fixture
        .error(
            "tools/call",
            json!({ "name": "test_elicitation", "arguments": { "message": "Who?" } }),
        )
        .await;
    assert_eq!(error.code, -32601);
    assert!(error.message.contains("no client to go to"), "{error:?}");

    // One that did is asked, round after round, and the answers count.
    let client = Arc::new(Answering::default());
    let options = CallOptions {
        requester: Some(mcp_core::RequestContext::new(client.clone())),
        ..CallOptions::default()
    };
    let result = fixture
        .handle
        .request(
            "tools/call".to_owned(),
            params(json!({ "name": "test_input_required_result_multi_round" })),
            options,
        )
        .await
        .unwrap();
    let result: Value = serde_json::from_str(result.get()).unwrap();
    assert_eq!(text(&result), "Ada's favorite color is teal.");
    assert_eq!(
        *client.0.lock().unwrap(),
        [
            "elicitation/create: Step 1: What is your name?",
            "elicitation/create: Step 2: What is your favorite color?"
        ]
    );
}

// ---------------------------------------------------------------------------
// Stateless (2026-07-28)

const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";

/// `_meta` with the given client capabilities (the runtime adds the rest).
fn with_capabilities(capabilities: Value) -> Value {
    json!({ CLIENT_CAPABILITIES: capabilities })
}

fn all_capabilities() -> Value {
    with_capabilities(
        json!({ "sampling": {}, "elicitation": {}, "roots": { "listChanged": true } }),
    )
}

impl Fixture {
    /// A `tools/call` that declares every client capability.
    async fn ask(&self, name: &str, extra: Value) -> Value {
        let mut params = json!({ "name": name, "arguments": {}, "_meta": all_capabilities() });
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.request("tools/call", params).await
    }

    async fn ask_error(&self, name: &str, extra: Value) -> ErrorObject<'static> {
        let mut params = json!({ "name": name, "arguments": {}, "_meta": all_capabilities() });
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.error("tools/call", params).await
    }
}

fn accept(content: Value) -> Value {
    json!({ "action": "accept", "content": content })
}

fn sampled(text: &str) -> Value {
    json!({
        "role": "assistant",
        "content": { "type": "text", "text": text },
        "model": "test-model",
        "stopReason": "endTurn",
    })
}

fn roots() -> Value {
    json!({ "roots": [{ "uri": "file:///test/root", "name": "Test Root" }] })
}

#[tokio::test]
async fn discover_describes_the_server() {
    let fixture = stateless().await;
    let session = fixture.handle.session().unwrap();
    assert_eq!(session.protocol_version, ProtocolVersion::V2026_07_28);
    assert_eq!(session.server_info.name, "everything");
    assert!(session.capabilities.tools.is_some());
    let discover = fixture.request("server/discover", json!({})).await;
    assert_eq!(discover["resultType"], "complete");
    assert_eq!(discover["cacheScope"], "public");
    assert!(discover["ttlMs"].as_u64().is_some());
    assert_eq!(
        discover["supportedVersions"],
        json!([
            "2024-11-05",
            "2025-03-26",
            "2025-06-18",
            "2025-11-25",
            "2026-07-28"
        ])
    );
    assert_eq!(discover["capabilities"]["tools"]["listChanged"], true);
    assert_eq!(discover["capabilities"]["prompts"]["listChanged"], true);
    assert_eq!(
        discover["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "everything"
    );
}

#[tokio::test]
async fn stateless_requests_must_carry_their_meta() {
    // A stateful handle adds no `_meta`, so the probes go out as written.
    let fixture = stateful().await;
    let version = json!({ "io.modelcontextprotocol/protocolVersion": "2026-07-28" });
    let capabilities = json!({ CLIENT_CAPABILITIES: {} });
    for params in [
        Value::Null,
        json!({ "_meta": capabilities }),
        json!({ "_meta": version }),
    ] {
        let error = fixture.error("server/discover", params.clone()).await;
        assert_eq!(error.code, -32602, "{params}");
        assert!(error.message.contains("_meta"), "{}", error.message);
    }
    let unsupported = fixture
        .error(
            "server/discover",
            json!({ "_meta": {
                "io.modelcontextprotocol/protocolVersion": "v999.0.0",
                CLIENT_CAPABILITIES: {},
            } }),
        )
        .await;
    assert_eq!(unsupported.code, -32022);
    let error_data = data(&unsupported);
    assert_eq!(error_data["requested"], "v999.0.0");
    assert_eq!(error_data["supported"][4], "2026-07-28");
    // clientInfo is optional.
    let discover = fixture
        .request(
            "server/discover",
            json!({ "_meta": {
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                CLIENT_CAPABILITIES: {},
            } }),
        )
        .await;
    assert_eq!(discover["resultType"], "complete");
}

#[tokio::test]
async fn removed_and_unknown_methods_are_not_found() {
    let fixture = stateless().await;
    for method in [
        "initialize",
        "ping",
        "tasks/result",
        "tasks/list",
        "unknown/method",
    ] {
        let error = fixture.error(method, json!({})).await;
        assert_eq!(error.code, -32601, "{method}");
    }
    // What sessions used to ask for and 2026-07-28 removed is the runtime's
    // own business now: it bridges them (a subscription watched on its
    // listen stream, a log level sent with every request).
    let set = json!({ "level": "info" });
    assert_eq!(fixture.request("logging/setLevel", set).await, json!({}));
    let watched = json!({ "uri": "test://watched-resource" });
    for method in ["resources/subscribe", "resources/unsubscribe"] {
        assert_eq!(fixture.request(method, watched.clone()).await, json!({}));
        assert_eq!(fixture.error(method, json!({})).await.code, -32602);
    }
}

#[tokio::test]
async fn stateless_results_carry_type_and_caching_hints() {
    let fixture = stateless().await;
    for (method, params) in [
        ("tools/list", json!({})),
        ("prompts/list", json!({})),
        ("resources/list", json!({})),
        ("resources/templates/list", json!({})),
        ("resources/read", json!({ "uri": "test://static-text" })),
    ] {
        let result = fixture.request(method, params).await;
        assert_eq!(result["resultType"], "complete", "{method}");
        assert_eq!(result["ttlMs"], 0, "{method}");
        assert_eq!(result["cacheScope"], "public", "{method}");
    }
    let tools = fixture.request("tools/list", json!({})).await;
    assert_eq!(names(&tools, "tools", "name"), EVERY_TOOL);
    assert!(
        tools["tools"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("resultType").is_none())
    );
    assert_eq!(
        fixture.call("test_simple_text", json!({})).await,
        json!({
            "content": [{ "type": "text", "text": "This is a simple text response for testing." }],
            "resultType": "complete",
        })
    );
    let error = fixture.call("test_error_handling", json!({})).await;
    assert_eq!(error["isError"], true);
    assert_eq!(error["resultType"], "complete");
    let prompt = fixture
        .request("prompts/get", json!({ "name": "test_simple_prompt" }))
        .await;
    assert_eq!(prompt["resultType"], "complete");
    assert!(prompt.get("ttlMs").is_none());
    let completion = fixture
        .request(
            "completion/complete",
            json!({
                "ref": { "type": "ref/prompt", "name": "test_prompt_with_arguments" },
                "argument": { "name": "arg1", "value": "test" },
            }),
        )
        .await;
    assert_eq!(completion["resultType"], "complete");
    assert_eq!(completion["completion"]["values"][0], "test");
    let template = fixture
        .request(
            "resources/read",
            json!({ "uri": "test://template/123/data" }),
        )
        .await;
    assert!(
        template["contents"][0]["text"]
            .as_str()
            .unwrap()
            .contains("123")
    );
}

#[tokio::test]
async fn unknown_resources_are_invalid_params_with_the_uri() {
    let fixture = stateless().await;
    let uri = "test://nonexistent-resource-for-conformance-testing";
    let error = fixture.error("resources/read", json!({ "uri": uri })).await;
    assert_error(&error, -32602, "Resource not found");
    assert_eq!(data(&error), json!({ "uri": uri }));
}

#[tokio::test]
async fn stateless_logs_only_at_the_requested_level() {
    let mut fixture = stateless().await;
    fixture.call("test_logging_tool", json!({})).await;
    fixture.none("notifications/message").await;
    let params = json!({
        "name": "test_tool_with_logging",
        "arguments": {},
        "_meta": { "io.modelcontextprotocol/logLevel": "info" },
    });
    fixture.request("tools/call", params).await;
    for message in [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ] {
        let log = fixture.next("notifications/message").await;
        assert_eq!(log["data"], message);
        assert_eq!(log["level"], "info");
    }
    let quiet = json!({
        "name": "test_logging_tool",
        "arguments": {},
        "_meta": { "io.modelcontextprotocol/logLevel": "warning" },
    });
    fixture.request("tools/call", quiet).await;
    fixture.none("notifications/message").await;
}

#[tokio::test]
async fn stateless_progress_goes_to_the_request_token() {
    let fixture = stateless().await;
    let seen = progress_of(&fixture).await;
    let progress: Vec<&Value> = seen.iter().map(|p| &p["progress"]).collect();
    assert_eq!(progress, [&json!(0), &json!(50), &json!(100)]);
    assert!(seen.iter().all(|p| p["progressToken"] == "progress-test-1"));
}

#[tokio::test]
async fn elicitation_round_trip() {
    let fixture = stateless().await;
    let tool = "test_input_required_result_elicitation";
    let first = fixture.ask(tool, json!({})).await;
    assert_eq!(
        first,
        json!({
            "resultType": "input_required",
            "inputRequests": {
                "user_name": {
                    "method": "elicitation/create",
                    "params": {
                        "message": "What is your name?",
                        "requestedSchema": {
                            "type": "object",
                            "properties": { "name": { "type": "string" } },
                            "required": ["name"],
                        },
                    },
                },
            },
        })
    );
    let answered = json!({ "inputResponses": { "user_name": accept(json!({ "name": "Alice" })) } });
    let second = fixture.ask(tool, answered).await;
    assert_eq!(
        second,
        json!({ "content": [{ "type": "text", "text": "Hello, Alice!" }], "resultType": "complete" })
    );
    // A wrong key is asked again; extra keys are ignored.
    let wrong = json!({ "inputResponses": { "wrong_key": accept(json!({ "data": "wrong" })) } });
    assert_eq!(fixture.ask(tool, wrong).await, first);
    let extra = json!({ "inputResponses": {
        "user_name": accept(json!({ "name": "Alice" })),
        "unknown_extra_key": accept(json!({ "foo": "bar" })),
    } });
    assert_eq!(text(&fixture.ask(tool, extra).await), "Hello, Alice!");
    let declined = json!({ "inputResponses": { "user_name": { "action": "decline" } } });
    assert_eq!(
        text(&fixture.ask(tool, declined).await),
        "No name was given: the user chose to decline."
    );
    // Answers of the wrong shape are invalid params.
    for bad in [
        json!({ "inputResponses": { "user_name": 12345 } }),
        json!({ "inputResponses": null }),
        json!({ "inputResponses": { "user_name": accept(json!({ "name": 7 })) } }),
        json!({ "requestState": "forged.00" }),
    ] {
        let error = fixture.ask_error(tool, bad.clone()).await;
        assert_eq!(error.code, -32602, "{bad}");
    }
    // Without the elicitation capability: -32021.
    let bare = json!({ "name": tool, "arguments": {}, "_meta": with_capabilities(json!({})) });
    let error = fixture.error("tools/call", bare).await;
    assert_eq!(error.code, -32021);
    assert_eq!(
        data(&error),
        json!({ "requiredCapabilities": { "elicitation": {} } })
    );
}

#[tokio::test]
async fn sampling_and_roots_round_trips() {
    let fixture = stateless().await;
    let tool = "test_input_required_result_sampling";
    let first = fixture.ask(tool, json!({})).await;
    assert_eq!(first["resultType"], "input_required");
    assert_eq!(
        first["inputRequests"]["capital_question"],
        json!({
            "method": "sampling/createMessage",
            "params": {
                "messages": [{ "role": "user", "content": { "type": "text", "text": "What is the capital of France?" } }],
                "maxTokens": 100,
            },
        })
    );
    let answer = json!({ "inputResponses": { "capital_question": sampled("The capital of France is Paris.") } });
    assert_eq!(
        text(&fixture.ask(tool, answer).await),
        "Sampling answer: The capital of France is Paris."
    );
    let tool = "test_input_required_result_list_roots";
    let first = fixture.ask(tool, json!({})).await;
    assert_eq!(
        first["inputRequests"],
        json!({ "client_roots": { "method": "roots/list", "params": {} } })
    );
    let answer = json!({ "inputResponses": { "client_roots": roots() } });
    assert_eq!(
        text(&fixture.ask(tool, answer).await),
        "Client roots: file:///test/root (Test Root)"
    );
    // The 2025-11-25 sampling tool works the same way here.
    let first = fixture
        .ask("test_sampling", json!({ "arguments": { "prompt": "Hi" } }))
        .await;
    assert_eq!(
        first["inputRequests"]["llm_response"]["params"]["messages"][0]["content"]["text"],
        "Hi"
    );
    let answer = json!({
        "arguments": { "prompt": "Hi" },
        "inputResponses": { "llm_response": sampled("Hello!") },
    });
    assert_eq!(
        text(&fixture.ask("test_sampling", answer).await),
        "LLM response: Hello!"
    );
}

#[tokio::test]
async fn request_state_is_signed_and_checked() {
    let fixture = stateless().await;
    for tool in [
        "test_input_required_result_request_state",
        "test_input_required_result_tampered_state",
    ] {
        let first = fixture.ask(tool, json!({})).await;
        assert_eq!(first["resultType"], "input_required");
        assert_eq!(
            first["inputRequests"]["confirm"]["method"],
            "elicitation/create"
        );
        let state = first["requestState"].as_str().unwrap().to_owned();
        let answers = json!({ "confirm": accept(json!({ "ok": true })) });
        let done = fixture
            .ask(
                tool,
                json!({ "inputResponses": answers, "requestState": state }),
            )
            .await;
        assert_eq!(done["resultType"], "complete");
        assert!(text(&done).contains("state-ok"), "{done}");
        let tampered = fixture
            .ask_error(
                tool,
                json!({ "inputResponses": answers, "requestState": format!("{state}-TAMPERED") }),
            )
            .await;
        assert_eq!(tampered.code, -32602);
        assert!(
            tampered.message.contains("integrity"),
            "{}",
            tampered.message
        );
        // Answers without the state are not enough.
        let stateless = fixture
            .ask(tool, json!({ "inputResponses": answers }))
            .await;
        assert_eq!(stateless["resultType"], "input_required");
    }
    // A state is bound to its tool.
    let first = fixture
        .ask("test_input_required_result_request_state", json!({}))
        .await;
    let other = fixture
        .ask_error(
            "test_input_required_result_multi_round",
            json!({ "requestState": first["requestState"] }),
        )
        .await;
    assert_eq!(other.code, -32602);
}

#[tokio::test]
async fn multiple_inputs_are_gathered_across_rounds() {
    let fixture = stateless().await;
    let tool = "test_input_required_result_multiple_inputs";
    let first = fixture.ask(tool, json!({})).await;
    let requests = first["inputRequests"].as_object().unwrap();
    let methods: Vec<&str> = ["user_name", "greeting", "client_roots"]
        .iter()
        .map(|key| requests[*key]["method"].as_str().unwrap())
        .collect();
    assert_eq!(
        methods,
        ["elicitation/create", "sampling/createMessage", "roots/list"]
    );
    assert!(first["requestState"].is_string());
    // Answer one: the others are asked again, the answer is remembered.
    let partial = fixture
        .ask(
            tool,
            json!({
                "inputResponses": { "user_name": accept(json!({ "name": "Alice" })) },
                "requestState": first["requestState"],
            }),
        )
        .await;
    let keys: Vec<&String> = partial["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["client_roots", "greeting"]);
    let done = fixture
        .ask(
            tool,
            json!({
                "inputResponses": { "greeting": sampled("Hello there!"), "client_roots": roots() },
                "requestState": partial["requestState"],
            }),
        )
        .await;
    assert_eq!(
        text(&done),
        "All input received: user_name: action=accept, content={\"name\":\"Alice\"}; greeting: Hello there!; client_roots: file:///test/root (Test Root)"
    );
}

#[tokio::test]
async fn multi_round_state_evolves() {
    let fixture = stateless().await;
    let tool = "test_input_required_result_multi_round";
    let first = fixture.ask(tool, json!({})).await;
    assert_eq!(
        first["inputRequests"]["step1"]["params"]["message"],
        "Step 1: What is your name?"
    );
    let second = fixture
        .ask(
            tool,
            json!({
                "inputResponses": { "step1": accept(json!({ "name": "Alice" })) },
                "requestState": first["requestState"],
            }),
        )
        .await;
    assert_eq!(second["resultType"], "input_required");
    assert_eq!(
        second["inputRequests"]["step2"]["params"]["message"],
        "Step 2: What is your favorite color?"
    );
    assert_ne!(second["requestState"], first["requestState"]);
    let third = fixture
        .ask(
            tool,
            json!({
                "inputResponses": { "step2": accept(json!({ "color": "blue" })) },
                "requestState": second["requestState"],
            }),
        )
        .await;
    assert_eq!(
        third,
        json!({ "content": [{ "type": "text", "text": "Alice's favorite color is blue." }], "resultType": "complete" })
    );
}

#[tokio::test]
async fn only_declared_capabilities_are_asked() {
    let fixture = stateless().await;
    let tool = "test_input_required_result_capabilities";
    let call = |capabilities: Value| json!({ "name": tool, "arguments": {}, "_meta": with_capabilities(capabilities) });
    let sampling = fixture
        .request("tools/call", call(json!({ "sampling": {} })))
        .await;
    let keys: Vec<&String> = sampling["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(keys, ["greeting"]);
    let nothing = fixture.request("tools/call", call(json!({}))).await;
    assert_eq!(nothing["resultType"], "complete");
    // test_missing_capability needs sampling, which this request does not
    // declare (the runtime would declare it on the caller's behalf).
    let missing = fixture
        .error(
            "tools/call",
            json!({ "name": "test_missing_capability", "arguments": {}, "_meta": with_capabilities(json!({})) }),
        )
        .await;
    assert_eq!(missing.code, -32021);
    assert_eq!(
        data(&missing)["requiredCapabilities"],
        json!({ "sampling": {} })
    );
    let asked = fixture.ask("test_missing_capability", json!({})).await;
    assert_eq!(asked["resultType"], "input_required");
}

#[tokio::test]
async fn elicitation_forms_of_the_2025_scenarios() {
    let fixture = stateless().await;
    let defaults = fixture
        .ask("test_elicitation_sep1034_defaults", json!({}))
        .await;
    let schema = &defaults["inputRequests"]["defaults"]["params"]["requestedSchema"]["properties"];
    assert_eq!(schema["name"]["default"], "John Doe");
    assert_eq!(schema["age"]["type"], "integer");
    assert_eq!(schema["age"]["default"], 30);
    assert_eq!(schema["score"]["default"], 95.5);
    assert_eq!(schema["status"]["default"], "active");
    assert_eq!(schema["verified"]["default"], true);
    let done = fixture
        .ask(
            "test_elicitation_sep1034_defaults",
            json!({ "inputResponses": { "defaults": accept(json!({ "name": "Jane Smith", "age": 25 })) } }),
        )
        .await;
    assert_eq!(
        text(&done),
        "Elicitation completed: action=accept, content={\"age\":25,\"name\":\"Jane Smith\"}"
    );
    let enums = fixture
        .ask("test_elicitation_sep1330_enums", json!({}))
        .await;
    let schema = &enums["inputRequests"]["enums"]["params"]["requestedSchema"]["properties"];
    assert!(schema["untitledSingle"]["enum"].is_array());
    assert_eq!(schema["titledSingle"]["oneOf"][0]["title"], "First Option");
    assert_eq!(
        schema["legacyEnum"]["enumNames"].as_array().unwrap().len(),
        schema["legacyEnum"]["enum"].as_array().unwrap().len()
    );
    assert_eq!(schema["untitledMulti"]["items"]["type"], "string");
    assert!(schema["titledMulti"]["items"]["anyOf"].is_array());
    let elicit = fixture
        .ask(
            "test_elicitation",
            json!({ "arguments": { "message": "Please provide your information" } }),
        )
        .await;
    let request = &elicit["inputRequests"]["user_response"]["params"];
    assert_eq!(request["message"], "Please provide your information");
    assert_eq!(
        request["requestedSchema"]["required"],
        json!(["username", "email"])
    );
    let streaming = fixture.ask("test_streaming_elicitation", json!({})).await;
    assert_eq!(streaming["resultType"], "input_required");
}

#[tokio::test]
async fn a_prompt_can_ask_for_input() {
    let fixture = stateless().await;
    let get = |extra: Value| {
        let mut params =
            json!({ "name": "test_input_required_result_prompt", "_meta": all_capabilities() });
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        params
    };
    let first = fixture.request("prompts/get", get(json!({}))).await;
    assert_eq!(first["resultType"], "input_required");
    assert_eq!(
        first["inputRequests"]["user_context"]["params"]["message"],
        "What context should the prompt use?"
    );
    let done = fixture
        .request(
            "prompts/get",
            get(json!({ "inputResponses": { "user_context": accept(json!({ "context": "test context" })) } })),
        )
        .await;
    assert_eq!(done["resultType"], "complete");
    assert_eq!(
        done["messages"],
        json!([{ "role": "user", "content": { "type": "text", "text": "Use this context: test context" } }])
    );
    // Lists never ask for input.
    for method in ["tools/list", "prompts/list"] {
        let list = fixture
            .request(method, json!({ "_meta": all_capabilities() }))
            .await;
        assert_eq!(list["resultType"], "complete");
    }
}

/// Opens a listen stream in the background and waits for its
/// acknowledgement; returns the stream's task and subscription id.
async fn listen(
    fixture: &mut Fixture,
    filter: Value,
) -> (tokio::task::JoinHandle<()>, Value, Value) {
    let handle = fixture.handle.clone();
    let task = tokio::spawn(async move {
        let options = CallOptions {
            timeout: Some(Duration::from_secs(3600)),
            ..CallOptions::default()
        };
        let params = params(json!({ "notifications": filter }));
        let _ = handle
            .request("subscriptions/listen", params, options)
            .await;
    });
    let ack = fixture
        .next("notifications/subscriptions/acknowledged")
        .await;
    let id = ack["_meta"]["io.modelcontextprotocol/subscriptionId"].clone();
    assert!(id.is_number() || id.is_string(), "{ack}");
    fixture.listens.push(id.clone());
    (task, id, ack["notifications"].clone())
}

#[tokio::test]
async fn listen_streams_get_what_they_asked_for() {
    let mut fixture = stateless().await;
    let (tools_task, tools_id, honoured) = listen(
        &mut fixture,
        json!({ "toolsListChanged": true, "resourceSubscriptions": ["test://watched-resource", "test://nope"] }),
    )
    .await;
    assert_eq!(
        honoured,
        json!({ "toolsListChanged": true, "resourceSubscriptions": ["test://watched-resource"] })
    );
    let (prompts_task, prompts_id, _) =
        listen(&mut fixture, json!({ "promptsListChanged": true })).await;
    assert_ne!(tools_id, prompts_id);

    fixture.call("test_trigger_tool_change", json!({})).await;
    let changed = fixture.next("notifications/tools/list_changed").await;
    assert_eq!(
        changed,
        json!({ "_meta": { "io.modelcontextprotocol/subscriptionId": tools_id } })
    );
    // Only the tools stream heard of it, once.
    fixture.none("notifications/tools/list_changed").await;

    fixture.call("test_trigger_prompt_change", json!({})).await;
    let changed = fixture.next("notifications/prompts/list_changed").await;
    assert_eq!(
        changed["_meta"]["io.modelcontextprotocol/subscriptionId"],
        prompts_id
    );

    fixture
        .call("test_trigger_resource_update", json!({}))
        .await;
    let updated = fixture.next("notifications/resources/updated").await;
    assert_eq!(
        updated,
        json!({
            "uri": "test://watched-resource",
            "_meta": { "io.modelcontextprotocol/subscriptionId": tools_id },
        })
    );
    fixture
        .call("test_trigger_resource_list_change", json!({}))
        .await;
    fixture.none("notifications/resources/list_changed").await;

    // A closed stream hears nothing more.
    tools_task.abort();
    let _ = tools_task.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    fixture.call("test_trigger_tool_change", json!({})).await;
    fixture.none("notifications/tools/list_changed").await;
    prompts_task.abort();

    let missing = fixture.error("subscriptions/listen", json!({})).await;
    assert_eq!(missing.code, -32602);
}

// ---------------------------------------------------------------------------
// Tasks (the io.modelcontextprotocol/tasks extension, 2026-07-28)

const TASKS: &str = "io.modelcontextprotocol/tasks";

/// `_meta` that declares the Tasks extension and elicitation.
fn with_tasks() -> Value {
    with_capabilities(json!({ "elicitation": {}, "extensions": { TASKS: {} } }))
}

impl Fixture {
    /// A `tools/call` that declares the Tasks extension.
    async fn start_task(&self, name: &str, arguments: Value) -> Value {
        self.request(
            "tools/call",
            json!({ "name": name, "arguments": arguments, "_meta": with_tasks() }),
        )
        .await
    }

    /// A request of the extension about task `id`, declaring it.
    async fn task_request(&self, method: &str, id: &Value, extra: Value) -> Value {
        let mut params = json!({ "taskId": id, "_meta": with_tasks() });
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        self.request(method, params).await
    }

    /// `tasks/get` until the task is in `status` (or over), at most 5 s.
    async fn wait_for(&self, id: &Value, status: &str) -> Value {
        for _ in 0..100 {
            let task = self.task_request("tasks/get", id, json!({})).await;
            let now = task["status"].as_str().unwrap();
            if now == status || ["completed", "failed", "cancelled"].contains(&now) {
                return task;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("task {id} never became {status}");
    }
}

fn is_rfc3339(value: &Value) -> bool {
    let text = value.as_str().unwrap_or_default();
    text.len() == 24 && text.ends_with('Z') && text.as_bytes()[10] == b'T'
}

#[tokio::test]
async fn tasks_are_offered_and_listed_per_tool() {
    let fixture = stateless().await;
    let discover = fixture.request("server/discover", json!({})).await;
    assert_eq!(discover["capabilities"]["extensions"][TASKS], json!({}));
    assert!(discover["capabilities"].get("tasks").is_none());
    let list = fixture.request("tools/list", json!({})).await;
    let support = |name: &str| {
        let tools = list["tools"].as_array().unwrap();
        let tool = tools.iter().find(|t| t["name"] == name).unwrap();
        tool["execution"]["taskSupport"].clone()
    };
    assert_eq!(support("greet"), Value::Null);
    assert_eq!(support("slow_compute"), "optional");
    assert_eq!(support("failing_job"), "required");
    assert_eq!(support("test_tool_with_task"), "required");
}

#[tokio::test]
async fn a_task_runs_to_its_result_and_is_kept() {
    let fixture = stateless().await;
    let created = fixture
        .start_task("slow_compute", json!({ "seconds": 0.3, "label": "pi" }))
        .await;
    assert_eq!(created["resultType"], "task");
    assert_eq!(created["status"], "working");
    for member in ["createdAt", "lastUpdatedAt"] {
        assert!(is_rfc3339(&created[member]), "{member}: {created}");
    }
    assert_eq!(created["ttlMs"], 600_000);
    assert!(created["pollIntervalMs"].as_u64().unwrap() > 0);
    for absent in [
        "result",
        "error",
        "inputRequests",
        "requestState",
        "task",
        "content",
    ] {
        assert!(created.get(absent).is_none(), "{absent}: {created}");
    }
    let id = created["taskId"].clone();
    // At once: the task exists as soon as it is announced.
    let working = fixture.task_request("tasks/get", &id, json!({})).await;
    assert_eq!(working["taskId"], id);
    assert_eq!(working["status"], "working");
    assert_eq!(working["resultType"], "complete");
    assert!(working.get("result").is_none());
    let done = fixture.wait_for(&id, "completed").await;
    assert_eq!(done["status"], "completed");
    assert_eq!(text(&done["result"]), "Computed pi in 0.3 s");
    assert!(done.get("error").is_none());
    assert!(done["result"].get("_meta").is_none());
    // Another request for the same task still finds it.
    let again = fixture.task_request("tasks/get", &id, json!({})).await;
    assert_eq!(again["status"], "completed");
    // A second task gets another id.
    let other = fixture
        .start_task("slow_compute", json!({ "seconds": 0 }))
        .await;
    assert_ne!(other["taskId"], id);
}

#[tokio::test]
async fn tool_errors_complete_and_protocol_errors_fail() {
    let fixture = stateless().await;
    let failing = fixture.start_task("failing_job", json!({})).await;
    let done = fixture.wait_for(&failing["taskId"], "completed").await;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["result"]["isError"], true);
    let broken = fixture.start_task("protocol_error_job", json!({})).await;
    let failed = fixture.wait_for(&broken["taskId"], "failed").await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["code"], -32603);
    assert!(failed["error"]["message"].is_string());
    assert!(failed.get("result").is_none());
}

#[tokio::test]
async fn cancelling_stops_a_task_and_is_idempotent() {
    let fixture = stateless().await;
    let created = fixture
        .start_task("slow_compute", json!({ "seconds": 60 }))
        .await;
    let id = created["taskId"].clone();
    let ack = fixture.task_request("tasks/cancel", &id, json!({})).await;
    assert_eq!(ack, json!({ "resultType": "complete" }));
    let cancelled = fixture.task_request("tasks/get", &id, json!({})).await;
    assert_eq!(cancelled["status"], "cancelled");
    let again = fixture.task_request("tasks/cancel", &id, json!({})).await;
    assert_eq!(again, json!({ "resultType": "complete" }));
    // A finished task is not changed by a cancel either.
    let quick = fixture
        .start_task("slow_compute", json!({ "seconds": 0 }))
        .await;
    fixture.wait_for(&quick["taskId"], "completed").await;
    fixture
        .task_request("tasks/cancel", &quick["taskId"], json!({}))
        .await;
    let still = fixture
        .task_request("tasks/get", &quick["taskId"], json!({}))
        .await;
    assert_eq!(still["status"], "completed");
}

#[tokio::test]
async fn input_is_asked_and_answered_in_parts() {
    let fixture = stateless().await;
    let created = fixture
        .start_task("confirm_delete", json!({ "filename": "a.txt" }))
        .await;
    let id = created["taskId"].clone();
    let waiting = fixture.wait_for(&id, "input_required").await;
    assert_eq!(waiting["status"], "input_required");
    let requests = waiting["inputRequests"].as_object().unwrap();
    assert_eq!(requests["confirm"]["method"], "elicitation/create");
    // An answer to nothing asked is ignored, and acknowledged.
    let ack = fixture
        .task_request(
            "tasks/update",
            &id,
            json!({ "inputResponses": { "unknown-key": { "ignored": true } } }),
        )
        .await;
    assert_eq!(ack, json!({ "resultType": "complete" }));
    let answers = json!({ "inputResponses": { "confirm": accept(json!({ "confirm": true })) } });
    fixture.task_request("tasks/update", &id, answers).await;
    let done = fixture.wait_for(&id, "completed").await;
    assert_eq!(text(&done["result"]), "Deleted a.txt");

    let created = fixture.start_task("multi_input", json!({})).await;
    let id = created["taskId"].clone();
    let waiting = fixture.wait_for(&id, "input_required").await;
    let mut keys: Vec<String> = waiting["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    keys.sort();
    assert_eq!(keys, ["confirm", "name"]);
    let first = json!({ "inputResponses": { "name": accept(json!({ "name": "Ada" })) } });
    fixture.task_request("tasks/update", &id, first).await;
    let partial = fixture.task_request("tasks/get", &id, json!({})).await;
    assert_eq!(partial["status"], "input_required");
    let left: Vec<&String> = partial["inputRequests"]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(left, ["confirm"]);
    let second = json!({ "inputResponses": { "confirm": accept(json!({ "confirm": true })) } });
    fixture.task_request("tasks/update", &id, second).await;
    let done = fixture.wait_for(&id, "completed").await;
    let said = text(&done["result"]);
    assert!(said.contains("Ada") && said.contains("true"), "{said}");
}

#[tokio::test]
async fn input_first_then_a_task() {
    let fixture = stateless().await;
    let first = fixture.start_task("test_tool_with_task", json!({})).await;
    assert_eq!(first["resultType"], "input_required");
    assert!(first.get("taskId").is_none());
    let answers = json!({ "user_name": accept(json!({ "name": "Alice" })) });
    let created = fixture
        .request(
            "tools/call",
            json!({
                "name": "test_tool_with_task",
                "arguments": {},
                "inputResponses": answers,
                "_meta": with_tasks(),
            }),
        )
        .await;
    assert_eq!(created["resultType"], "task");
    assert!(created.get("requestState").is_none());
    let done = fixture.wait_for(&created["taskId"], "completed").await;
    assert_eq!(text(&done["result"]), "Hello, Alice!");
}

#[tokio::test]
async fn tasks_need_the_extension() {
    let fixture = stateless().await;
    // Without it: an optional tool runs within the call, a required one
    // and every task method are -32021 naming the extension.
    let plain = fixture
        .request(
            "tools/call",
            json!({ "name": "slow_compute", "arguments": { "seconds": 0 } }),
        )
        .await;
    assert_eq!(plain["resultType"], "complete");
    assert_eq!(text(&plain), "Computed computation in 0 s");
    let required = fixture
        .error(
            "tools/call",
            json!({ "name": "failing_job", "arguments": {} }),
        )
        .await;
    assert_eq!(required.code, -32021);
    assert_eq!(
        data(&required)["requiredCapabilities"]["extensions"][TASKS],
        json!({})
    );
    for method in ["tasks/get", "tasks/update", "tasks/cancel"] {
        let refused = fixture
            .error(method, json!({ "taskId": "x", "inputResponses": {} }))
            .await;
        assert_eq!(refused.code, -32021, "{method}");
    }
    // A sync tool is never a task; the legacy `task` hint changes nothing.
    let greeting = fixture
        .request(
            "tools/call",
            json!({
                "name": "greet",
                "arguments": { "name": "World" },
                "task": { "ttl": 60000 },
                "_meta": with_tasks(),
            }),
        )
        .await;
    assert_eq!(greeting["resultType"], "complete");
    assert_eq!(text(&greeting), "Hello, World!");
    // Unknown tasks are -32602.
    let unknown = fixture
        .error(
            "tasks/get",
            json!({ "taskId": "no-such-task", "_meta": with_tasks() }),
        )
        .await;
    assert_eq!(unknown.code, -32602);
    // A session has no tasks: its calls run within the call.
    let session = stateful().await;
    let result = session.call("slow_compute", json!({ "seconds": 0 })).await;
    assert_eq!(text(&result), "Computed computation in 0 s");
    let refused = session.error("tasks/get", json!({ "taskId": "x" })).await;
    assert_eq!(refused.code, -32601);
}
