//! Typed views of the MCP messages a manager must understand.
//!
//! A view reads the members it knows into typed fields and keeps every other
//! member raw in `rest`, in order. Serializing a view writes its typed fields
//! followed by `rest`, so a gateway can change a tool name or a resource URI
//! and forward everything else, including members of protocol versions newer
//! than this crate, byte for byte. Large members (`arguments`, tool results,
//! schemas) are never parsed into a DOM.
//!
//! Views are lenient where a gateway must be: members a manager does not act
//! on are not validated, so a backend's slightly off answer still passes
//! through. They are strict on what routing depends on (names, URIs, ids).

mod methods;
pub mod param_headers;
pub mod stateless;
pub mod tasks;
mod types;
mod views;

use std::borrow::Cow;

pub use methods::{Method, Sender};
pub use types::{
    ClientCapabilities, Implementation, ListChangedCapability, LoggingLevel, ResourcesCapability,
    RootsCapability, ServerCapabilities, SubscriptionFilter, ToolAnnotations,
};
pub use views::*;

use crate::error::{Error, ErrorKind, Result};
use crate::raw::{Raw, RawObject};

/// The reserved `_meta` keys MCP defines.
pub mod meta_keys {
    /// The progress token of a request.
    pub const PROGRESS_TOKEN: &str = "progressToken";
    /// The protocol version of a stateless request (2026-07-28).
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    /// The client's capabilities for a stateless request (2026-07-28).
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    /// The client's name and version on a stateless request (2026-07-28).
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    /// The log level wanted for one request (2026-07-28).
    pub const LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
    /// The server's name and version on a result (2026-07-28).
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    /// The subscription a notification belongs to (2026-07-28).
    pub const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";
    /// W3C trace context, carried in `_meta` across the gateway.
    pub const TRACEPARENT: &str = "traceparent";
    /// W3C trace state, carried beside [`TRACEPARENT`].
    pub const TRACESTATE: &str = "tracestate";
}

/// A typed view of a JSON object: typed members plus the rest kept raw.
pub trait View<'a>: Sized + serde::Serialize {
    /// Reads the view out of an object's members.
    ///
    /// # Errors
    ///
    /// The reason, naming the member at fault, when a member the view needs
    /// is missing or has the wrong type.
    fn from_object(object: RawObject<'a>) -> Result<Self, Cow<'static, str>>;

    /// Reads the view from a request's or notification's `params`; absent
    /// params read as an empty object.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidParams`] with the reason.
    fn from_params(params: Option<Raw<'a>>) -> Result<Self> {
        let object = match params {
            Some(raw) => RawObject::from_cow(raw)
                .map_err(|_| Error::new(ErrorKind::InvalidParams, "`params` must be an object"))?,
            None => RawObject::new(),
        };
        Self::from_object(object).map_err(|reason| Error::new(ErrorKind::InvalidParams, reason))
    }

    /// Reads the view from a response's `result`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidResult`] with the reason.
    fn from_result(result: Raw<'a>) -> Result<Self> {
        let object = RawObject::from_cow(result)
            .map_err(|_| Error::new(ErrorKind::InvalidResult, "`result` must be an object"))?;
        Self::from_object(object).map_err(|reason| Error::new(ErrorKind::InvalidResult, reason))
    }

    /// Serializes the view back to raw JSON.
    fn to_raw(&self) -> Raw<'static> {
        Raw::from_value(self)
    }
}

/// A value that a view member can hold, read from raw JSON.
pub trait FromRaw<'a>: Sized {
    /// Reads the value.
    ///
    /// # Errors
    ///
    /// What the value should have been ("must be a string"), for the view
    /// to prefix with the member's name.
    fn from_raw(raw: Raw<'a>) -> Result<Self, Cow<'static, str>>;
}

impl<'a> FromRaw<'a> for Raw<'a> {
    fn from_raw(raw: Raw<'a>) -> Result<Self, Cow<'static, str>> {
        Ok(raw)
    }
}

impl<'a> FromRaw<'a> for Cow<'a, str> {
    fn from_raw(raw: Raw<'a>) -> Result<Self, Cow<'static, str>> {
        raw.into_str().ok_or(Cow::Borrowed("must be a string"))
    }
}

impl<'a> FromRaw<'a> for crate::jsonrpc::RequestId<'a> {
    fn from_raw(raw: Raw<'a>) -> Result<Self, Cow<'static, str>> {
        let id = match raw.into_cow() {
            Cow::Borrowed(raw) => crate::jsonrpc::RequestId::from_raw(raw),
            Cow::Owned(raw) => crate::jsonrpc::RequestId::from_raw(&raw)
                .map(|id| id.map(crate::jsonrpc::RequestId::into_owned)),
        };
        match id {
            Ok(Some(id)) => Ok(id),
            Ok(None) | Err(_) => Err(Cow::Borrowed("must be a string or an integer")),
        }
    }
}

impl<'a, T: FromRaw<'a>> FromRaw<'a> for Vec<T> {
    fn from_raw(raw: Raw<'a>) -> Result<Self, Cow<'static, str>> {
        let items = raw.into_array().ok_or(Cow::Borrowed("must be an array"))?;
        items
            .into_iter()
            .enumerate()
            .map(|(i, item)| {
                T::from_raw(item).map_err(|reason| Cow::Owned(format!("item {i} {reason}")))
            })
            .collect()
    }
}

/// Implements [`FromRaw`] for small owned types by deserializing them.
macro_rules! from_raw_by_serde {
    ($($ty:ty => $expected:literal),* $(,)?) => {$(
        impl<'a> FromRaw<'a> for $ty {
            fn from_raw(raw: Raw<'a>) -> Result<Self, Cow<'static, str>> {
                raw.parse().map_err(|_| Cow::Borrowed($expected))
            }
        }
    )*};
}

from_raw_by_serde! {
    bool => "must be a boolean",
    f64 => "must be a number",
    u64 => "must be a non-negative integer",
    Implementation => "must be an object with `name` and `version` strings",
    ClientCapabilities => "must be a client capabilities object",
    ServerCapabilities => "must be a server capabilities object",
    LoggingLevel => "must be a log level (debug, info, notice, warning, error, critical, alert, emergency)",
    SubscriptionFilter => "must be a subscription filter object",
}

/// Takes member `key` out of `object` and reads it.
pub(crate) fn take<'a, T: FromRaw<'a>>(
    object: &mut RawObject<'a>,
    key: &'static str,
) -> Result<Option<T>, Cow<'static, str>> {
    object
        .remove(key)
        .map(|raw| T::from_raw(raw).map_err(|reason| Cow::Owned(format!("`{key}` {reason}"))))
        .transpose()
}

/// Takes required member `key` out of `object` and reads it.
pub(crate) fn require<'a, T: FromRaw<'a>>(
    object: &mut RawObject<'a>,
    key: &'static str,
) -> Result<T, Cow<'static, str>> {
    take(object, key)?.ok_or_else(|| Cow::Owned(format!("`{key}` is missing")))
}

/// Declares a view: a struct of typed members plus `rest`, with its
/// [`View`], [`FromRaw`] and `Serialize` implementations.
macro_rules! view {
    (
        $(#[$doc:meta])*
        pub struct $name:ident<'a> {
            $( $(#[$fdoc:meta])* $field:ident: $ty:ty = $presence:ident $key:expr, )*
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub struct $name<'a> {
            $( $(#[$fdoc])* pub $field: view!(@type $presence $ty), )*
            /// Every other member, in order, passed through unchanged.
            pub rest: $crate::raw::RawObject<'a>,
        }

        impl<'a> $crate::mcp::View<'a> for $name<'a> {
            fn from_object(
                mut object: $crate::raw::RawObject<'a>,
            ) -> Result<Self, std::borrow::Cow<'static, str>> {
                $( let $field = view!(@take $presence object $key); )*
                Ok(Self { $($field,)* rest: object })
            }
        }

        impl<'a> $crate::mcp::FromRaw<'a> for $name<'a> {
            fn from_raw(raw: $crate::raw::Raw<'a>) -> Result<Self, std::borrow::Cow<'static, str>> {
                let object = $crate::raw::RawObject::from_cow(raw)
                    .map_err(|_| std::borrow::Cow::Borrowed("must be an object"))?;
                <Self as $crate::mcp::View<'a>>::from_object(object)
                    .map_err(|reason| std::borrow::Cow::Owned(format!("has a member that {reason}")))
            }
        }

        impl serde::Serialize for $name<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut map = serializer.serialize_map(None)?;
                $( view!(@write $presence map $key, &self.$field); )*
                self.rest.serialize_entries(&mut map)?;
                map.end()
            }
        }
    };
    (@type required $ty:ty) => { $ty };
    (@type optional $ty:ty) => { Option<$ty> };
    (@take required $object:ident $key:expr) => { $crate::mcp::require(&mut $object, $key)? };
    (@take optional $object:ident $key:expr) => { $crate::mcp::take(&mut $object, $key)? };
    (@write required $map:ident $key:expr, $value:expr) => { $map.serialize_entry($key, $value)?; };
    (@write optional $map:ident $key:expr, $value:expr) => {
        if let Some(value) = $value {
            $map.serialize_entry($key, value)?;
        }
    };
}

pub(crate) use view;
