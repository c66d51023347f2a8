//! [`Launch`]: how one server is reached, as a plugin describes it.
//!
//! A plugin turns a server's config entry into a `Launch`; the runtime
//! turns a `Launch` into a running transport. The two never meet: a plugin
//! author compiles this crate, not the runtime's async I/O.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::McpServer;

/// How the runtime reaches one server.
#[derive(Clone)]
pub enum Launch {
    /// A child process speaking newline-delimited JSON on stdin and stdout.
    Stdio(StdioLaunch),
    /// A remote server over Streamable HTTP.
    StreamableHttp(RemoteLaunch),
    /// A remote server over the legacy HTTP+SSE transport (2024-11-05).
    Sse(RemoteLaunch),
    /// A server on a local frame socket (binary frames over a Unix
    /// socket), such as another manager's: the socket's path.
    FrameSocket(PathBuf),
    /// A server written in Rust, called in the manager's own process.
    InProcess(InProcessLaunch),
}

impl Launch {
    /// A child process running `command`.
    #[must_use]
    pub fn stdio(command: impl Into<String>) -> StdioLaunch {
        StdioLaunch {
            command: command.into(),
            args: Vec::new(),
            shown_args: None,
            env: BTreeMap::new(),
            cwd: None,
        }
    }

    /// A server run in-process, called `name` in logs.
    #[must_use]
    pub fn in_process(name: impl Into<String>, server: Arc<dyn McpServer>) -> Self {
        Self::InProcess(InProcessLaunch {
            name: name.into(),
            server,
        })
    }

    /// What it is, for logs: a program, a URL without credentials or
    /// query, or an in-process server's name.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Stdio(stdio) => format!("stdio `{}`", stdio.command),
            Self::StreamableHttp(remote) => format!("http {}", redacted_url(&remote.url)),
            Self::Sse(remote) => format!("sse {}", redacted_url(&remote.url)),
            Self::FrameSocket(path) => format!("frame socket unix:{}", path.display()),
            Self::InProcess(inprocess) => format!("in-process `{}`", inprocess.name),
        }
    }
}

impl Launch {
    /// Whether `other` starts the same server the same way: the same
    /// command line, environment and folder, the same endpoint and
    /// headers, the same socket; for servers run in-process, the same
    /// name (their objects cannot be compared).
    #[must_use]
    pub fn same_as(&self, other: &Launch) -> bool {
        match (self, other) {
            (Self::Stdio(a), Self::Stdio(b)) => a == b,
            (Self::StreamableHttp(a), Self::StreamableHttp(b)) | (Self::Sse(a), Self::Sse(b)) => {
                a == b
            }
            (Self::FrameSocket(a), Self::FrameSocket(b)) => a == b,
            (Self::InProcess(a), Self::InProcess(b)) => a.name == b.name,
            _ => false,
        }
    }
}

impl std::fmt::Debug for Launch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// A child process to start (and restart) for a server. Its `Debug`
/// output names the program, counts the arguments and names the
/// variables: their values may be secrets taken from the config's
/// references.
#[derive(Clone, PartialEq, Eq)]
pub struct StdioLaunch {
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its arguments as descriptions (the admin API, logs) may show them,
    /// when some hold values that must not be shown (see
    /// [`StdioConfig::shown_args`](crate::config::StdioConfig::shown_args));
    /// `None`: as they are.
    pub shown_args: Option<Vec<String>>,
    /// Environment variables set on top of the manager's own.
    pub env: BTreeMap<String, String>,
    /// Its working directory; the manager's own when `None`.
    pub cwd: Option<PathBuf>,
}

impl std::fmt::Debug for StdioLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioLaunch")
            .field("command", &self.command)
            .field(
                "args",
                &self.shown_args.as_ref().map_or(self.args.len(), Vec::len),
            )
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl StdioLaunch {
    /// With these arguments.
    #[must_use]
    pub fn args<I, A>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = A>,
        A: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// With one more environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }
}

impl From<StdioLaunch> for Launch {
    fn from(stdio: StdioLaunch) -> Self {
        Self::Stdio(stdio)
    }
}

/// A remote server's endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct RemoteLaunch {
    /// The MCP endpoint (Streamable HTTP) or the event stream (HTTP+SSE).
    pub url: String,
    /// Headers sent with every request; their values are never logged.
    pub headers: BTreeMap<String, String>,
}

impl std::fmt::Debug for RemoteLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteLaunch")
            .field("url", &redacted_url(&self.url))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// A URL as it may be shown in logs and descriptions: its scheme, host,
/// port and path, without the user and password, query and fragment it
/// may carry (which often hold tokens).
#[must_use]
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.split(['?', '#']).next().unwrap_or_default().to_owned();
    };
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

/// A server that runs inside the manager.
#[derive(Clone)]
pub struct InProcessLaunch {
    /// Its name in logs.
    pub name: String,
    /// The server.
    pub server: Arc<dyn McpServer>,
}

impl std::fmt::Debug for InProcessLaunch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InProcessLaunch")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stdio_launch_is_built_step_by_step() {
        let launch: Launch = Launch::stdio("uvx")
            .args(["mcp-server-time"])
            .env("TZ", "UTC")
            .into();
        let Launch::Stdio(stdio) = &launch else {
            panic!("not stdio: {launch:?}");
        };
        assert_eq!(stdio.args, ["mcp-server-time"]);
        assert_eq!(stdio.env.get("TZ").map(String::as_str), Some("UTC"));
        assert_eq!(launch.describe(), "stdio `uvx`");
    }

    #[test]
    fn urls_are_shown_without_credentials() {
        assert_eq!(
            redacted_url("https://user:pw@example.invalid:8443/mcp?token=abc#x"),
            "https://example.invalid:8443/mcp"
        );
        assert_eq!(redacted_url("http://h/mcp"), "http://h/mcp");
        assert_eq!(redacted_url("http://h?k=v"), "http://h");
        assert_eq!(redacted_url("not a url?secret"), "not a url");
        let remote = RemoteLaunch {
            url: "https://example.invalid/mcp?key=s3cret".to_owned(),
            headers: BTreeMap::new(),
        };
        assert!(!format!("{remote:?}").contains("s3cret"));
        let stdio = StdioLaunch {
            command: "server".to_owned(),
            args: vec!["--key=s3cret".to_owned()],
            shown_args: Some(vec!["--key=${KEY}".to_owned()]),
            env: BTreeMap::from([("KEY".to_owned(), "s3cret".to_owned())]),
            cwd: None,
        };
        let shown = format!("{stdio:?}");
        assert!(
            shown.contains("KEY") && !shown.contains("s3cret"),
            "{shown}"
        );
        assert_eq!(
            Launch::StreamableHttp(remote).describe(),
            "http https://example.invalid/mcp"
        );
    }

    #[test]
    fn header_values_stay_out_of_debug_output() {
        let remote = RemoteLaunch {
            url: "https://example.invalid/mcp".to_owned(),
            headers: BTreeMap::from([("Authorization".to_owned(), "Bearer secret".to_owned())]),
        };
        let shown = format!("{remote:?}");
        assert!(shown.contains("Authorization"), "{shown}");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(
            Launch::Sse(remote).describe(),
            "sse https://example.invalid/mcp"
        );
    }

    #[test]
    fn launches_are_the_same_when_they_start_the_same_server() {
        let time = |tz: &str| -> Launch {
            Launch::stdio("uvx")
                .args(["mcp-server-time"])
                .env("TZ", tz)
                .into()
        };
        assert!(time("UTC").same_as(&time("UTC")));
        assert!(!time("UTC").same_as(&time("CET")), "the environment counts");
        let remote = |url: &str| RemoteLaunch {
            url: url.to_owned(),
            headers: BTreeMap::new(),
        };
        let http = Launch::StreamableHttp(remote("https://a.example/mcp"));
        assert!(http.same_as(&Launch::StreamableHttp(remote("https://a.example/mcp"))));
        assert!(!http.same_as(&Launch::Sse(remote("https://a.example/mcp"))));
        assert!(!http.same_as(&time("UTC")));
        let socket = Launch::FrameSocket(PathBuf::from("/run/mcp.sock"));
        assert!(socket.same_as(&Launch::FrameSocket(PathBuf::from("/run/mcp.sock"))));
    }
}
