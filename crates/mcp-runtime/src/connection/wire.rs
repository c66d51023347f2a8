//! What the connection puts on the wire and reads off it, as plain
//! functions: the handshake requests and the reading of their answers, the
//! `_meta` every stateless request carries, and the rewriting of a caller's
//! params (progress token, stateless `_meta`).

use std::borrow::Cow;

use mcp_protocol::mcp::{
    DiscoverResult, Implementation, InitializeResult, Method, RequestMeta, View, meta_keys,
};
use mcp_protocol::raw::{Raw, RawObject};
use mcp_protocol::{Message, Notification, ProtocolVersion, RequestId, VersionSet};
use serde_json::{Value, json};

use super::{ProgressRoute, ProgressSink};
use crate::error::{Error, ErrorKind, Result};
use crate::server::SessionInfo;

/// The `_meta` members a stateless request carries.
pub(super) type StatelessMeta = Vec<(&'static str, Raw<'static>)>;

/// The client's name and version, as sent to servers.
fn client_info() -> Value {
    json!({"name": "mcp-manager", "version": env!("CARGO_PKG_VERSION")})
}

/// What the manager, as a client, tells servers it can do: ask
/// its own clients for sampling and elicitation on the server's behalf
/// (see [`crate::CallOptions::requester`]), in `initialize` and in every
/// stateless request. Roots are declared only to a per-client server's
/// instances, since a server may ask for them at any time, with no caller
/// to put them to, and only such an instance has one client to ask.
fn client_capabilities() -> Value {
    json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}})
}

/// The `_meta` members every stateless (2026-07-28) request carries.
pub(super) fn stateless_meta() -> StatelessMeta {
    vec![
        (
            meta_keys::PROTOCOL_VERSION,
            Raw::from_value(ProtocolVersion::V2026_07_28.as_str()),
        ),
        (
            meta_keys::CLIENT_CAPABILITIES,
            Raw::from_value(&client_capabilities()),
        ),
        (meta_keys::CLIENT_INFO, Raw::from_value(&client_info())),
    ]
}

/// The `initialize` request, for the latest stateful version; with
/// `roots`, the roots capability is declared too (a per-client server's).
pub(super) fn initialize_request(id: i64, roots: bool) -> Message<'static> {
    let mut capabilities = client_capabilities();
    if let (true, Value::Object(offered)) = (roots, &mut capabilities) {
        offered.insert("roots".to_owned(), json!({"listChanged": true}));
    }
    let params = json!({
        "protocolVersion": ProtocolVersion::LATEST_STATEFUL.as_str(),
        "capabilities": capabilities,
        "clientInfo": client_info(),
    });
    Message::request(
        id,
        Method::Initialize.as_str(),
        Some(Raw::from_value(&params)),
    )
}

/// The stateless `_meta` as a JSON object.
fn stateless_meta_object() -> serde_json::Map<String, Value> {
    stateless_meta()
        .into_iter()
        .map(|(key, raw)| (key.to_owned(), raw.parse().unwrap_or(Value::Null)))
        .collect()
}

/// The `server/discover` request, with the stateless `_meta`.
pub(super) fn discover_request(id: i64) -> Message<'static> {
    let meta = stateless_meta_object();
    Message::request(
        id,
        Method::Discover.as_str(),
        Some(Raw::from_value(&json!({ "_meta": meta }))),
    )
}

/// The `subscriptions/listen` request for every list change and the
/// updates of the `watched` resources, with the stateless `_meta`.
pub(super) fn listen_request(id: i64, watched: &[String]) -> Message<'static> {
    let meta = stateless_meta_object();
    let mut notifications = json!({
        "toolsListChanged": true,
        "promptsListChanged": true,
        "resourcesListChanged": true,
    });
    if let (false, Value::Object(wanted)) = (watched.is_empty(), &mut notifications) {
        wanted.insert("resourceSubscriptions".to_owned(), json!(watched));
    }
    let params = json!({
        "notifications": notifications,
        "_meta": meta,
    });
    Message::request(
        id,
        Method::SubscriptionsListen.as_str(),
        Some(Raw::from_value(&params)),
    )
}

/// A notification without the `_meta` member that tags it with a listen
/// stream (and without `_meta` when nothing else is left in it).
pub(super) fn untagged(mut notification: Notification<'static>) -> Notification<'static> {
    let Some(Ok(mut params)) = notification.params.take().map(RawObject::from_cow) else {
        return notification;
    };
    if let Some(Ok(mut meta)) = params.remove("_meta").map(RawObject::from_cow) {
        meta.remove(meta_keys::SUBSCRIPTION_ID);
        if !meta.is_empty() {
            params.insert("_meta", Raw::owned(meta.to_raw()));
        }
    }
    notification.params = Some(Raw::owned(params.to_raw()));
    notification
}

/// The stateless `_meta` members with the log level `level` besides,
/// when there is one.
pub(super) fn stateless_meta_at(level: Option<mcp_protocol::mcp::LoggingLevel>) -> StatelessMeta {
    let mut meta = stateless_meta();
    if let Some(level) = level {
        meta.push((meta_keys::LOG_LEVEL, Raw::from_value(&level)));
    }
    meta
}

/// Whether a server says it announces changes of any of its lists.
pub(super) fn announces_changes(info: &SessionInfo) -> bool {
    let capabilities = &info.capabilities;
    let listed = |c: &Option<mcp_protocol::mcp::ListChangedCapability>| {
        c.as_ref().is_some_and(|c| c.list_changed == Some(true))
    };
    listed(&capabilities.tools)
        || listed(&capabilities.prompts)
        || capabilities
            .resources
            .as_ref()
            .is_some_and(|r| r.list_changed == Some(true))
}

/// Whether `error` is an unsupported-version error whose list of supported
/// versions names the one the manager speaks statelessly.
pub(super) fn supports_ours(error: &Error) -> bool {
    let Some(rpc) = error.rpc_error() else {
        return false;
    };
    if rpc.code != mcp_protocol::jsonrpc::error_code::UNSUPPORTED_PROTOCOL_VERSION {
        return false;
    }
    let supported = rpc
        .data
        .as_ref()
        .and_then(|data| serde_json::from_str::<Value>(data.get()).ok())
        .and_then(|data| data.get("supported").cloned());
    supported
        .and_then(|s| s.as_array().cloned())
        .is_some_and(|versions| {
            versions
                .iter()
                .any(|v| v.as_str() == Some(ProtocolVersion::V2026_07_28.as_str()))
        })
}

/// Reads the answer to `initialize`.
pub(super) fn read_initialize(result: Raw<'static>) -> Result<SessionInfo> {
    let init = InitializeResult::from_result(result).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("bad answer to `initialize`: {e}"),
        )
    })?;
    let version = ProtocolVersion::parse(&init.protocol_version).ok_or_else(|| {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "the server answered `initialize` with protocol version {:?}, which mcp-manager does not speak",
                init.protocol_version
            ),
        )
    })?;
    Ok(SessionInfo {
        protocol_version: version,
        capabilities: init.capabilities,
        server_info: init.server_info,
        instructions: init.instructions.map(Cow::into_owned),
        dual: false,
    })
}

/// Reads the answer to `server/discover`; a server that gives no name is
/// called `server`.
pub(super) fn read_discover(result: Raw<'static>, server: &str) -> Result<SessionInfo> {
    let discover = DiscoverResult::from_result(result).map_err(|e| {
        Error::new(
            ErrorKind::Protocol,
            format!("bad answer to `server/discover`: {e}"),
        )
    })?;
    let ours = VersionSet::new([ProtocolVersion::V2026_07_28]);
    let version = ours.select(discover.supported_versions.iter().map(|v| &**v)).ok_or_else(|| {
        Error::new(
            ErrorKind::Protocol,
            format!(
                "the server supports protocol versions {:?}, none of which mcp-manager speaks statelessly",
                discover.supported_versions
            ),
        )
    })?;
    let server_info = discover
        .meta
        .and_then(|meta| meta.server_info)
        .unwrap_or_else(|| Implementation::new(server, "unknown"));
    Ok(SessionInfo {
        protocol_version: version,
        capabilities: discover.capabilities,
        server_info,
        instructions: discover.instructions.map(Cow::into_owned),
        dual: false,
    })
}

/// Prepares a request's params for the wire: swaps the caller's progress
/// token for the request's own id (so the server's progress notifications
/// can be routed back; a token the caller cannot receive progress for is
/// removed), and for a stateless session adds the `_meta` members every
/// request must carry. Params that need neither pass through untouched.
pub(super) fn prepare_params(
    params: Option<Raw<'static>>,
    id: i64,
    sink: Option<ProgressSink>,
    stateless: Option<&[(&'static str, Raw<'static>)]>,
) -> Result<(Option<Raw<'static>>, Option<ProgressRoute>)> {
    let has_token = params
        .as_ref()
        .is_some_and(|raw| raw.get().contains(meta_keys::PROGRESS_TOKEN));
    if !has_token && stateless.is_none() {
        return Ok((params, None));
    }
    let invalid = |what: &str| Error::new(ErrorKind::Protocol, format!("invalid params: {what}"));
    let mut object = match params {
        Some(raw) => RawObject::from_cow(raw).map_err(|_| invalid("`params` must be an object"))?,
        None => RawObject::new(),
    };
    let meta = object.remove("_meta");
    let mut meta = RequestMeta::from_params(meta).map_err(|e| invalid(e.message()))?;
    let route = match (meta.progress_token.take(), sink) {
        (Some(token), Some(sink)) => {
            meta.progress_token = Some(RequestId::Number(id));
            Some((sink, token.into_owned()))
        }
        _ => None,
    };
    let mut meta =
        RawObject::from_cow(meta.to_raw()).map_err(|_| invalid("`_meta` must be an object"))?;
    for (key, value) in stateless.unwrap_or_default() {
        if !meta.contains_key(key) {
            meta.insert(*key, value.clone());
        }
    }
    if !meta.is_empty() {
        object.insert("_meta", Raw::owned(meta.to_raw()));
    }
    Ok((Some(Raw::owned(object.to_raw())), route))
}

/// Rewrites a progress notification's params for the caller: the request's
/// own id as token becomes the caller's `token`; every other member stays
/// as it came.
pub(super) fn progress_for_caller(
    mut params: RawObject<'static>,
    token: &RequestId<'static>,
) -> Raw<'static> {
    params.insert(meta_keys::PROGRESS_TOKEN, Raw::from_value(token));
    Raw::owned(params.to_raw())
}
