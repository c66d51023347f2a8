//! The crate's one error type, [`Error`], and the diagnostics a config
//! document can produce ([`ConfigError`], [`ConfigIssue`]).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// What kind of failure an [`Error`] is, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A config file (or a [`PrivateFile`](crate::file::PrivateFile))
    /// could not be read or written: missing, unreadable, a directory.
    /// [`std::error::Error::source`] holds the underlying I/O error.
    Io,
    /// A config document is invalid; [`Error::config`] lists every problem.
    Config,
    /// A string is not a valid [`ServerId`](crate::ServerId).
    InvalidServerId,
}

/// The error type of `mcp-core`.
///
/// Match on [`Error::kind`]; for config errors, [`Error::config`] gives the
/// full list of problems found in the document.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Error(Box<Repr>);

#[derive(Debug, thiserror::Error)]
enum Repr {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot {action} {}: {source}", path.display())]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Config(ConfigError),
    #[error("invalid server id {input:?}: {reason}")]
    InvalidServerId { input: String, reason: &'static str },
}

impl Error {
    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        match &*self.0 {
            Repr::Io { .. } | Repr::File { .. } => ErrorKind::Io,
            Repr::Config(_) => ErrorKind::Config,
            Repr::InvalidServerId { .. } => ErrorKind::InvalidServerId,
        }
    }

    /// The problems of an invalid config document, if this is a config error.
    pub fn config(&self) -> Option<&ConfigError> {
        match &*self.0 {
            Repr::Config(config) => Some(config),
            _ => None,
        }
    }

    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        Self(Box::new(Repr::Io {
            path: path.to_path_buf(),
            source,
        }))
    }

    /// A file could not be used: `action` (`"read"`, `"write"`, ...) says
    /// what was being done with it.
    pub(crate) fn file(action: &'static str, path: &Path, source: io::Error) -> Self {
        Self(Box::new(Repr::File {
            action,
            path: path.to_path_buf(),
            source,
        }))
    }

    pub(crate) fn invalid_server_id(input: &str, reason: &'static str) -> Self {
        Self(Box::new(Repr::InvalidServerId {
            input: input.to_owned(),
            reason,
        }))
    }
}

impl From<ConfigError> for Error {
    fn from(config: ConfigError) -> Self {
        Self(Box::new(Repr::Config(config)))
    }
}

/// Every problem found in one config document.
///
/// Loading does not stop at the first problem: `issues` holds all the errors
/// found, in document order as far as possible, and `warnings` the non-fatal
/// findings collected on the way (so a caller can show both together).
/// There is always at least one issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    file: Option<PathBuf>,
    issues: Vec<ConfigIssue>,
    warnings: Vec<ConfigIssue>,
}

impl ConfigError {
    pub(crate) fn new(
        file: Option<&Path>,
        issues: Vec<ConfigIssue>,
        warnings: Vec<ConfigIssue>,
    ) -> Self {
        Self {
            file: file.map(Path::to_path_buf),
            issues,
            warnings,
        }
    }

    /// The file the document was read from, if it came from a file.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The errors: each makes the document unusable.
    pub fn issues(&self) -> &[ConfigIssue] {
        &self.issues
    }

    /// The warnings found alongside the errors.
    pub fn warnings(&self) -> &[ConfigIssue] {
        &self.warnings
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.issues.len();
        let noun = if count == 1 { "problem" } else { "problems" };
        write!(f, "invalid config ({count} {noun})")?;
        for issue in &self.issues {
            write!(f, "\n  {}", issue.display_in(self.file()))?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A line and column in a document, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TextPosition {
    /// The line, from 1.
    pub line: usize,
    /// The column (in bytes), from 1.
    pub column: usize,
}

/// One problem (an error or a warning) found in a config document.
///
/// It names where ([`path`](Self::path), a JSON path such as
/// `mcpServers.github.args[2]`, empty for the document as a whole), what is
/// wrong ([`message`](Self::message)) and, where there is something useful
/// to say, how to fix it ([`hint`](Self::hint)). JSON syntax errors also
/// carry a [`position`](Self::position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    path: String,
    message: String,
    hint: Option<String>,
    position: Option<TextPosition>,
}

impl ConfigIssue {
    /// An issue at JSON `path` (such as `mcpServers.github.type`), for
    /// checks made outside this crate on a loaded config.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
            hint: None,
            position: None,
        }
    }

    /// The same issue with a hint on what to do.
    #[must_use]
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub(crate) fn with_optional_hint(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }

    pub(crate) fn at(mut self, position: TextPosition) -> Self {
        self.position = Some(position);
        self
    }

    /// The JSON path of the offending value, e.g. `mcpServers.github.args[2]`;
    /// empty when the issue concerns the whole document.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// How to fix it, when there is more to say than the message.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// Where in the text, for JSON syntax errors.
    pub fn position(&self) -> Option<TextPosition> {
        self.position
    }

    /// Formats the issue as `FILE[:LINE:COL]: PATH: MESSAGE`, leaving out
    /// the parts that are absent. The hint is not included.
    pub fn display_in<'a>(&'a self, file: Option<&'a Path>) -> impl fmt::Display + 'a {
        Located { issue: self, file }
    }
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.display_in(None).fmt(f)
    }
}

struct Located<'a> {
    issue: &'a ConfigIssue,
    file: Option<&'a Path>,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let issue = self.issue;
        match (self.file, issue.position) {
            (Some(file), Some(pos)) => {
                write!(f, "{}:{}:{}: ", file.display(), pos.line, pos.column)?
            }
            (Some(file), None) => write!(f, "{}: ", file.display())?,
            (None, Some(pos)) => write!(f, "line {}, column {}: ", pos.line, pos.column)?,
            (None, None) => {}
        }
        if !issue.path.is_empty() {
            write!(f, "{}: ", issue.path)?;
        }
        f.write_str(&issue.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_display_includes_file_position_and_path() {
        let issue = ConfigIssue::new("mcpServers.a", "bad").at(TextPosition { line: 3, column: 7 });
        let file = Path::new("c.json");
        assert_eq!(
            issue.display_in(Some(file)).to_string(),
            "c.json:3:7: mcpServers.a: bad"
        );
        assert_eq!(issue.to_string(), "line 3, column 7: mcpServers.a: bad");
        let plain = ConfigIssue::new("", "empty");
        assert_eq!(plain.display_in(Some(file)).to_string(), "c.json: empty");
        assert_eq!(plain.to_string(), "empty");
    }

    #[test]
    fn config_error_lists_every_issue() {
        let err = ConfigError::new(
            Some(Path::new("x.json")),
            vec![ConfigIssue::new("a", "one"), ConfigIssue::new("b", "two")],
            Vec::new(),
        );
        let text = Error::from(err).to_string();
        assert_eq!(
            text,
            "invalid config (2 problems)\n  x.json: a: one\n  x.json: b: two"
        );
    }

    #[test]
    fn errors_cross_threads() {
        fn assert_send_sync<T: Send + Sync + 'static>() {}
        assert_send_sync::<Error>();
        assert_send_sync::<ConfigError>();
    }

    #[test]
    fn kinds_and_accessors() {
        let io = Error::io(Path::new("f"), io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(io.kind(), ErrorKind::Io);
        assert!(io.config().is_none());
        assert!(std::error::Error::source(&io).is_some());
        assert_eq!(io.to_string(), "cannot read f");
        let id = Error::invalid_server_id("a/b", "contains `/`");
        assert_eq!(id.kind(), ErrorKind::InvalidServerId);
        assert_eq!(id.to_string(), "invalid server id \"a/b\": contains `/`");
        let config = Error::from(ConfigError::new(
            None,
            vec![ConfigIssue::new("", "x")],
            vec![],
        ));
        assert_eq!(config.kind(), ErrorKind::Config);
        assert_eq!(config.config().map(|c| c.issues().len()), Some(1));
    }
}
