//! The validated settings of one server.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::oauth::OAuthClientConfig;
use super::sandbox::SandboxConfig;
use super::tools::ToolFilter;
use super::url::HttpUrl;
use crate::ServerId;

/// One server of the config, validated, with every default filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    pub(crate) id: ServerId,
    pub(crate) transport: TransportConfig,
    pub(crate) enabled: bool,
    pub(crate) required: bool,
    pub(crate) namespace: String,
    pub(crate) tags: Vec<String>,
    pub(crate) priority: i32,
    pub(crate) instances: NonZeroU32,
    pub(crate) timeouts: Timeouts,
    pub(crate) restart: RestartConfig,
    pub(crate) max_concurrency: Option<NonZeroU32>,
    pub(crate) resilience: Resilience,
    pub(crate) tools: ToolFilter,
    pub(crate) protocol: ProtocolMode,
    pub(crate) sessions: SessionMode,
    pub(crate) pinning: Option<PinMode>,
    pub(crate) sandbox: Option<SandboxConfig>,
    pub(crate) oauth: Option<OAuthClientConfig>,
    pub(crate) path: String,
}

impl ServerConfig {
    /// Where the server's entry is in the document, as a JSON path
    /// (`mcpServers.github`, `servers["my server"]`), for messages about it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The server's name: its key in `mcpServers`.
    pub fn id(&self) -> &ServerId {
        &self.id
    }

    /// How to reach the server.
    pub fn transport(&self) -> &TransportConfig {
        &self.transport
    }

    /// Whether the server is to be run (`"enabled": false` or Cline's
    /// `"disabled": true` turn it off).
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the gateway is ready only while this server is up (the
    /// default; `"required": false` leaves it out of readiness).
    pub fn is_required(&self) -> bool {
        self.required
    }

    /// The prefix of the server's tool names at the gateway, joined to them
    /// by the gateway's separator; empty for no prefix.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Free-form labels, as written.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Higher runs first when servers compete (default 0).
    pub fn priority(&self) -> i32 {
        self.priority
    }

    /// How many copies of a local or plugin server to run (default 1;
    /// always 1 for a remote server).
    pub fn instances(&self) -> NonZeroU32 {
        self.instances
    }

    /// Request and startup timeouts.
    pub fn timeouts(&self) -> &Timeouts {
        &self.timeouts
    }

    /// When and how fast to restart the server after it stops.
    pub fn restart(&self) -> &RestartConfig {
        &self.restart
    }

    /// The most requests in flight to the server at once, if limited.
    pub fn max_concurrency(&self) -> Option<NonZeroU32> {
        self.max_concurrency
    }

    /// Bulkhead queue, total timeout, circuit breaker and retries
    /// (`resilience`).
    pub fn resilience(&self) -> &Resilience {
        &self.resilience
    }

    /// How the manager speaks to the server (`protocol`).
    pub fn protocol(&self) -> ProtocolMode {
        self.protocol
    }

    /// Whether client sessions share the server's connection (`sessions`).
    pub fn sessions(&self) -> SessionMode {
        self.sessions
    }

    /// Which of its tools are exposed (`tools`).
    pub fn tools(&self) -> &ToolFilter {
        &self.tools
    }

    /// What the gateway does when one of its tools' definitions changes
    /// (`pinning`); `None` leaves it to `mcpManager.pinning`.
    pub fn pinning(&self) -> Option<PinMode> {
        self.pinning
    }

    /// What its process may reach (`sandbox`), when it runs in one.
    pub fn sandbox(&self) -> Option<&SandboxConfig> {
        self.sandbox.as_ref()
    }

    /// How the manager signs in to it when it asks for an OAuth token
    /// (`oauth`); `None` when it never does: a server not reached over
    /// HTTP, one whose `headers` send an `Authorization`, `"oauth": false`.
    pub fn oauth(&self) -> Option<&OAuthClientConfig> {
        self.oauth.as_ref()
    }
}

/// How to reach a server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportConfig {
    /// A local process speaking newline-delimited JSON on stdin/stdout.
    Stdio(StdioConfig),
    /// A remote server over Streamable HTTP (`"type": "http"` or
    /// `"streamable-http"`, the default for a `url`).
    StreamableHttp(HttpConfig),
    /// A remote server over the legacy HTTP+SSE transport (`"type": "sse"`).
    Sse(HttpConfig),
    /// Another manager (or any server of the binary framing) on a local
    /// frame socket: a `url` of the form `unix:/path/to/socket`.
    FrameSocket(FrameSocketConfig),
    /// A server of a type this crate does not know (`"type"` is none of
    /// [`BUILTIN_TRANSPORT_TYPES`](super::BUILTIN_TRANSPORT_TYPES)): the
    /// plugin named after the type creates it from the entry's settings.
    Plugin(PluginTransport),
}

impl TransportConfig {
    /// The transport's name as written in configs: `stdio`,
    /// `streamable-http` or `sse`, or a plugin's kind as written in `type`.
    pub fn name(&self) -> &str {
        match self {
            Self::Stdio(_) => "stdio",
            Self::StreamableHttp(_) => "streamable-http",
            Self::Sse(_) => "sse",
            Self::FrameSocket(_) => "frame-socket",
            Self::Plugin(plugin) => plugin.kind(),
        }
    }
}

/// The process to launch for a local server. Its `Debug` output shows the
/// arguments as [`StdioConfig::shown_args`] does and the names of the
/// variables, not their values.
#[derive(Clone, PartialEq, Eq)]
pub struct StdioConfig {
    pub(crate) command: String,
    pub(crate) args: Vec<String>,
    pub(crate) shown_args: Vec<String>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) cwd: Option<PathBuf>,
}

impl std::fmt::Debug for StdioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioConfig")
            .field("command", &self.command)
            .field("args", &self.shown_args)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .finish()
    }
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("url", &self.shown_url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl StdioConfig {
    /// The program: a name looked up in `PATH`, or a path.
    pub fn command(&self) -> &str {
        &self.command
    }

    /// Its arguments.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Its arguments as they may be shown (by `check`, say): one that took
    /// a value from a `${...}` reference, which may be a secret (`${TOKEN}`,
    /// `${file:PATH}`), as written in the config.
    pub fn shown_args(&self) -> &[String] {
        &self.shown_args
    }

    /// Variables added to the inherited environment.
    pub fn env(&self) -> &BTreeMap<String, String> {
        &self.env
    }

    /// The working directory, if set.
    pub fn cwd(&self) -> Option<&Path> {
        self.cwd.as_deref()
    }
}

/// The address of a remote server. Its `Debug` output shows the URL as
/// [`HttpConfig::shown_url`] does and the names of the headers, not their
/// values.
#[derive(Clone, PartialEq, Eq)]
pub struct HttpConfig {
    pub(crate) url: HttpUrl,
    pub(crate) shown_url: String,
    pub(crate) headers: BTreeMap<String, String>,
}

impl HttpConfig {
    /// The endpoint.
    pub fn url(&self) -> &HttpUrl {
        &self.url
    }

    /// The endpoint as it may be shown: as written in the config when it
    /// took a value from a `${...}` reference (a token in its query, say).
    pub fn shown_url(&self) -> &str {
        &self.shown_url
    }

    /// Headers sent with every request (e.g. `Authorization`).
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.headers
    }
}

/// The address of a frame socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameSocketConfig {
    pub(crate) path: PathBuf,
}

impl FrameSocketConfig {
    /// The socket's path (absolute).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// A server entry whose `type` names a plugin's server type rather than a
/// built-in transport.
///
/// This crate does not know the plugin: it keeps the entry's own settings
/// for it, and the plugin validates them when it creates the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginTransport {
    pub(crate) kind: String,
    pub(crate) settings: serde_json::Map<String, serde_json::Value>,
}

impl PluginTransport {
    /// The server type: the `type` (or `transportType`) string as written,
    /// e.g. `"python"`.
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// Every member of the entry except mcp-manager's common options
    /// (`type`, `transportType`, `enabled`, `disabled`, `namespace`, `tags`,
    /// `priority`, `instances`, `timeoutMs`, `startupTimeoutMs`, `restart`,
    /// `maxConcurrency`, `resilience`, `tools`, `disabledTools`, `protocol`, `sessions`), so `command`, `url` and
    /// the like are included when present.
    ///
    /// `${VAR}` references are expanded in every string value, however
    /// deeply nested in objects and arrays (object keys are kept as
    /// written). Numbers, booleans and `null` are kept as they are, except
    /// that a whole number beyond the range of `i64` and `u64` is read as
    /// the nearest floating-point number.
    pub fn settings(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.settings
    }
}

/// How long to wait for a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub(crate) request: Duration,
    pub(crate) startup: Duration,
}

impl Timeouts {
    /// Timeouts for one request and for start-up, for servers defined in
    /// code rather than in a config file.
    pub fn new(request: Duration, startup: Duration) -> Self {
        Self { request, startup }
    }

    /// The longest wait for the answer to one request (`timeoutMs`,
    /// default 60 s).
    pub fn request(&self) -> Duration {
        self.request
    }

    /// The longest wait for a server to start and complete its handshake
    /// (`startupTimeoutMs`, default 30 s).
    pub fn startup(&self) -> Duration {
        self.startup
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            request: Duration::from_millis(60_000),
            startup: Duration::from_millis(30_000),
        }
    }
}

/// How the manager speaks to a server (`"protocol"`): in a session opened
/// with `initialize` (the protocol versions up to 2025-11-25), statelessly
/// (2026-07-28: `server/discover`, then self-contained requests), or
/// whichever the server supports (discovery first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProtocolMode {
    /// `"stateful"`: `initialize`, the default.
    #[default]
    Stateful,
    /// `"stateless"`: 2026-07-28 only.
    Stateless,
    /// `"auto"`: both generations when the server serves both (it answers
    /// `server/discover` and `initialize`), else whichever it answers.
    Auto,
}

impl ProtocolMode {
    /// The mode as written in configs: `stateful`, `stateless`, `auto`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stateful => "stateful",
            Self::Stateless => "stateless",
            Self::Auto => "auto",
        }
    }
}

/// Whether the gateway's client sessions share a server's connection
/// (`"sessions"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SessionMode {
    /// `"shared"`, the default: every client session's requests go over
    /// the server's instances. A request the server makes of the client
    /// reaches the client whose call it serves where the transport says
    /// which call that is (Streamable HTTP, in-process); where it does
    /// not (stdio) and several clients have calls in flight, it is
    /// refused.
    #[default]
    Shared,
    /// `"per-client"`: each client session gets an instance of its own
    /// (a process, or a connection), started at its first request and
    /// stopped when the session ends; requests without a client session
    /// (the gateway's own, such as the lists) go to the configured
    /// instances.
    PerClient,
}

impl SessionMode {
    /// The mode as written in configs: `shared`, `per-client`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Shared => "shared",
            Self::PerClient => "per-client",
        }
    }
}

/// What the gateway does with a tool whose definition (name, title,
/// description, input and output schemas, annotations) differs from the
/// one it pinned when it first saw the tool (`pinning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum PinMode {
    /// `"off"`: definitions are neither pinned nor compared.
    Off,
    /// `"warn"`, the default: a changed tool is still served, and the
    /// change is logged, counted and shown until approved.
    #[default]
    Warn,
    /// `"enforce"`: a changed tool is held back (left out of the lists,
    /// and unknown when called) until its new definition is approved.
    Enforce,
}

impl PinMode {
    /// The mode as written in configs: `off`, `warn`, `enforce`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Warn => "warn",
            Self::Enforce => "enforce",
        }
    }
}

/// When to restart a server whose process or connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RestartPolicy {
    /// Never.
    Never,
    /// Only when it ended abnormally (non-zero exit, crash, lost
    /// connection). The default.
    #[default]
    OnFailure,
    /// Whenever it ended, even cleanly.
    Always,
}

impl RestartPolicy {
    /// The policy as written in configs: `never`, `onFailure`, `always`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Never => "never",
            Self::OnFailure => "onFailure",
            Self::Always => "always",
        }
    }
}

/// Restart settings (`"restart": {...}`).
///
/// Restarts back off exponentially from `initial_backoff` up to
/// `max_backoff`; after `max_restarts` restarts in a row the server is left
/// stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartConfig {
    pub(crate) policy: RestartPolicy,
    pub(crate) max_restarts: u32,
    pub(crate) initial_backoff: Duration,
    pub(crate) max_backoff: Duration,
}

impl RestartConfig {
    /// Restart settings for servers defined in code rather than in a config
    /// file; a `max_backoff` below `initial_backoff` is raised to it.
    pub fn new(
        policy: RestartPolicy,
        max_restarts: u32,
        initial_backoff: Duration,
        max_backoff: Duration,
    ) -> Self {
        Self {
            policy,
            max_restarts,
            initial_backoff,
            max_backoff: max_backoff.max(initial_backoff),
        }
    }

    /// When to restart (`policy`, default `onFailure`).
    pub fn policy(&self) -> RestartPolicy {
        self.policy
    }

    /// How many restarts in a row before giving up (`maxRestarts`,
    /// default 5).
    pub fn max_restarts(&self) -> u32 {
        self.max_restarts
    }

    /// The wait before the first restart (`initialBackoffMs`, default
    /// 500 ms).
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The longest wait between restarts (`maxBackoffMs`, default 30 s;
    /// never less than the initial backoff).
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }
}

impl Default for RestartConfig {
    fn default() -> Self {
        Self {
            policy: RestartPolicy::OnFailure,
            max_restarts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_millis(30_000),
        }
    }
}

/// How requests to one server are protected (`"resilience": {...}`, with
/// the top-level `maxConcurrency` as the bulkhead's size).
///
/// The runtime applies these as layers, outermost first: retries, circuit
/// breaker, total timeout, bulkhead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resilience {
    pub(crate) max_queued: usize,
    pub(crate) total_timeout: Option<Duration>,
    pub(crate) breaker: Option<BreakerConfig>,
    pub(crate) retries: RetryConfig,
}

impl Resilience {
    /// Settings for servers defined in code rather than in a config file.
    pub fn new(
        max_queued: usize,
        total_timeout: Option<Duration>,
        breaker: Option<BreakerConfig>,
        retries: RetryConfig,
    ) -> Self {
        Self {
            max_queued,
            total_timeout,
            breaker,
            retries,
        }
    }

    /// With `maxConcurrency` set: how many more requests may wait for a
    /// free slot before the server is reported busy (`maxQueued`,
    /// default 64).
    pub fn max_queued(&self) -> usize {
        self.max_queued
    }

    /// The longest a request may take in all, however much progress it
    /// reports (`totalTimeoutMs`, default none: `timeoutMs` alone, reset by
    /// progress, applies).
    pub fn total_timeout(&self) -> Option<Duration> {
        self.total_timeout
    }

    /// The circuit breaker (`circuitBreaker`, on by default; `false` turns
    /// it off).
    pub fn breaker(&self) -> Option<BreakerConfig> {
        self.breaker
    }

    /// Retries of requests that are safe to repeat (`retries`).
    pub fn retries(&self) -> RetryConfig {
        self.retries
    }
}

impl Default for Resilience {
    fn default() -> Self {
        Self {
            max_queued: 64,
            total_timeout: None,
            breaker: Some(BreakerConfig::default()),
            retries: RetryConfig::default(),
        }
    }
}

/// When a server's circuit opens and how it closes again
/// (`"circuitBreaker": {...}`).
///
/// After `failures` requests in a row failed for want of an answer
/// (timeout, lost connection, server down; a server's own error is an
/// answer), requests are refused at once for `open_for`; then
/// `half_open_requests` trial requests go through, and their success
/// closes the circuit while a failure opens it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerConfig {
    pub(crate) failures: u32,
    pub(crate) open_for: Duration,
    pub(crate) half_open_requests: u32,
}

impl BreakerConfig {
    /// Breaker settings for servers defined in code; zeros are raised to 1.
    pub fn new(failures: u32, open_for: Duration, half_open_requests: u32) -> Self {
        Self {
            failures: failures.max(1),
            open_for,
            half_open_requests: half_open_requests.max(1),
        }
    }

    /// Failures in a row that open the circuit (`failures`, default 5).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// How long the circuit stays open (`openMs`, default 30 s).
    pub fn open_for(&self) -> Duration {
        self.open_for
    }

    /// Trial requests let through when half open (`halfOpenRequests`,
    /// default 1).
    pub fn half_open_requests(&self) -> u32 {
        self.half_open_requests
    }
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            open_for: Duration::from_secs(30),
            half_open_requests: 1,
        }
    }
}

/// Retries (`"retries": {...}` or a number of attempts).
///
/// Only requests that are safe to repeat are retried: lists, reads, gets,
/// completions, pings, and calls of tools the server annotates read-only
/// or idempotent; never other tool calls. A request is retried when it got
/// no answer (timeout, lost connection), never after an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryConfig {
    pub(crate) attempts: u32,
    pub(crate) backoff: Duration,
}

impl RetryConfig {
    /// Retry settings for servers defined in code.
    pub fn new(attempts: u32, backoff: Duration) -> Self {
        Self { attempts, backoff }
    }

    /// Retries after the first try (`attempts`, default 1; 0 for none).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// The wait before the first retry, doubled for each next one
    /// (`backoffMs`, default 100 ms).
    pub fn backoff(&self) -> Duration {
        self.backoff
    }
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            attempts: 1,
            backoff: Duration::from_millis(100),
        }
    }
}
