//! The checks a 2026-07-28 (stateless) request must pass before anything
//! serves it, in the order the specification gives them: the `_meta`
//! envelope, the HTTP headers that mirror the body, the protocol version,
//! and the methods the revision removed. The first that fails is the
//! [`Refusal`], with its JSON-RPC error and its HTTP status.
//!
//! A request is judged stateless when its `_meta` names a protocol version
//! or client capabilities, when its method exists only in stateless
//! versions (`server/discover`, `subscriptions/listen`), or when its
//! `MCP-Protocol-Version` header names a version that is not a stateful
//! one (2026-07-28, or one this crate does not know); any other request
//! belongs to a session and is left alone.
//!
//! Which methods a server implements is not judged here (a server may
//! implement extension methods); [`http_status`] gives the status its
//! `-32601` answer then gets.

use std::borrow::Cow;

use base64::Engine as _;

use super::{ClientCapabilities, Method, RequestMeta, Sender, View, meta_keys};
use crate::jsonrpc::error_code;
use crate::raw::{Raw, RawObject};
use crate::version::UnsupportedVersion;
use crate::{ErrorObject, ProtocolVersion, VersionSet};

/// The generation a request belongs to, as [`judge`] found it.
#[derive(Debug)]
pub enum Generation<'a> {
    /// A request of a session opened with `initialize`.
    Stateful,
    /// A stateless request that passed every check.
    Stateless {
        /// The version it names.
        version: ProtocolVersion,
        /// Its `_meta`, read.
        meta: Box<RequestMeta<'a>>,
    },
}

/// Why a stateless request is refused before anything serves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `_meta`, or a member it must have, is missing or malformed:
    /// `-32602`, HTTP 400.
    InvalidMeta(Cow<'static, str>),
    /// A header disagrees with the body, or one the body calls for is
    /// missing: `-32020`, HTTP 400.
    HeaderMismatch(Cow<'static, str>),
    /// The version is unknown, stateful, or not one this server speaks:
    /// `-32022` with the supported versions in `data`, HTTP 400.
    UnsupportedVersion(UnsupportedVersion),
    /// A method 2026-07-28 removed (`initialize`, `ping`,
    /// `logging/setLevel`, `resources/subscribe`, `resources/unsubscribe`,
    /// `tasks/result`, `tasks/list`): `-32601`, HTTP 404.
    Removed(Method),
}

impl Refusal {
    /// The JSON-RPC error to answer with.
    #[must_use]
    pub fn to_error_object(&self) -> ErrorObject<'static> {
        match self {
            Self::InvalidMeta(reason) => ErrorObject::new(
                error_code::INVALID_PARAMS,
                format!("Invalid params: {reason}"),
            ),
            Self::HeaderMismatch(reason) => {
                ErrorObject::new(error_code::HEADER_MISMATCH, reason.clone())
            }
            Self::UnsupportedVersion(unsupported) => unsupported.to_error_object(),
            Self::Removed(method) => ErrorObject::new(
                error_code::METHOD_NOT_FOUND,
                format!(
                    "Method not found: `{method}` does not exist in protocol version 2026-07-28"
                ),
            ),
        }
    }

    /// The HTTP status the refusal goes out with.
    #[must_use]
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Removed(_) => 404,
            _ => 400,
        }
    }
}

/// The HTTP status of a JSON-RPC error that answers a stateless request
/// over HTTP: 404 for `-32601` (a method the server does not implement),
/// 400 for the errors 2026-07-28 added (`-32020`, `-32021`, `-32022`), and
/// 200 for any other, which is the server's answer rather than the
/// transport's. (A refused envelope's `-32602` is 400: see
/// [`Refusal::http_status`].)
#[must_use]
pub fn http_status(code: i64) -> u16 {
    match code {
        error_code::METHOD_NOT_FOUND => 404,
        error_code::HEADER_MISMATCH
        | error_code::MISSING_REQUIRED_CLIENT_CAPABILITY
        | error_code::UNSUPPORTED_PROTOCOL_VERSION => 400,
        _ => 200,
    }
}

/// The HTTP headers of a request that mirror its body (2026-07-28),
/// as sent: `None` for a header that is absent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Headers<'h> {
    /// `MCP-Protocol-Version`.
    pub protocol_version: Option<&'h str>,
    /// `Mcp-Method`.
    pub method: Option<&'h str>,
    /// `Mcp-Name`.
    pub name: Option<&'h str>,
}

/// The member of a method's params that its `Mcp-Name` header mirrors:
/// the name of a tool or prompt, the URI of a resource, the id of a task.
#[must_use]
pub fn name_member(method: &str) -> Option<&'static str> {
    match Method::from_name(method)? {
        Method::ToolsCall | Method::PromptsGet => Some("name"),
        Method::ResourcesRead => Some("uri"),
        Method::TasksGet | Method::TasksUpdate | Method::TasksCancel => Some("taskId"),
        _ => None,
    }
}

/// Whether a request is a stateless one (see the module's docs): its
/// method, its params' `_meta` as read (`None` without one), and its
/// `MCP-Protocol-Version` header.
#[must_use]
pub fn is_stateless(method: &str, meta: Option<&RequestMeta<'_>>, header: Option<&str>) -> bool {
    let stateless_only = stateless_only(method);
    let names_envelope =
        meta.is_some_and(|m| m.protocol_version.is_some() || m.client_capabilities.is_some());
    stateless_only || names_envelope || header_is_stateless(header)
}

/// Whether an `MCP-Protocol-Version` header names a version that is not a
/// stateful one (2026-07-28, or one this crate does not know).
fn header_is_stateless(header: Option<&str>) -> bool {
    header.is_some_and(|h| ProtocolVersion::parse(h.trim()).is_none_or(|v| !v.is_stateful()))
}

/// Whether a request may be a stateless one, told from its method, its
/// params' text (without parsing them) and its `MCP-Protocol-Version`
/// header, if the transport has headers: a cheap filter before [`judge`],
/// which answers [`Generation::Stateful`] for every request it rules out.
#[must_use]
pub fn may_be_stateless(method: &str, params: Option<&str>, header: Option<&str>) -> bool {
    stateless_only(method)
        || params.is_some_and(|p| p.contains("io.modelcontextprotocol/"))
        || header_is_stateless(header)
}

/// Whether `method` exists only in stateless versions.
fn stateless_only(method: &str) -> bool {
    Method::from_name(method).is_some_and(|m| {
        m.is_in(ProtocolVersion::V2026_07_28) && !m.is_in(ProtocolVersion::LATEST_STATEFUL)
    })
}

/// Judges a request: [`Generation::Stateful`] for one of a session, the
/// checked version and `_meta` for a stateless one that passes, or why it
/// does not. `params` is the request's params object (`None` without
/// params); `headers` are its HTTP headers, `None` on transports without
/// them; `versions` are those the server speaks.
///
/// # Errors
///
/// The first check the request fails, in the order of [`Refusal`]'s
/// variants.
pub fn judge<'a>(
    method: &str,
    params: Option<&'a RawObject<'_>>,
    headers: Option<&Headers<'_>>,
    versions: &VersionSet,
) -> Result<Generation<'a>, Refusal> {
    let raw_meta = params.and_then(|p| p.get("_meta"));
    let meta = raw_meta.map(|raw| {
        RawObject::from_raw(raw)
            .map_err(|_| Cow::Borrowed("`_meta` must be an object"))
            .and_then(RequestMeta::from_object)
    });
    let header = headers.and_then(|h| h.protocol_version);
    let read = meta.as_ref().and_then(|m| m.as_ref().ok());
    if !is_stateless(method, read, header) {
        return Ok(Generation::Stateful);
    }
    let meta = match meta {
        None => {
            return Err(Refusal::InvalidMeta(Cow::Borrowed(
                "missing `_meta`: a 2026-07-28 request carries the protocol version and the client capabilities in it",
            )));
        }
        Some(Err(reason)) => {
            return Err(Refusal::InvalidMeta(format!("`_meta`: {reason}").into()));
        }
        Some(Ok(meta)) => meta,
    };
    let Some(version) = meta.protocol_version.clone() else {
        return Err(Refusal::InvalidMeta(
            format!("missing `_meta` member `{}`", meta_keys::PROTOCOL_VERSION).into(),
        ));
    };
    if meta.client_capabilities.is_none() {
        return Err(Refusal::InvalidMeta(
            format!(
                "missing `_meta` member `{}`",
                meta_keys::CLIENT_CAPABILITIES
            )
            .into(),
        ));
    }
    if let Some(headers) = headers {
        check_headers(method, params, &version, headers)?;
    }
    let version = versions
        .check_stateless(&version)
        .map_err(Refusal::UnsupportedVersion)?;
    if let Some(removed) = removed(method) {
        return Err(Refusal::Removed(removed));
    }
    Ok(Generation::Stateless {
        version,
        meta: Box::new(meta),
    })
}

/// The headers' agreement with the body: `MCP-Protocol-Version` with the
/// `_meta` version, `Mcp-Method` with the method, and `Mcp-Name` with the
/// member it mirrors (each present, whitespace around a value ignored).
fn check_headers(
    method: &str,
    params: Option<&RawObject<'_>>,
    version: &str,
    headers: &Headers<'_>,
) -> Result<(), Refusal> {
    let mismatch = |what: &str| Refusal::HeaderMismatch(what.to_owned().into());
    if headers.protocol_version.map(str::trim) != Some(version) {
        return Err(mismatch(
            "the MCP-Protocol-Version header does not match the protocol version in `_meta`",
        ));
    }
    if headers.method.map(str::trim) != Some(method) {
        return Err(mismatch(
            "the Mcp-Method header does not match the body's method",
        ));
    }
    let body_name = name_member(method)
        .and_then(|member| params?.get(member))
        .and_then(|raw| Raw::borrowed(raw).into_str());
    if let Some(body_name) = body_name {
        let header = headers.name.map(str::trim).and_then(decode_header_value);
        if header.as_deref() != Some(&*body_name) {
            return Err(mismatch(
                "the Mcp-Name header does not match the body's name (or uri, or task id)",
            ));
        }
    }
    Ok(())
}

/// A value as a header can carry it (what a client sends in `Mcp-Name`):
/// printable ASCII without spaces at its ends as it is, anything else as
/// `=?base64?…?=` ([`decode_header_value`] reads both back).
#[must_use]
pub fn encode_header_value(value: &str) -> Cow<'_, str> {
    let plain = value.bytes().all(|b| (0x20..0x7f).contains(&b))
        && value.trim() == value
        && !(value.starts_with("=?base64?") && value.ends_with("?="));
    if plain {
        Cow::Borrowed(value)
    } else {
        let encoded = base64::engine::general_purpose::STANDARD.encode(value.as_bytes());
        Cow::Owned(format!("=?base64?{encoded}?="))
    }
}

/// A header value as the client meant it: the text of a
/// `=?base64?…?=` value decoded (`None` when that is not canonical base64
/// of UTF-8), any other value as it is.
#[must_use]
pub fn decode_header_value(value: &str) -> Option<Cow<'_, str>> {
    let Some(payload) = value
        .strip_prefix("=?base64?")
        .and_then(|rest| rest.strip_suffix("?="))
    else {
        return Some(Cow::Borrowed(value));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(payload)
        .ok()?;
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

/// The method, when it is one 2026-07-28 removed from what a client may
/// ask (of the Tasks methods, `tasks/result` and `tasks/list`: the others
/// live on in the Tasks extension).
fn removed(method: &str) -> Option<Method> {
    let known = Method::from_name(method)?;
    let clients = matches!(known.sender(), Sender::Client | Sender::Either);
    (clients
        && !known.is_notification()
        && !known.is_in(ProtocolVersion::V2026_07_28)
        && known.is_in(ProtocolVersion::LATEST_STATEFUL))
    .then_some(known)
}

/// The client capability a request to the client needs: `sampling` for
/// `sampling/createMessage`, `elicitation` for `elicitation/create`,
/// `roots` for `roots/list`.
#[must_use]
pub fn capability_for(method: &str) -> Option<&'static str> {
    match Method::from_name(method)? {
        Method::CreateMessage => Some("sampling"),
        Method::Elicit => Some("elicitation"),
        Method::RootsList => Some("roots"),
        _ => None,
    }
}

/// Whether `capabilities` declare the capability named `name` (as
/// [`capability_for`] names them, or any other member).
#[must_use]
pub fn declares(capabilities: &ClientCapabilities, name: &str) -> bool {
    match name {
        "sampling" => capabilities.sampling.is_some(),
        "elicitation" => capabilities.elicitation.is_some(),
        "roots" => capabilities.roots.is_some(),
        "experimental" => capabilities.experimental.is_some(),
        other => capabilities.extra.contains_key(other),
    }
}

/// `-32021`: the request needs client capabilities it did not declare;
/// `data.requiredCapabilities` names each as a capability object.
#[must_use]
pub fn missing_capabilities(names: &[&str]) -> ErrorObject<'static> {
    let required: serde_json::Map<String, serde_json::Value> = names
        .iter()
        .map(|name| ((*name).to_owned(), serde_json::json!({})))
        .collect();
    let mut error = ErrorObject::new(
        error_code::MISSING_REQUIRED_CLIENT_CAPABILITY,
        format!(
            "the request needs the client capability {} and the client did not declare it",
            names.join(" and ")
        ),
    );
    error.data = Some(Raw::from_value(
        &serde_json::json!({ "requiredCapabilities": required }),
    ));
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(json: &str) -> RawObject<'static> {
        let raw = serde_json::value::RawValue::from_string(json.to_owned()).unwrap();
        RawObject::from_cow(Raw::owned(raw)).unwrap()
    }

    const META: &str = r#"{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;

    fn with_meta(rest: &str) -> RawObject<'static> {
        object(&format!(r#"{{{rest}"_meta":{META}}}"#))
    }

    fn headers<'h>(method: &'h str, name: Option<&'h str>) -> Headers<'h> {
        Headers {
            protocol_version: Some("2026-07-28"),
            method: Some(method),
            name,
        }
    }

    fn refusal(
        method: &str,
        params: Option<&RawObject<'_>>,
        headers: Option<&Headers<'_>>,
    ) -> Refusal {
        judge(method, params, headers, &VersionSet::default()).unwrap_err()
    }

    #[test]
    fn sessions_are_left_alone() {
        let params = object(r#"{"name":"x"}"#);
        let judged = judge("tools/call", Some(&params), None, &VersionSet::default());
        assert!(matches!(judged, Ok(Generation::Stateful)));
        let session = Headers {
            protocol_version: Some("2025-11-25"),
            ..Headers::default()
        };
        let judged = judge("ping", None, Some(&session), &VersionSet::default());
        assert!(matches!(judged, Ok(Generation::Stateful)));
    }

    #[test]
    fn the_envelope_is_checked_first() {
        let discover = headers("server/discover", None);
        let missing = refusal("server/discover", Some(&object("{}")), Some(&discover));
        assert!(matches!(missing, Refusal::InvalidMeta(_)));
        assert_eq!(missing.http_status(), 400);
        assert_eq!(missing.to_error_object().code, -32602);
        assert!(matches!(
            refusal("server/discover", None, None),
            Refusal::InvalidMeta(_)
        ));
        let no_caps =
            object(r#"{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}"#);
        assert!(matches!(
            refusal("tools/list", Some(&no_caps), None),
            Refusal::InvalidMeta(reason) if reason.contains("clientCapabilities")
        ));
        let no_version = object(r#"{"_meta":{"io.modelcontextprotocol/clientCapabilities":{}}}"#);
        assert!(matches!(
            refusal("tools/list", Some(&no_version), None),
            Refusal::InvalidMeta(reason) if reason.contains("protocolVersion")
        ));
        let not_object = object(r#"{"_meta":7}"#);
        let list = headers("tools/list", None);
        assert!(matches!(
            refusal("tools/list", Some(&not_object), Some(&list)),
            Refusal::InvalidMeta(_)
        ));
        // Without a header saying otherwise, a malformed `_meta` is a
        // session's business.
        let judged = judge(
            "tools/list",
            Some(&not_object),
            None,
            &VersionSet::default(),
        );
        assert!(matches!(judged, Ok(Generation::Stateful)));
    }

    #[test]
    fn headers_must_mirror_the_body() {
        let params = with_meta(r#""name":"echo","#);
        let ok = headers("tools/call", Some("  echo "));
        assert!(
            judge(
                "tools/call",
                Some(&params),
                Some(&ok),
                &VersionSet::default()
            )
            .is_ok()
        );
        for bad in [
            headers("tools/list", Some("echo")),
            headers("TOOLS/CALL", Some("echo")),
            headers("tools/call", Some("other")),
            headers("tools/call", None),
            Headers {
                method: None,
                ..headers("tools/call", Some("echo"))
            },
            Headers {
                protocol_version: None,
                ..headers("tools/call", Some("echo"))
            },
        ] {
            let refused = refusal("tools/call", Some(&params), Some(&bad));
            assert!(matches!(refused, Refusal::HeaderMismatch(_)), "{bad:?}");
            assert_eq!(refused.to_error_object().code, -32020);
        }
        // A name in base64, as a client sends one that is not plain ASCII.
        let params = with_meta(r#""name":"héllo","#);
        let encoded = headers("tools/call", Some("=?base64?aMOpbGxv?="));
        assert!(
            judge(
                "tools/call",
                Some(&params),
                Some(&encoded),
                &VersionSet::default()
            )
            .is_ok()
        );
        // A task is named by its id.
        let params = with_meta(r#""taskId":"everything/t1","#);
        let named = headers("tasks/get", Some("everything/t1"));
        let judged = judge(
            "tasks/get",
            Some(&params),
            Some(&named),
            &VersionSet::default(),
        );
        assert!(judged.is_ok());
        let wrong = headers("tasks/get", Some("everything/t2"));
        let refused = refusal("tasks/get", Some(&params), Some(&wrong));
        assert!(matches!(refused, Refusal::HeaderMismatch(_)));
    }

    #[test]
    fn a_header_version_is_checked_before_support() {
        let params = object(
            r#"{"_meta":{"io.modelcontextprotocol/protocolVersion":"v9","io.modelcontextprotocol/clientCapabilities":{}}}"#,
        );
        let agreeing = Headers {
            protocol_version: Some("v9"),
            method: Some("server/discover"),
            name: None,
        };
        let unsupported = refusal("server/discover", Some(&params), Some(&agreeing));
        let Refusal::UnsupportedVersion(data) = &unsupported else {
            panic!("{unsupported:?}");
        };
        assert_eq!(data.requested, "v9");
        assert_eq!(unsupported.to_error_object().code, -32022);
        let disagreeing = headers("server/discover", None);
        assert!(matches!(
            refusal("server/discover", Some(&params), Some(&disagreeing)),
            Refusal::HeaderMismatch(_)
        ));
        let only = VersionSet::new([ProtocolVersion::V2026_07_28]);
        let Err(Refusal::UnsupportedVersion(data)) =
            judge("tools/list", Some(&params), None, &only)
        else {
            panic!("refused");
        };
        assert_eq!(data.supported, [ProtocolVersion::V2026_07_28]);
    }

    #[test]
    fn removed_methods_are_404() {
        for method in [
            "initialize",
            "ping",
            "logging/setLevel",
            "resources/subscribe",
            "resources/unsubscribe",
            "tasks/result",
            "tasks/list",
        ] {
            let refused = refusal(method, Some(&with_meta("")), None);
            assert_eq!(
                refused,
                Refusal::Removed(Method::from_name(method).unwrap())
            );
            assert_eq!(refused.http_status(), 404);
            assert_eq!(refused.to_error_object().code, -32601);
        }
        let params = with_meta("");
        for method in [
            "tools/list",
            "tasks/get",
            "tasks/update",
            "tasks/cancel",
            "unknown/method",
            "server/discover",
        ] {
            let judged = judge(method, Some(&params), None, &VersionSet::default());
            assert!(
                matches!(judged, Ok(Generation::Stateless { version, .. }) if version == ProtocolVersion::V2026_07_28),
                "{method}"
            );
        }
    }

    #[test]
    fn header_values_encode() {
        assert_eq!(encode_header_value("echo"), "echo");
        assert_eq!(encode_header_value(" echo"), "=?base64?IGVjaG8=?=");
        assert_eq!(
            encode_header_value("=?base64?x?="),
            "=?base64?PT9iYXNlNjQ/eD89?="
        );
        assert_eq!(encode_header_value("héllo"), "=?base64?aMOpbGxv?=");
    }

    #[test]
    fn header_values_decode() {
        assert_eq!(decode_header_value("plain").as_deref(), Some("plain"));
        assert_eq!(
            decode_header_value("=?base64?SGVsbG8=?=").as_deref(),
            Some("Hello")
        );
        assert_eq!(decode_header_value("=?base64?SGVsbG8?="), None, "padding");
        assert_eq!(decode_header_value("=?base64?SGVs!!!bG8=?="), None);
        // Without both ends of the wrapper the value is literal.
        assert_eq!(
            decode_header_value("=?base64?SGVsbG8=").as_deref(),
            Some("=?base64?SGVsbG8=")
        );
    }

    #[test]
    fn statuses_and_capabilities() {
        assert_eq!(http_status(-32601), 404);
        assert_eq!(http_status(-32021), 400);
        assert_eq!(http_status(-32602), 200);
        assert_eq!(capability_for("sampling/createMessage"), Some("sampling"));
        assert_eq!(capability_for("tools/call"), None);
        let caps: ClientCapabilities =
            serde_json::from_str(r#"{"elicitation":{},"tasks":{}}"#).unwrap();
        assert!(declares(&caps, "elicitation") && declares(&caps, "tasks"));
        assert!(!declares(&caps, "sampling"));
        let error = missing_capabilities(&["sampling"]);
        assert_eq!(error.code, -32021);
        let data: serde_json::Value = serde_json::from_str(error.data.unwrap().get()).unwrap();
        assert_eq!(
            data["requiredCapabilities"]["sampling"],
            serde_json::json!({})
        );
    }
}
