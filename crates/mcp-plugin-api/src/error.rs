//! The one error type of the plugin API.

/// What went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No plugin serves the server's `type`.
    UnknownKind,
    /// A plugin was built for an API version this host cannot run.
    Incompatible,
    /// Two plugins claim the same `type`.
    Duplicate,
    /// A server's settings do not fit its plugin.
    InvalidConfig,
}

/// An error of the plugin API: the message names the server or plugin and
/// says what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
}

impl Error {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// A settings problem of a server, for plugins to return.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message)
    }

    /// The same error with a hint on what to do.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// What kind of error this is.
    #[must_use]
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The reason.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What to do about it, when known.
    #[must_use]
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
}
