//! The JSON-RPC 2.0 envelope: requests, notifications, responses, error
//! responses and batches.
//!
//! The parser is written by hand over serde's visitor interface instead of an
//! untagged enum, for two reasons. First, precise errors: a message is read
//! into its raw members in one pass, then classified, so the reason for a
//! rejection names the member at fault and the request id is kept whenever it
//! was readable. Second, no copies: `params`, `result` and `error.data` stay
//! borrowed slices of the input ([`RawValue`]), and `method` borrows the input
//! unless it contains escapes.
//!
//! What the JSON-RPC 2.0 specification and MCP forbid is refused with the
//! right code: bytes that are not JSON get [`ErrorKind::Parse`] (`-32700`),
//! JSON that is not a message gets [`ErrorKind::InvalidRequest`] (`-32600`).
//! That covers a wrong or missing `jsonrpc`, a null, fractional or boolean
//! request id, a response with both `result` and `error`, a request that also
//! carries a `result`, `params` that are not structured, duplicate members,
//! an empty batch, and a batch where the negotiated version has none.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use crate::error::{Error, ErrorKind, Result, invalid_request};
use crate::raw::{CowStr, Raw, first_byte};
pub use crate::values::{ErrorObject, ProgressToken, RequestId, error_code};

/// A request: it has an id and expects a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request<'a> {
    /// The request id; never null.
    pub id: RequestId<'a>,
    /// The method name.
    pub method: Cow<'a, str>,
    /// The parameters, an object or an array, kept as raw JSON.
    pub params: Option<Raw<'a>>,
}

/// A notification: no id, no response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification<'a> {
    /// The method name.
    pub method: Cow<'a, str>,
    /// The parameters, an object or an array, kept as raw JSON.
    pub params: Option<Raw<'a>>,
}

/// A successful response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response<'a> {
    /// The id of the request this answers.
    pub id: RequestId<'a>,
    /// The result, kept as raw JSON.
    pub result: Raw<'a>,
}

/// An error response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorResponse<'a> {
    /// The id of the request this answers; `None` when the request's id could
    /// not be read (sent as `null`).
    pub id: Option<RequestId<'a>>,
    /// What went wrong.
    pub error: ErrorObject<'a>,
}

/// Any single JSON-RPC message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// A request.
    Request(Request<'a>),
    /// A notification.
    Notification(Notification<'a>),
    /// A successful response.
    Response(Response<'a>),
    /// An error response.
    Error(ErrorResponse<'a>),
}

/// Whether batches (JSON arrays of messages) are accepted. Only protocol
/// version 2025-03-26 has them; see
/// [`Features::batches`](crate::version::Features::batches).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchPolicy {
    /// Arrays of messages are accepted.
    Allow,
    /// An array is an invalid request.
    Reject,
}

/// What one read of the wire holds: one message or a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    /// A single message.
    Single(Message<'a>),
    /// A batch; each element is parsed on its own, so one bad element does
    /// not spoil the others.
    Batch(Vec<Result<Message<'a>>>),
}

impl<'a> Packet<'a> {
    /// Parses one packet (a message or, when `batches` allows it, a batch).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Parse`] when `bytes` is not JSON, [`ErrorKind::InvalidRequest`]
    /// when it is JSON but not a message, or a batch where none is allowed.
    pub fn parse(bytes: &'a [u8], batches: BatchPolicy) -> Result<Self> {
        match parse_top(bytes)? {
            Top::Object(fields) => fields.classify().map(Packet::Single),
            Top::Array(items) => match batches {
                BatchPolicy::Reject => Err(invalid_request(
                    "batches are not supported by the negotiated protocol version",
                )),
                BatchPolicy::Allow if items.is_empty() => {
                    Err(invalid_request("a batch must not be empty"))
                }
                BatchPolicy::Allow => Ok(Packet::Batch(
                    items
                        .into_iter()
                        .map(|raw| Message::parse(raw.get().as_bytes()))
                        .collect(),
                )),
            },
            Top::Other => Err(invalid_request("a message must be a JSON object")),
        }
    }

    /// Serializes the packet to compact JSON.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(&mut out);
        out
    }

    /// Appends the packet as compact JSON to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        write_json(self, out);
    }
}

impl Serialize for Packet<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Self::Single(message) => message.serialize(serializer),
            Self::Batch(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    match item {
                        Ok(message) => seq.serialize_element(message)?,
                        Err(error) => {
                            seq.serialize_element(&Message::Error(error.to_response()))?
                        }
                    }
                }
                seq.end()
            }
        }
    }
}

impl<'a> Message<'a> {
    /// Parses exactly one message (no batch).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Parse`] when `bytes` is not JSON, [`ErrorKind::InvalidRequest`]
    /// when it is JSON but not a valid JSON-RPC 2.0 message. The error keeps
    /// the request id when it could be read.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        match parse_top(bytes)? {
            Top::Object(fields) => fields.classify(),
            Top::Array(_) => Err(invalid_request("expected one message, found a batch")),
            Top::Other => Err(invalid_request("a message must be a JSON object")),
        }
    }

    /// A request.
    pub fn request(
        id: impl Into<RequestId<'a>>,
        method: impl Into<Cow<'a, str>>,
        params: Option<Raw<'a>>,
    ) -> Self {
        Self::Request(Request {
            id: id.into(),
            method: method.into(),
            params,
        })
    }

    /// A notification.
    pub fn notification(method: impl Into<Cow<'a, str>>, params: Option<Raw<'a>>) -> Self {
        Self::Notification(Notification {
            method: method.into(),
            params,
        })
    }

    /// A successful response.
    pub fn response(id: impl Into<RequestId<'a>>, result: Raw<'a>) -> Self {
        Self::Response(Response {
            id: id.into(),
            result,
        })
    }

    /// An error response.
    pub fn error(id: Option<RequestId<'a>>, error: ErrorObject<'a>) -> Self {
        Self::Error(ErrorResponse { id, error })
    }

    /// The method of a request or notification.
    #[must_use]
    pub fn method(&self) -> Option<&str> {
        match self {
            Self::Request(r) => Some(&r.method),
            Self::Notification(n) => Some(&n.method),
            Self::Response(_) | Self::Error(_) => None,
        }
    }

    /// The id of a request or response.
    #[must_use]
    pub fn id(&self) -> Option<&RequestId<'a>> {
        match self {
            Self::Request(r) => Some(&r.id),
            Self::Response(r) => Some(&r.id),
            Self::Error(e) => e.id.as_ref(),
            Self::Notification(_) => None,
        }
    }

    /// The same message, owning everything it holds (one copy of each raw
    /// member that was borrowed).
    #[must_use]
    pub fn into_owned(self) -> Message<'static> {
        match self {
            Self::Request(r) => Message::Request(Request {
                id: r.id.into_owned(),
                method: Cow::Owned(r.method.into_owned()),
                params: r.params.map(Raw::into_owned),
            }),
            Self::Notification(n) => Message::Notification(Notification {
                method: Cow::Owned(n.method.into_owned()),
                params: n.params.map(Raw::into_owned),
            }),
            Self::Response(r) => Message::Response(Response {
                id: r.id.into_owned(),
                result: r.result.into_owned(),
            }),
            Self::Error(e) => Message::Error(ErrorResponse {
                id: e.id.map(RequestId::into_owned),
                error: e.error.into_owned(),
            }),
        }
    }

    /// Serializes the message to compact JSON. Raw members are copied
    /// verbatim.
    #[must_use]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.size_hint());
        self.write_to(&mut out);
        out
    }

    /// Appends the message as compact JSON to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        write_json(self, out);
    }

    /// A cheap upper-bound guess of the encoded size, for buffer reservation.
    #[must_use]
    pub fn size_hint(&self) -> usize {
        let raw_len = |raw: &Option<Raw<'_>>| raw.as_ref().map_or(0, |r| r.get().len());
        64 + match self {
            Self::Request(r) => r.method.len() + raw_len(&r.params),
            Self::Notification(n) => n.method.len() + raw_len(&n.params),
            Self::Response(r) => r.result.get().len(),
            Self::Error(e) => e.error.message.len() + raw_len(&e.error.data),
        }
    }
}

impl Error {
    /// The complete JSON-RPC error response a peer should receive: it carries
    /// the request id when it was readable, and no id otherwise.
    #[must_use]
    pub fn to_response(&self) -> ErrorResponse<'static> {
        ErrorResponse {
            id: self.id().cloned(),
            error: self.to_error_object(),
        }
    }
}

impl From<Error> for ErrorResponse<'static> {
    fn from(error: Error) -> Self {
        error.to_response()
    }
}

fn write_json<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Serializing our own types into a Vec cannot fail: every map key is a
    // string and raw members were validated when they were created.
    if serde_json::to_writer(&mut *out, value).is_err() {
        debug_assert!(false, "serializing a message into memory failed");
    }
}

impl Serialize for Message<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("jsonrpc", "2.0")?;
        match self {
            Self::Request(r) => {
                map.serialize_entry("id", &r.id)?;
                map.serialize_entry("method", &r.method)?;
                if let Some(params) = &r.params {
                    map.serialize_entry("params", params)?;
                }
            }
            Self::Notification(n) => {
                map.serialize_entry("method", &n.method)?;
                if let Some(params) = &n.params {
                    map.serialize_entry("params", params)?;
                }
            }
            Self::Response(r) => {
                map.serialize_entry("id", &r.id)?;
                map.serialize_entry("result", &r.result)?;
            }
            Self::Error(e) => {
                map.serialize_entry("id", &e.id)?;
                map.serialize_entry("error", &e.error)?;
            }
        }
        map.end()
    }
}

// ---------------------------------------------------------------------------
// Parsing.

/// The top level of a packet after one pass over the input.
enum Top<'a> {
    Object(Fields<'a>),
    Array(Vec<&'a RawValue>),
    Other,
}

/// The members of an envelope object, each still raw.
#[derive(Default)]
struct Fields<'a> {
    jsonrpc: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
    method: Option<&'a RawValue>,
    params: Option<&'a RawValue>,
    result: Option<&'a RawValue>,
    error: Option<&'a RawValue>,
    duplicate: Option<&'static str>,
}

fn parse_top(bytes: &[u8]) -> Result<Top<'_>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let top = de
        .deserialize_any(TopVisitor)
        .and_then(|top| de.end().map(|()| top));
    top.map_err(|e| match e.classify() {
        serde_json::error::Category::Data => invalid_request(e.to_string()),
        _ => Error::new(ErrorKind::Parse, format!("invalid JSON: {e}")),
    })
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message or batch")
    }

    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Member>()? {
            let slot = match key {
                Member::Jsonrpc => &mut fields.jsonrpc,
                Member::Id => &mut fields.id,
                Member::Method => &mut fields.method,
                Member::Params => &mut fields.params,
                Member::Result => &mut fields.result,
                Member::Error => &mut fields.error,
                Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            let value = map.next_value::<&'de RawValue>()?;
            if slot.replace(value).is_some() {
                fields.duplicate.get_or_insert(key.name());
            }
        }
        Ok(Top::Object(fields))
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            items.push(item);
        }
        Ok(Top::Array(items))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> std::result::Result<Self::Value, E> {
        Ok(Top::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> std::result::Result<Self::Value, E> {
        Ok(Top::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> std::result::Result<Self::Value, E> {
        Ok(Top::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> std::result::Result<Self::Value, E> {
        Ok(Top::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> std::result::Result<Self::Value, E> {
        Ok(Top::Other)
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<Self::Value, E> {
        Ok(Top::Other)
    }
}

/// The members of an envelope we look at; every other member is skipped.
#[derive(Clone, Copy)]
enum Member {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Other,
}

impl Member {
    fn name(self) -> &'static str {
        match self {
            Self::Jsonrpc => "jsonrpc",
            Self::Id => "id",
            Self::Method => "method",
            Self::Params => "params",
            Self::Result => "result",
            Self::Error => "error",
            Self::Other => "",
        }
    }
}

impl<'de> serde::Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct MemberVisitor;
        impl Visitor<'_> for MemberVisitor {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, key: &str) -> std::result::Result<Member, E> {
                Ok(match key {
                    "jsonrpc" => Member::Jsonrpc,
                    "id" => Member::Id,
                    "method" => Member::Method,
                    "params" => Member::Params,
                    "result" => Member::Result,
                    "error" => Member::Error,
                    _ => Member::Other,
                })
            }
        }
        deserializer.deserialize_str(MemberVisitor)
    }
}

/// What the `id` member held.
enum IdField<'a> {
    Absent,
    Null,
    Valid(RequestId<'a>),
}

impl<'a> Fields<'a> {
    fn classify(self) -> Result<Message<'a>> {
        // Read the id first so that every later error can carry it.
        let id = match self.id.map(RequestId::from_raw) {
            None => IdField::Absent,
            Some(Ok(None)) => IdField::Null,
            Some(Ok(Some(id))) => IdField::Valid(id),
            Some(Err(reason)) => return Err(invalid_request(format!("`id` {reason}"))),
        };
        match self.check_envelope().and_then(|()| self.build(&id)) {
            Ok(message) => Ok(message),
            Err(error) => match id {
                IdField::Valid(id) => Err(error.with_id(Some(id))),
                IdField::Absent | IdField::Null => Err(error),
            },
        }
    }

    fn check_envelope(&self) -> Result<()> {
        if let Some(name) = self.duplicate {
            return Err(invalid_request(format!(
                "member `{name}` appears more than once"
            )));
        }
        match self.jsonrpc.map(|raw| raw.get()) {
            Some("\"2.0\"") => {}
            Some(other) if serde_json::from_str::<String>(other).is_ok_and(|v| v == "2.0") => {}
            Some(_) => return Err(invalid_request("`jsonrpc` must be exactly \"2.0\"")),
            None => return Err(invalid_request("`jsonrpc` is missing; it must be \"2.0\"")),
        }
        if self.result.is_some() && self.error.is_some() {
            return Err(invalid_request(
                "a response must not carry both `result` and `error`",
            ));
        }
        if self.method.is_some() && (self.result.is_some() || self.error.is_some()) {
            return Err(invalid_request(
                "a request or notification must not carry `result` or `error`",
            ));
        }
        if let Some(params) = self.params {
            if !matches!(first_byte(params.get()), Some(b'{' | b'[')) {
                return Err(invalid_request("`params` must be an object or an array"));
            }
        }
        Ok(())
    }

    fn build(&self, id: &IdField<'a>) -> Result<Message<'a>> {
        if let Some(method) = self.method {
            let method = serde_json::from_str::<CowStr<'a>>(method.get())
                .map_err(|_| invalid_request("`method` must be a string"))?
                .0;
            let params = self.params.map(Raw::borrowed);
            return match id {
                IdField::Absent => Ok(Message::Notification(Notification { method, params })),
                IdField::Null => Err(invalid_request("a request id must not be null")),
                IdField::Valid(id) => Ok(Message::Request(Request {
                    id: id.clone(),
                    method,
                    params,
                })),
            };
        }
        if self.params.is_some() {
            return Err(invalid_request("`params` given without `method`"));
        }
        if let Some(result) = self.result {
            return match id {
                IdField::Valid(id) => Ok(Message::Response(Response {
                    id: id.clone(),
                    result: Raw::borrowed(result),
                })),
                IdField::Absent => Err(invalid_request("a response must carry an `id`")),
                IdField::Null => Err(invalid_request(
                    "a successful response must not have a null id",
                )),
            };
        }
        if let Some(error) = self.error {
            let error = ErrorObject::from_raw(error).map_err(invalid_request)?;
            let id = match id {
                IdField::Valid(id) => Some(id.clone()),
                IdField::Absent | IdField::Null => None,
            };
            return Ok(Message::Error(ErrorResponse { id, error }));
        }
        Err(invalid_request(
            "not a JSON-RPC message: it has no `method`, `result` or `error`",
        ))
    }
}
