//! The views themselves, declared with the `view!` macro.

use std::borrow::Cow;

use super::meta_keys;
use super::types::{
    ClientCapabilities, Implementation, LoggingLevel, ServerCapabilities, SubscriptionFilter,
    ToolAnnotations,
};
use super::view;
use crate::jsonrpc::{ProgressToken, RequestId};
use crate::raw::Raw;

view! {
    /// The `_meta` of a request: its progress token and, in 2026-07-28, the
    /// protocol version, client capabilities and client info of this request.
    pub struct RequestMeta<'a> {
        /// The token progress notifications for this request will carry.
        progress_token: ProgressToken<'a> = optional meta_keys::PROGRESS_TOKEN,
        /// The protocol version of a stateless request.
        protocol_version: Cow<'a, str> = optional meta_keys::PROTOCOL_VERSION,
        /// The client's capabilities for this request.
        client_capabilities: ClientCapabilities = optional meta_keys::CLIENT_CAPABILITIES,
        /// The client's name and version.
        client_info: Implementation = optional meta_keys::CLIENT_INFO,
        /// The log level the client wants for this request.
        log_level: LoggingLevel = optional meta_keys::LOG_LEVEL,
    }
}

impl RequestMeta<'_> {
    /// Whether the request is a stateless one: its `_meta` names a protocol
    /// version without sessions (2026-07-28).
    #[must_use]
    pub fn is_stateless(&self) -> bool {
        self.protocol_version
            .as_deref()
            .and_then(crate::ProtocolVersion::parse)
            .is_some_and(|version| !version.is_stateful())
    }

    /// The W3C `traceparent` carried in `_meta`, if any.
    #[must_use]
    pub fn traceparent(&self) -> Option<Cow<'_, str>> {
        self.rest
            .get(meta_keys::TRACEPARENT)
            .and_then(|raw| Raw::borrowed(raw).into_str())
    }
}

view! {
    /// The `_meta` of a result.
    pub struct ResultMeta<'a> {
        /// The server's name and version (2026-07-28).
        server_info: Implementation = optional meta_keys::SERVER_INFO,
    }
}

view! {
    /// Params of a request that has nothing but `_meta` (`ping`,
    /// `server/discover`, ...).
    pub struct RequestParams<'a> {
        /// Request metadata.
        meta: RequestMeta<'a> = optional "_meta",
    }
}

view! {
    /// Params of `initialize`.
    pub struct InitializeParams<'a> {
        /// The version the client proposes.
        protocol_version: Cow<'a, str> = required "protocolVersion",
        /// What the client offers.
        capabilities: ClientCapabilities = required "capabilities",
        /// The client's name and version.
        client_info: Implementation = required "clientInfo",
        /// Request metadata.
        meta: RequestMeta<'a> = optional "_meta",
    }
}

view! {
    /// Result of `initialize`.
    pub struct InitializeResult<'a> {
        /// The version the server will speak.
        protocol_version: Cow<'a, str> = required "protocolVersion",
        /// What the server offers.
        capabilities: ServerCapabilities = required "capabilities",
        /// The server's name and version.
        server_info: Implementation = required "serverInfo",
        /// Guidance for the model.
        instructions: Cow<'a, str> = optional "instructions",
    }
}

view! {
    /// Result of `server/discover` (2026-07-28).
    pub struct DiscoverResult<'a> {
        /// The versions the server speaks.
        supported_versions: Vec<Cow<'a, str>> = required "supportedVersions",
        /// What the server offers.
        capabilities: ServerCapabilities = required "capabilities",
        /// Guidance for the model.
        instructions: Cow<'a, str> = optional "instructions",
        /// How long the answer may be cached, in milliseconds.
        ttl_ms: u64 = optional "ttlMs",
        /// `public` or `private`.
        cache_scope: Cow<'a, str> = optional "cacheScope",
        /// `complete` for a discover result.
        result_type: Cow<'a, str> = optional "resultType",
        /// Result metadata, with the server's name and version.
        meta: ResultMeta<'a> = optional "_meta",
    }
}

view! {
    /// Params of a list request (`tools/list`, `resources/list`, ...).
    pub struct PaginatedParams<'a> {
        /// Where the previous page ended.
        cursor: Cow<'a, str> = optional "cursor",
        /// Request metadata.
        meta: RequestMeta<'a> = optional "_meta",
    }
}

view! {
    /// A tool in a `tools/list` result. Only the name is read; the schemas
    /// and everything else stay raw in `rest`.
    pub struct Tool<'a> {
        /// The tool's name, unique within its server.
        name: Cow<'a, str> = required "name",
    }
}

impl Tool<'_> {
    /// The tool's annotations; absent or malformed annotations read as none.
    #[must_use]
    pub fn annotations(&self) -> ToolAnnotations {
        self.rest
            .get("annotations")
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
            .unwrap_or_default()
    }
}

view! {
    /// A resource in a `resources/list` result.
    pub struct Resource<'a> {
        /// The resource's URI.
        uri: Cow<'a, str> = required "uri",
        /// The resource's name.
        name: Cow<'a, str> = optional "name",
    }
}

view! {
    /// A resource template in a `resources/templates/list` result.
    pub struct ResourceTemplate<'a> {
        /// The RFC 6570 URI template.
        uri_template: Cow<'a, str> = required "uriTemplate",
        /// The template's name.
        name: Cow<'a, str> = optional "name",
    }
}

view! {
    /// A prompt in a `prompts/list` result.
    pub struct Prompt<'a> {
        /// The prompt's name, unique within its server.
        name: Cow<'a, str> = required "name",
    }
}

view! {
    /// Result of `tools/list`.
    pub struct ListToolsResult<'a> {
        /// This page of tools.
        tools: Vec<Tool<'a>> = required "tools",
        /// Where the next page starts; absent on the last page.
        next_cursor: Cow<'a, str> = optional "nextCursor",
    }
}

view! {
    /// Result of `resources/list`.
    pub struct ListResourcesResult<'a> {
        /// This page of resources.
        resources: Vec<Resource<'a>> = required "resources",
        /// Where the next page starts; absent on the last page.
        next_cursor: Cow<'a, str> = optional "nextCursor",
    }
}

view! {
    /// Result of `resources/templates/list`.
    pub struct ListResourceTemplatesResult<'a> {
        /// This page of templates.
        resource_templates: Vec<ResourceTemplate<'a>> = required "resourceTemplates",
        /// Where the next page starts; absent on the last page.
        next_cursor: Cow<'a, str> = optional "nextCursor",
    }
}

view! {
    /// Result of `prompts/list`.
    pub struct ListPromptsResult<'a> {
        /// This page of prompts.
        prompts: Vec<Prompt<'a>> = required "prompts",
        /// Where the next page starts; absent on the last page.
        next_cursor: Cow<'a, str> = optional "nextCursor",
    }
}

view! {
    /// Params of `tools/call`.
    pub struct CallToolParams<'a> {
        /// The tool to call.
        name: Cow<'a, str> = required "name",
        /// The arguments, kept raw.
        arguments: Raw<'a> = optional "arguments",
        /// Request metadata.
        meta: RequestMeta<'a> = optional "_meta",
    }
}

view! {
    /// Result of `tools/call`. The content stays raw: a gateway forwards it
    /// without parsing it.
    pub struct CallToolResult<'a> {
        /// Whether the tool reported an error.
        is_error: bool = optional "isError",
        /// `complete` or `input_required` (2026-07-28); absent means complete.
        result_type: Cow<'a, str> = optional "resultType",
    }
}

view! {
    /// A result asking the client for input before the request can finish
    /// (`resultType: "input_required"`, 2026-07-28).
    pub struct InputRequiredResult<'a> {
        /// Always `input_required`.
        result_type: Cow<'a, str> = required "resultType",
        /// The questions, keyed by the name the answers must use.
        input_requests: Raw<'a> = optional "inputRequests",
        /// State to echo back with the answers.
        request_state: Cow<'a, str> = optional "requestState",
    }
}

view! {
    /// Params of a request about one resource: `resources/read`,
    /// `resources/subscribe`, `resources/unsubscribe`.
    pub struct ResourceRequestParams<'a> {
        /// The resource's URI.
        uri: Cow<'a, str> = required "uri",
        /// Request metadata.
        meta: RequestMeta<'a> = optional "_meta",
    }
}

view! {
    /// Params of `prompts/get`.
    pub struct GetPromptParams<'a> {
        /// The prompt to get.
        name: Cow<'a, str> = required "name",
        /// The prompt's arguments, kept raw.
        arguments: Raw<'a> = optional "arguments",
        /// Request metadata.
        meta: RequestMeta<'a> = optional "_meta",
    }
}

view! {
    /// What `completion/complete` completes: a prompt (`ref/prompt`, by
    /// name) or a resource template (`ref/resource`, by URI).
    pub struct CompletionRef<'a> {
        /// `ref/prompt` or `ref/resource`.
        kind: Cow<'a, str> = required "type",
        /// The prompt's name, for `ref/prompt`.
        name: Cow<'a, str> = optional "name",
        /// The template's URI, for `ref/resource`.
        uri: Cow<'a, str> = optional "uri",
    }
}

/// What a completion is for, as routing needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompletionTarget<'r> {
    /// A prompt's argument.
    Prompt(&'r str),
    /// A resource template's variable.
    ResourceTemplate(&'r str),
}

impl CompletionRef<'_> {
    /// The prompt or template this completion is for; `None` for a kind of
    /// reference this crate does not know or one missing its name or URI.
    #[must_use]
    pub fn target(&self) -> Option<CompletionTarget<'_>> {
        match &*self.kind {
            "ref/prompt" => self.name.as_deref().map(CompletionTarget::Prompt),
            "ref/resource" => self.uri.as_deref().map(CompletionTarget::ResourceTemplate),
            _ => None,
        }
    }
}

view! {
    /// Params of `completion/complete`.
    pub struct CompleteParams<'a> {
        /// What is being completed.
        reference: CompletionRef<'a> = required "ref",
        /// The argument being completed (`name` and partial `value`), raw.
        argument: Raw<'a> = required "argument",
        /// Request metadata.
        meta: RequestMeta<'a> = optional "_meta",
    }
}

view! {
    /// Params of `logging/setLevel`.
    pub struct SetLevelParams<'a> {
        /// The lowest level to send.
        level: LoggingLevel = required "level",
    }
}

view! {
    /// Params of `subscriptions/listen` (2026-07-28).
    pub struct SubscriptionsListenParams<'a> {
        /// Which notifications to stream.
        notifications: SubscriptionFilter = required "notifications",
        /// Request metadata.
        meta: RequestMeta<'a> = optional "_meta",
    }
}

view! {
    /// Params of `notifications/cancelled`.
    pub struct CancelledParams<'a> {
        /// The request to cancel. Optional in 2025-11-25 (tasks are cancelled
        /// with `tasks/cancel`), required otherwise.
        request_id: RequestId<'a> = optional "requestId",
        /// Why.
        reason: Cow<'a, str> = optional "reason",
    }
}

view! {
    /// Params of `notifications/progress`.
    pub struct ProgressParams<'a> {
        /// The token of the request this reports on.
        progress_token: ProgressToken<'a> = required "progressToken",
        /// Progress so far; increases with each notification.
        progress: f64 = required "progress",
        /// The total, when known.
        total: f64 = optional "total",
        /// A human-readable message.
        message: Cow<'a, str> = optional "message",
    }
}

view! {
    /// Params of `notifications/resources/updated`.
    pub struct ResourceUpdatedParams<'a> {
        /// The resource that changed.
        uri: Cow<'a, str> = required "uri",
    }
}

view! {
    /// Params of `notifications/message` (a log message).
    pub struct LoggingMessageParams<'a> {
        /// Severity.
        level: LoggingLevel = required "level",
        /// The logger's name.
        logger: Cow<'a, str> = optional "logger",
        /// The message: any JSON, kept raw.
        data: Raw<'a> = required "data",
    }
}
