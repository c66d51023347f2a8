//! The values every JSON-RPC message is made of: request ids (and
//! progress tokens, which have their shape), error objects, and the
//! standard and MCP-specific error codes. The envelope that carries them is
//! `jsonrpc`'s.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::raw::{CowStr, Raw, first_byte};

/// Standard and MCP-specific JSON-RPC error codes.
pub mod error_code {
    /// Invalid JSON was received.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON sent is not a valid request object.
    pub const INVALID_REQUEST: i64 = -32600;
    /// The method does not exist or is not available.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid method parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal JSON-RPC error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// A resource that does not exist (MCP).
    pub const RESOURCE_NOT_FOUND: i64 = -32002;
    /// An `Mcp-Method` or `Mcp-Name` header disagrees with the body (2026-07-28).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// The request needs a client capability that was not declared (2026-07-28).
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// The per-request protocol version is not supported (2026-07-28).
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// A URL-mode elicitation must complete first (2025-11-25).
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
}

/// A request id, or anything else with the same shape (a progress token):
/// MCP allows a string or an integer, never null.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestId<'a> {
    /// An integer id.
    Number(i64),
    /// A string id.
    String(Cow<'a, str>),
}

/// A progress token has the same shape as a request id.
pub type ProgressToken<'a> = RequestId<'a>;

impl RequestId<'_> {
    /// The same id, owning its string.
    #[must_use]
    pub fn into_owned(self) -> RequestId<'static> {
        match self {
            Self::Number(n) => RequestId::Number(n),
            Self::String(s) => RequestId::String(Cow::Owned(s.into_owned())),
        }
    }

    /// A borrowed copy of this id.
    #[must_use]
    pub fn reborrow(&self) -> RequestId<'_> {
        match self {
            Self::Number(n) => RequestId::Number(*n),
            Self::String(s) => RequestId::String(Cow::Borrowed(s)),
        }
    }

    /// Reads an id from raw JSON. `Ok(None)` means the JSON was `null`.
    pub(crate) fn from_raw(raw: &RawValue) -> Result<Option<RequestId<'_>>, &'static str> {
        let text = raw.get();
        match first_byte(text) {
            Some(b'"') => serde_json::from_str::<CowStr<'_>>(text)
                .map(|s| Some(RequestId::String(s.0)))
                .map_err(|_| "is not a valid string"),
            Some(b'-' | b'0'..=b'9') => text
                .parse::<i64>()
                .map(|n| Some(RequestId::Number(n)))
                .map_err(|_| "must be a string or an integer that fits in 64 bits"),
            Some(b'n') => Ok(None),
            _ => Err("must be a string or an integer"),
        }
    }
}

impl From<i64> for RequestId<'_> {
    fn from(n: i64) -> Self {
        Self::Number(n)
    }
}

impl<'a> From<&'a str> for RequestId<'a> {
    fn from(s: &'a str) -> Self {
        Self::String(Cow::Borrowed(s))
    }
}

impl From<String> for RequestId<'_> {
    fn from(s: String) -> Self {
        Self::String(Cow::Owned(s))
    }
}

impl fmt::Display for RequestId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{s:?}"),
        }
    }
}

impl Serialize for RequestId<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Number(n) => serializer.serialize_i64(*n),
            Self::String(s) => serializer.serialize_str(s),
        }
    }
}

impl<'de: 'a, 'a> serde::Deserialize<'de> for RequestId<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(deserializer)?;
        match RequestId::from_raw(raw) {
            Ok(Some(id)) => Ok(id),
            Ok(None) => Err(de::Error::custom("an id must not be null")),
            Err(reason) => Err(de::Error::custom(format_args!("an id {reason}"))),
        }
    }
}

/// The `error` member of an error response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorObject<'a> {
    /// The error code; see [`error_code`].
    pub code: i64,
    /// A short description of the error.
    pub message: Cow<'a, str>,
    /// Additional information, kept as raw JSON.
    pub data: Option<Raw<'a>>,
}

impl<'a> ErrorObject<'a> {
    /// An error object without `data`.
    pub fn new(code: i64, message: impl Into<Cow<'a, str>>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error object, owning its contents.
    #[must_use]
    pub fn into_owned(self) -> ErrorObject<'static> {
        ErrorObject {
            code: self.code,
            message: Cow::Owned(self.message.into_owned()),
            data: self.data.map(Raw::into_owned),
        }
    }

    pub(crate) fn from_raw(raw: &'a RawValue) -> Result<Self, &'static str> {
        let mut code = None;
        let mut message = None;
        let mut data = None;
        let fields =
            crate::raw::RawObject::from_raw(raw).map_err(|_| "`error` must be an object")?;
        for (key, value) in fields.into_entries() {
            match &*key {
                "code" => {
                    let parsed = value.get().parse::<i64>();
                    code = Some(parsed.map_err(|_| "`error.code` must be an integer")?);
                }
                "message" => {
                    let parsed = value.into_str();
                    message = Some(parsed.ok_or("`error.message` must be a string")?);
                }
                "data" => data = Some(value),
                _ => {}
            }
        }
        Ok(Self {
            code: code.ok_or("`error.code` is missing")?,
            message: message.ok_or("`error.message` is missing")?,
            data,
        })
    }
}

impl Serialize for ErrorObject<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2 + usize::from(self.data.is_some())))?;
        map.serialize_entry("code", &self.code)?;
        map.serialize_entry("message", &self.message)?;
        if let Some(data) = &self.data {
            map.serialize_entry("data", data)?;
        }
        map.end()
    }
}
