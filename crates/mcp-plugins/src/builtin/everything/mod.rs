//! `everything`: a reference MCP server with one fixture for each check the
//! MCP conformance suite makes of a server, for protocol version 2025-11-25
//! (a session opened with `initialize`) and 2026-07-28 (stateless requests
//! that carry the protocol version and the client's capabilities in
//! `_meta`). A request is taken for a 2026-07-28 one when its `_meta` names
//! a protocol version or client capabilities, or when its method exists only
//! in 2026-07-28 (`server/discover`, `subscriptions/listen`); such a request
//! must then carry both, with a version this server speaks statelessly.
//!
//! # Methods
//!
//! - `initialize` (stateful): negotiates the version with
//!   [`VersionSet::answer_initialize`](mcp_protocol::VersionSet::answer_initialize)
//!   and offers tools, resources (subscribe), prompts (each with list
//!   changes), logging and completions. `ping` answers `{}`.
//! - `server/discover` (2026-07-28): `supportedVersions`, the same
//!   capabilities, the server's name and version in
//!   `_meta["io.modelcontextprotocol/serverInfo"]`, `ttlMs`, `cacheScope`.
//! - `tools/list`, `tools/call`, `resources/list`,
//!   `resources/templates/list`, `resources/read`, `prompts/list`,
//!   `prompts/get`, `completion/complete`. Every list is one page; a cursor
//!   is `-32602`.
//! - `logging/setLevel`, `resources/subscribe`, `resources/unsubscribe`
//!   (stateful only). In 2026-07-28 the log level comes with each request
//!   (`_meta["io.modelcontextprotocol/logLevel"]`; without it no log
//!   message is sent), and resource updates and list changes go to
//!   `subscriptions/listen` streams.
//! - `subscriptions/listen` (2026-07-28): sends
//!   `notifications/subscriptions/acknowledged` with the filter it honours,
//!   then stays open; every list change or resource update the filter asks
//!   for is sent tagged with `_meta["io.modelcontextprotocol/subscriptionId"]`,
//!   the listen request's id. The stream ends when the request is
//!   cancelled.
//!
//! In 2026-07-28 every result carries `resultType`, and lists and reads
//! carry `ttlMs: 0` and `cacheScope: "public"`. Methods 2026-07-28 removed
//! (`initialize`, `ping`, `logging/setLevel`, `resources/subscribe`,
//! `resources/unsubscribe`) and unknown methods are `-32601`; missing
//! `_meta` members are `-32602`; an unsupported version is `-32022` with
//! the supported versions in `data`.
//!
//! # Tools
//!
//! | tool | does |
//! | --- | --- |
//! | `test_simple_text` | text `This is a simple text response for testing.` |
//! | `test_image_content` | an image: a 1×1 red PNG |
//! | `test_audio_content` | audio: a short `audio/wav` of silence |
//! | `test_embedded_resource` | resource `test://embedded-resource`, `text/plain`, `This is an embedded resource content.` |
//! | `test_multiple_content_types` | text `Multiple content types test:`, the image, resource `test://mixed-content-resource` (`application/json`) |
//! | `test_tool_with_logging`, `test_logging_tool` | three `info` log messages 50 ms apart: `Tool execution started`, `Tool processing data`, `Tool execution completed` |
//! | `test_tool_with_progress` | progress 0, 50, 100 of 100, 50 ms apart, on the request's progress token |
//! | `test_error_handling` | `isError: true`, text `This tool intentionally returns an error for testing` |
//! | `test_sampling` (`prompt`) | samples the client's model; `LLM response: …` |
//! | `test_elicitation` (`message`) | asks for a username and an email; `User response: action=…, content=…` |
//! | `test_elicitation_sep1034_defaults` | a form with defaults for string, integer, number, enum and boolean fields |
//! | `test_elicitation_sep1330_enums` | a form with the five enum kinds (untitled and titled single and multi select, legacy `enumNames`) |
//! | `test_missing_capability` | needs sampling: `-32021` with `requiredCapabilities: {"sampling": {}}` when undeclared |
//! | `test_streaming_elicitation` | progress and a log message, then asks for a confirmation |
//! | `test_input_required_result_elicitation` | asks `user_name` (`What is your name?`); `Hello, <name>!` |
//! | `test_input_required_result_sampling` | asks `capital_question` (sampling) |
//! | `test_input_required_result_list_roots` | asks `client_roots` (`roots/list`) |
//! | `test_input_required_result_request_state` | asks `confirm` with a signed `requestState`; the answer says `state-ok` |
//! | `test_input_required_result_multiple_inputs` | asks `user_name`, `greeting` and `client_roots` at once, with a signed state |
//! | `test_input_required_result_multi_round` | asks `step1` (name), then `step2` (colour), with a state that changes between rounds |
//! | `test_input_required_result_tampered_state` | as the request-state tool; an altered state is `-32602` |
//! | `test_input_required_result_capabilities` | asks only what the request's declared capabilities allow |
//! | `test_trigger_tool_change` | adds or removes `test_dynamic_tool`; announces the tool list change |
//! | `test_trigger_prompt_change` | adds or removes `test_dynamic_prompt`; announces the prompt list change |
//! | `test_trigger_resource_list_change` | adds or removes `test://dynamic-resource`; announces the resource list change |
//! | `test_trigger_resource_update` (`uri`) | changes a resource (the watched one by default); `notifications/resources/updated` to its subscribers |
//! | `json_schema_2020_12_tool` | an input schema with `$schema`, `$defs`, `$anchor`, `allOf`/`anyOf`, `if`/`then`/`else`, `additionalProperties: false`; echoes its arguments |
//! | `test_dynamic_tool` | listed while added by `test_trigger_tool_change` |
//! | `test_header_mirroring` (`region`, `priority`, `query`) | `Region: <region>; priority: <priority>`; `region` and `priority` are mirrored in `Mcp-Param-Region` and `Mcp-Param-Priority` (`x-mcp-header`) |
//! | `greet` (`name`) | `Hello, <name>!`, never a task |
//! | `slow_compute` (`seconds`, `label`) | waits `seconds` (0 to 3600), then `Computed <label> in <seconds> s`; task: optional |
//! | `failing_job` | a tool error after 0.5 s; task: required |
//! | `protocol_error_job` | a protocol error (`-32603`) after 0.2 s: the task fails; task: optional |
//! | `confirm_delete` (`filename`) | asks `confirm`, then `Deleted <filename>` or `Kept <filename>`; task: optional |
//! | `multi_input` | asks `name` and `confirm` at once, then reports both; task: optional |
//! | `test_tool_with_task` | asks `user_name` (input_required, no task yet), then greets from a task; task: required |
//!
//! # Tasks
//!
//! `server/discover` offers the Tasks extension
//! (`capabilities.extensions["io.modelcontextprotocol/tasks"]`). A
//! `tools/call` of a tool whose `execution.taskSupport` is `optional` or
//! `required`, in a 2026-07-28 request whose `_meta` client capabilities
//! declare the extension, answers at once with a `CreateTaskResult`
//! (`resultType: "task"`, `taskId`, `status`, `createdAt`,
//! `lastUpdatedAt`, `ttlMs`, `pollIntervalMs`) while the tool works in the
//! background. Without the extension an `optional` tool runs within the
//! call and a `required` one is `-32021` naming the extension.
//! `tasks/get` shows the task with its `result` (a tool error is
//! `completed` with `isError`), its `error` (`failed`) or the
//! `inputRequests` it waits on (`input_required`); `tasks/update` answers
//! some or all of them (unknown keys are ignored) and `tasks/cancel` stops
//! it (`cancelled`); both answer `{resultType: "complete"}`, also for a
//! task that is over. An unknown task id is `-32602`; a request of the
//! extension that does not declare it is `-32021`. Tasks are kept ten
//! minutes from their creation, at most 1024 at once.
//!
//! The tools that ask the client for input (sampling, elicitation, roots)
//! answer a 2026-07-28 request with `resultType: "input_required"`,
//! `inputRequests` and, where it keeps something between rounds, a signed
//! `requestState`; the client sends the request again with
//! `inputResponses`. A missing answer is asked again, extra answers are
//! ignored, an answer of the wrong shape or a `requestState` that fails its
//! integrity check is `-32602`, and a question whose capability the request
//! did not declare is `-32021`. In a stateful session the same questions
//! go to the client as real requests (`RequestContext::request`), round
//! after round, and the request runs again with the answers as if they had
//! come in `inputResponses`; a client that cannot be asked makes the call
//! fail with the transport's error (`-32601`).
//!
//! Over Streamable HTTP, a 2026-07-28 `tools/call` must carry the
//! `Mcp-Param-*` header of each argument its tool's schema mirrors
//! (`x-mcp-header`), with the argument's value: a header that is missing,
//! different, not valid base64, or sent for an argument not given is
//! `-32020` (HTTP 400).
//!
//! Arguments of the wrong shape are `-32602`; a missing required tool
//! argument is a tool error (`isError: true`); an unknown tool is `-32602`.
//!
//! # Resources
//!
//! | URI | content |
//! | --- | --- |
//! | `test://static-text` | `text/plain`: `This is the content of the static text resource.` |
//! | `test://static-binary` | `image/png` blob: the red pixel |
//! | `test://watched-resource` | `text/plain`: `Watched resource, revision <n>.`; subscribable |
//! | `test://dynamic-resource` | listed while added by `test_trigger_resource_list_change` |
//! | template `test://template/{id}/data` | `application/json`: `{"id":"<id>","templateTest":true,"data":"Data for ID: <id>"}` |
//!
//! An unknown URI is `-32602` with `data: {"uri": …}` in 2026-07-28 and
//! `-32002` (with the same `data`) before.
//!
//! # Prompts
//!
//! | prompt | messages |
//! | --- | --- |
//! | `test_simple_prompt` | `This is a simple prompt for testing.` |
//! | `test_prompt_with_arguments` (`arg1`, `arg2`) | `Prompt with arguments: arg1='<arg1>', arg2='<arg2>'` |
//! | `test_prompt_with_embedded_resource` (`resourceUri`) | the resource (`Embedded resource content for testing.`), then `Please process the embedded resource above.` |
//! | `test_prompt_with_image` | the red pixel, then `Please analyze the image above.` |
//! | `test_input_required_result_prompt` | asks `user_context` first (2026-07-28); `Use this context: <context>` |
//! | `test_dynamic_prompt` | listed while added by `test_trigger_prompt_change` |
//!
//! An unknown prompt or a missing required argument is `-32602`.
//!
//! # Completion
//!
//! `completion/complete` offers, filtered by the typed prefix (ignoring
//! case): for `test_prompt_with_arguments`, `arg1` ∈ `test`, `testing`,
//! `tested`, `value1`, `value2` and `arg2` ∈ `hello`, `help`, `world`; for
//! `test_prompt_with_embedded_resource`, `resourceUri` ∈ the three fixed
//! resource URIs; for the template, `id` ∈ `1`, `2`, `3`, `42`, `123`.

mod call;
mod input;
mod media;
mod prompts;
mod resources;
mod state;
mod tasks;
mod tools;

use std::sync::Arc;

use mcp_core::{BoxFuture, HandlerResult, McpServer, RequestContext};
use mcp_protocol::mcp::{
    InitializeParams, Method, SetLevelParams, SubscriptionFilter, SubscriptionsListenParams,
    meta_keys,
};
use mcp_protocol::{ErrorObject, Notification, ProtocolVersion, Request, VersionSet};
use serde_json::{Value, json};

use self::call::{Call, Reply, finish, invalid_params, method_not_found};
use self::input::Signer;
use self::state::{Shared, State, tag};
use self::tasks::Tasks;

/// The server's name.
const NAME: &str = "everything";

/// How long a `server/discover` answer may be cached, in milliseconds.
const DISCOVER_TTL_MS: u64 = 60_000;

/// Guidance for the model, in `initialize` and `server/discover`.
/// How many rounds of questions a stateful request may put to the client.
const MAX_ROUNDS: usize = 8;

const INSTRUCTIONS: &str = "A reference server for testing MCP clients and gateways: every tool, resource and prompt is a fixture with a fixed, documented answer.";

/// The reference MCP server; see the [module documentation](self) for every
/// tool, resource and prompt it has.
pub struct EverythingServer {
    shared: Shared,
    signer: Signer,
    tasks: Arc<Tasks>,
}

impl EverythingServer {
    /// A server in its initial state: no log level, no subscriptions, no
    /// dynamic tool, prompt or resource.
    #[must_use]
    pub fn new() -> Self {
        Self {
            shared: Shared::default(),
            signer: Signer::new(),
            tasks: Arc::new(Tasks::new()),
        }
    }

    /// Answers one request.
    async fn dispatch(&self, call: &Call) -> Result<Reply, ErrorObject<'static>> {
        let version = if call.mode.is_stateless() {
            ProtocolVersion::V2026_07_28
        } else {
            ProtocolVersion::LATEST_STATEFUL
        };
        let method = Method::from_name(&call.method)
            .filter(|method| method.is_in(version))
            .ok_or_else(|| method_not_found(&call.method))?;
        match method {
            Method::Initialize => initialize(call),
            Method::Ping => Ok(Reply::Complete(json!({}))),
            Method::Discover => Ok(Reply::Complete(discover())),
            Method::ToolsList => tools::list(&self.shared, call),
            Method::ToolsCall => tools::call(&self.shared, &self.signer, &self.tasks, call).await,
            Method::TasksGet | Method::TasksUpdate | Method::TasksCancel => {
                tasks::check_declared(call)?;
                match method {
                    Method::TasksGet => self.tasks.get(call),
                    Method::TasksUpdate => self.tasks.update(call),
                    _ => self.tasks.cancel(call),
                }
            }
            Method::ResourcesList => resources::list(&self.shared, call),
            Method::ResourceTemplatesList => resources::templates(call),
            Method::ResourcesRead => resources::read(&self.shared, call),
            Method::ResourcesSubscribe => resources::subscribe(&self.shared, call, true),
            Method::ResourcesUnsubscribe => resources::subscribe(&self.shared, call, false),
            Method::PromptsList => prompts::list(&self.shared, call),
            Method::PromptsGet => prompts::get(&self.shared, &self.signer, call),
            Method::Complete => prompts::complete(call),
            Method::SetLogLevel => {
                let params: SetLevelParams<'static> = call.view()?;
                self.shared.lock().log_level = Some(params.level);
                Ok(Reply::Complete(json!({})))
            }
            Method::SubscriptionsListen => self.listen(call).await,
            _ => Err(method_not_found(&call.method)),
        }
    }

    /// `subscriptions/listen`: acknowledges, then stays open until the
    /// request is cancelled, while [`Shared::announce`] sends on it.
    async fn listen(&self, call: &Call) -> Result<Reply, ErrorObject<'static>> {
        let params: SubscriptionsListenParams<'static> = call.view()?;
        let requested = params.notifications;
        let honoured = {
            let state = self.shared.lock();
            honoured(&state, &requested)
        };
        // Acknowledge first: nothing may be sent on the stream before.
        let ack = json!({ "notifications": honoured });
        call.notify(
            Method::SubscriptionsAcknowledged.as_str(),
            tag(ack, &call.id),
        )
        .await;
        let _guard = self
            .shared
            .listen(call.id.clone(), honoured, call.context.clone());
        std::future::pending().await
    }
}

impl Default for EverythingServer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for EverythingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EverythingServer").finish_non_exhaustive()
    }
}

impl McpServer for EverythingServer {
    fn handle_request(
        &self,
        request: Request<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, HandlerResult> {
        Box::pin(async move {
            let mut call = Call::new(request, context)?;
            for _ in 0..MAX_ROUNDS {
                match self.dispatch(&call).await? {
                    Reply::InputRequired(input) if !call.mode.is_stateless() => {
                        call.ask_client(&input).await?;
                    }
                    reply => return finish(&call, reply),
                }
            }
            Err(ErrorObject::new(
                mcp_protocol::jsonrpc::error_code::INTERNAL_ERROR,
                format!(
                    "`{}` still needed input after {MAX_ROUNDS} rounds",
                    call.method
                ),
            ))
        })
    }

    fn handle_notification(
        &self,
        notification: Notification<'static>,
        context: RequestContext,
    ) -> BoxFuture<'_, ()> {
        // An initialized session is told of list changes from now on;
        // `notifications/roots/list_changed` needs nothing, and
        // cancellation is handled by the runtime.
        if notification.method == Method::Initialized.as_str() {
            self.shared.initialized(context);
        }
        Box::pin(async {})
    }
}

/// What this server offers.
fn capabilities() -> Value {
    json!({
        "tools": { "listChanged": true },
        "resources": { "subscribe": true, "listChanged": true },
        "prompts": { "listChanged": true },
        "logging": {},
        "completions": {},
    })
}

/// The server's name and version.
fn server_info() -> Value {
    json!({
        "name": NAME,
        "title": "Everything (mcp-manager reference server)",
        "version": env!("CARGO_PKG_VERSION"),
    })
}

/// `initialize`.
fn initialize(call: &Call) -> Result<Reply, ErrorObject<'static>> {
    let params: InitializeParams<'static> = call.view()?;
    let version = VersionSet::default()
        .answer_initialize(&params.protocol_version)
        .ok_or_else(|| invalid_params("no protocol version in common"))?;
    Ok(Reply::Complete(json!({
        "protocolVersion": version,
        "capabilities": capabilities(),
        "serverInfo": server_info(),
        "instructions": INSTRUCTIONS,
    })))
}

/// `server/discover`: the capabilities, and the Tasks extension.
fn discover() -> Value {
    let mut capabilities = capabilities();
    if let Value::Object(offered) = &mut capabilities {
        offered.insert(
            "extensions".to_owned(),
            json!({ (mcp_protocol::mcp::tasks::EXTENSION): {} }),
        );
    }
    json!({
        "supportedVersions": VersionSet::default().versions(),
        "capabilities": capabilities,
        "instructions": INSTRUCTIONS,
        "ttlMs": DISCOVER_TTL_MS,
        "cacheScope": "public",
        "_meta": { (meta_keys::SERVER_INFO): server_info() },
    })
}

/// The part of a listen filter this server honours: the list changes, and
/// updates of resources that exist.
fn honoured(state: &State, requested: &SubscriptionFilter) -> SubscriptionFilter {
    let only_true = |flag: Option<bool>| flag.filter(|on| *on);
    SubscriptionFilter {
        tools_list_changed: only_true(requested.tools_list_changed),
        prompts_list_changed: only_true(requested.prompts_list_changed),
        resources_list_changed: only_true(requested.resources_list_changed),
        resource_subscriptions: requested.resource_subscriptions.as_ref().map(|uris| {
            uris.iter()
                .filter(|uri| resources::exists(state, uri))
                .cloned()
                .collect()
        }),
        extra: serde_json::Map::new(),
    }
}
