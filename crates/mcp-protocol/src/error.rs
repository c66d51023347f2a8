//! The one error type of this crate.

use std::borrow::Cow;

use crate::values::{ErrorObject, RequestId, error_code};

/// What went wrong, in a form a caller can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The bytes are not valid JSON (JSON-RPC `-32700`).
    Parse,
    /// Valid JSON, but not a valid JSON-RPC message (JSON-RPC `-32600`).
    InvalidRequest,
    /// A valid envelope whose `params` do not fit the method (`-32602`).
    InvalidParams,
    /// A result that does not have the shape its method requires.
    InvalidResult,
    /// A frame (line or event) longer than the configured maximum.
    MessageTooLarge,
    /// A protocol version this implementation does not speak.
    UnsupportedVersion,
    /// A binary frame whose header cannot be read (bad magic, unknown
    /// framing version, kind or flags) or that was cut short.
    InvalidFrame,
}

impl ErrorKind {
    /// The JSON-RPC error code a peer should receive for this kind of error.
    #[must_use]
    pub fn code(self) -> i64 {
        match self {
            Self::Parse => error_code::PARSE_ERROR,
            Self::InvalidRequest | Self::MessageTooLarge | Self::InvalidFrame => {
                error_code::INVALID_REQUEST
            }
            Self::InvalidParams => error_code::INVALID_PARAMS,
            Self::InvalidResult => error_code::INTERNAL_ERROR,
            Self::UnsupportedVersion => error_code::UNSUPPORTED_PROTOCOL_VERSION,
        }
    }
}

/// An error of the protocol layer: a message that could not be decoded, a
/// frame that was too large, parameters of the wrong shape.
///
/// When the envelope was readable far enough to find the request id, the
/// error keeps it, so that the answer to a bad request can name the request
/// it answers ([`Error::to_response`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: Cow<'static, str>,
    id: Option<RequestId<'static>>,
}

impl Error {
    /// A new error of `kind` with a human-readable `message`.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            kind,
            message: message.into(),
            id: None,
        }
    }

    /// The same error, attributed to the request with `id`.
    #[must_use]
    pub fn with_id(mut self, id: Option<RequestId<'_>>) -> Self {
        self.id = id.map(RequestId::into_owned);
        self
    }

    /// What kind of error this is.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable reason.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The id of the request the error is about, when it could be read.
    #[must_use]
    pub fn id(&self) -> Option<&RequestId<'static>> {
        self.id.as_ref()
    }

    /// The JSON-RPC error code for this error.
    #[must_use]
    pub fn code(&self) -> i64 {
        self.kind.code()
    }

    /// The JSON-RPC error object a peer should receive.
    #[must_use]
    pub fn to_error_object(&self) -> ErrorObject<'static> {
        ErrorObject::new(self.code(), self.message.clone())
    }
}

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid_request(message: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorKind::InvalidRequest, message)
}
