//! The error type of this crate.

/// What went wrong, for callers that react differently to each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No server of that name is deployed.
    NotFound,
    /// A server of that name is already deployed.
    Conflict,
    /// A config or server entry that does not load or check.
    Invalid,
    /// A server did not start or stop.
    Failed,
    /// The manager is stopping or stopped.
    Stopping,
}

/// An error with its kind and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of `kind`.
    #[must_use]
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// No server `name` is deployed.
    #[must_use]
    pub fn not_found(name: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            format!("no server `{name}` is deployed"),
        )
    }

    pub(crate) fn stopping() -> Self {
        Self::new(ErrorKind::Stopping, "the manager is stopping")
    }

    /// Its kind.
    #[must_use]
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Its message.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
