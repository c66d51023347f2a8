//! The config model: the `mcpServers` JSON of Claude Desktop, Cursor and
//! VS Code, plus mcp-manager's own options, read into [`ManagerConfig`].
//!
//! # The file
//!
//! ```json
//! {
//!   "mcpServers": {
//!     "files": {
//!       "command": "npx",
//!       "args": ["-y", "@modelcontextprotocol/server-filesystem", "${HOME}/notes"],
//!       "env": {"LOG_LEVEL": "warn"},
//!       "namespace": "fs", "instances": 2, "timeoutMs": 30000
//!     },
//!     "search": {
//!       "url": "https://search.example.com/mcp",
//!       "headers": {"Authorization": "Bearer ${env:SEARCH_TOKEN}"},
//!       "tools": {"deny": ["admin_*"]}
//!     }
//!   },
//!   "mcpManager": {"separator": "__"}
//! }
//! ```
//!
//! The servers sit under `mcpServers` (Claude Desktop, Cursor, Windsurf,
//! Cline) or `servers` (VS Code's `.vscode/mcp.json`); a file with both is
//! rejected. Gateway-wide options sit in the optional `mcpManager` object:
//! `separator` (default `"__"`) joins a server's namespace to its tool names;
//! the limits of the HTTP endpoint (see [`GatewayLimits`]) are
//! `maxSessions`, `maxSessionsPerClient`, `maxInFlightPerSession`,
//! `maxInFlightPerClient`, `sessionIdleTimeoutMs` (`0`: never),
//! `maxRequestBytes` and `drainTimeoutMs` (how long requests in flight may
//! take to finish on shutdown); an absent one keeps the endpoint's default.
//! `pluginsDir` says where run-time plugins are looked up (relative to the
//! config file's folder; `${VAR}` references are expanded). `pinning`
//! (`"warn"`, the default, `"enforce"` or `"off"`, see [`PinMode`]) is
//! what the gateway does when a tool's definition changes after it was
//! pinned, for servers whose entry does not say; `pinsFile` is where the
//! pins are kept (relative to the config file's folder; default
//! `pins.json` in [`crate::user_data_dir`]). `auth` makes the HTTP endpoint
//! an OAuth 2.1 resource server ([`AuthConfig`]); `access` says who may
//! use which tools, prompts and resources ([`AccessConfig`]); `audit`
//! where each call is written down ([`AuditConfig`]); `cluster` what the
//! replicas of one gateway share: `{"key": "64 hex digits"}` or
//! `{"keyFile": "PATH"}`, the key session ids are sealed with, and
//! `peers`, the other replicas' MCP listeners as `HOST:PORT`, told of the
//! sessions' changes and ends ([`ClusterConfig`]).
//!
//! ## A server entry
//!
//! | key | meaning |
//! |---|---|
//! | `command`, `args`, `env`, `cwd` | a local process speaking stdio |
//! | `url`, `headers` | a remote server; a `url` of the form `unix:/path/to/socket` is a frame socket (another manager's `serve --frame-socket`), without `headers` |
//! | `type` | `"stdio"`, `"http"` / `"streamable-http"` (Streamable HTTP, the default with `url`) , `"sse"` (legacy HTTP+SSE) or `"frame-socket"` (implied by a `unix:` URL); any other non-empty value names a plugin's server type, see [Plugin entries](#plugin-entries) |
//! | `enabled` | `false` keeps the entry but does not run it (default `true`) |
//! | `required` | `false`: the gateway is ready (`/readyz`) while the server is down; default `true` |
//! | `namespace` | prefix of the server's tool names; `""` for none; default: the server name (characters other than `[A-Za-z0-9_.-]` replaced by `_`, with a warning) |
//! | `tags` | labels |
//! | `priority` | integer, default 0 |
//! | `instances` | copies of a local or plugin server to run, ≥ 1, default 1 |
//! | `timeoutMs`, `startupTimeoutMs` | request and startup timeouts in ms, from 1 to 86 400 000 (default 60 000 and 30 000) |
//! | `restart` | `{"policy": "never" \| "onFailure" \| "always", "maxRestarts": 5, "initialBackoffMs": 500, "maxBackoffMs": 30000}`; a bare policy string is short for `{"policy": ...}` |
//! | `maxConcurrency` | the most requests in flight (the bulkhead's size), ≥ 1, unlimited by default |
//! | `resilience` | `{"maxQueued": 64, "totalTimeoutMs": ..., "circuitBreaker": {"failures": 5, "openMs": 30000, "halfOpenRequests": 1} \| false, "retries": {"attempts": 1, "backoffMs": 100} \| N}`, see [`Resilience`] |
//! | `protocol` | `"stateful"` (`initialize`, the default), `"stateless"` (2026-07-28: `server/discover`, then self-contained requests) or `"auto"` (both generations when the server serves both: a session for 2025 clients, 2026-07-28 requests passed on as they are; else whichever handshake it answers) |
//! | `sessions` | `"shared"` (the default: client sessions share the server's instances) or `"per-client"` (each client session gets an instance of its own, started at its first request and stopped when it ends) |
//! | `tools` | `{"allow": [...], "deny": [...]}` patterns with `*`, see [`ToolFilter`] |
//! | `oauth` | how the manager signs in to a remote server that asks for an OAuth token: `{"clientId", "clientSecret", "clientMetadataUrl", "scope", "callbackPort"}`, all optional, or `false` for never; on by default for `url` servers without an `Authorization` header, see [`OAuthClientConfig`] |
//! | `pinning` | `"warn"`, `"enforce"` or `"off"`: what the gateway does when one of the server's tools changes its definition after it was pinned, see [`PinMode`]; default: `mcpManager.pinning` |
//!
//! ## Plugin entries
//!
//! An entry whose `type` (or `transportType`) is none of
//! [`BUILTIN_TRANSPORT_TYPES`] is created by the plugin of that name, so a
//! new kind of server needs no change here:
//!
//! ```json
//! {"mcpServers": {"calc": {"type": "python", "module": "calc_server", "options": {"home": "${HOME}"}, "namespace": "calc"}}}
//! ```
//!
//! It is read into [`TransportConfig::Plugin`]. The common options (`type`,
//! `transportType`, `enabled`, `disabled`, `namespace`, `tags`, `priority`,
//! `instances`, `timeoutMs`, `startupTimeoutMs`, `restart`,
//! `maxConcurrency`, `resilience`, `tools`, `disabledTools`, `protocol`, `sessions`,
//! `pinning`, `sandbox`, `required`) are read and checked as for
//! any entry. Every other member, `command` and `url` included, is a
//! setting of the plugin, kept in [`PluginTransport::settings`] with
//! `${VAR}` references expanded in every string, however deeply nested
//! (keys are kept as written; a whole number too large for 64 bits becomes
//! a floating-point number). The settings are not checked here: no
//! `command` or `url` is required and no key is reported as unknown; the
//! plugin checks them when it creates the server. Whether a plugin of that
//! name exists is not known here either: a misspelt built-in type such as
//! `"htp"` reads as a plugin entry, and [`closest_name`] helps whoever
//! looks the plugin up to suggest the intended name. An empty `type` is an
//! error.
//!
//! ## Keys of other clients
//!
//! A file written for another client must load, so unknown keys are
//! warnings, never errors; a near miss of a known key gets a "did you mean"
//! hint. Keys that other clients define are treated as follows:
//!
//! - honoured: Cline's `"disabled": true` (the opposite of `enabled`; the
//!   two must not contradict each other), Cline's `transportType` (used when
//!   `type` is absent; Cline's `"streamableHttp"` spelling is accepted),
//!   Windsurf's `serverUrl` (used when `url` is absent), Roo Code's
//!   `disabledTools` (added to `tools.deny`);
//! - ignored with a note saying what to use instead: `autoApprove`,
//!   `alwaysAllow`, `description`, `envFile`, `timeout`, `networkTimeout`,
//!   `dev`, `gallery`, `version`, `watchPaths`, and VS Code's top-level
//!   `inputs`.
//!
//! ## Checks beyond the types
//!
//! - Duplicate keys in any object are errors (JSON parsers silently keep
//!   the last one, which hides mistakes).
//! - `${VAR}` references in `command`, `args`, `env` values, `cwd`, `url`
//!   and `headers` values, and in every string of a plugin entry's
//!   settings, are expanded; see [Interpolation](#interpolation).
//!   A disabled server is checked like any other, so give variables it may
//!   lack a fallback: `${TOKEN:-}`.
//! - Comments (`//`, `/* */`) and trailing commas are accepted, as in VS
//!   Code's JSON with comments. A UTF-8 byte order mark is skipped.
//! - `url` must be `http(s)://` with a host, or `unix:` with an absolute path; header names must be HTTP
//!   tokens; strings passed to a process must not contain NUL.
//! - Warnings: an unknown key (except among a plugin entry's settings),
//!   `instances` > 1 on a remote server, keys of
//!   the other transport (`headers` on a local server, `args` on a remote
//!   one), a `command` with spaces and no `args`, an exact tool name both
//!   allowed and denied, an empty allow list, two enabled servers sharing a
//!   namespace, no servers at all.
//!
//! Loading never stops at the first problem: the error lists them all.
//!
//! # Interpolation
//!
//! | written | becomes |
//! |---|---|
//! | `${NAME}`, `${env:NAME}` | the value of the variable `NAME` |
//! | `${NAME:-fallback}`, `${env:NAME:-fallback}` | its value, or `fallback` when it is unset or empty |
//! | `${workspaceFolder}` | for a file inside `.vscode/`, the folder containing `.vscode`; otherwise the file's folder (with no file: the variable `workspaceFolder`) |
//! | `${file:PATH}` | the text of the file at `PATH` (relative to the config file's folder) without its final line break: a secret kept out of the config |
//! | `${file:PATH:-fallback}` | the same, or `fallback` when there is no such file |
//! | `$$` | a literal `$` |
//! | `$` followed by anything else | itself |
//!
//! Names are ASCII letters, digits and `_`, not starting with a digit. The
//! fallback is literal text up to the closing `}`. An unset variable without
//! fallback, an unterminated `${`, an empty or invalid name, and VS Code's
//! `${input:...}` prompts are errors, and so is a `${file:...}` that
//! cannot be read (larger than 1 MiB, not UTF-8, not readable; a missing
//! one only without fallback). No error shows a file's content. Values come from an [`EnvLookup`]:
//! [`ManagerConfig::load`] uses the process environment.

mod access;
mod auth;
mod cluster;
mod entry;
mod expand;
mod interpolate;
mod oauth;
mod path;
mod plugin;
mod reader;
mod report;
mod sandbox;
mod server;
mod suggest;
mod tools;
mod transport;
mod tree;
mod url;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use access::{AccessConfig, AccessRule, AuditConfig, ItemKind};
pub use auth::{AuthConfig, DEFAULT_ALGORITHMS, Introspection};
pub use cluster::ClusterConfig;
pub use interpolate::{EnvLookup, ProcessEnv};
pub use oauth::OAuthClientConfig;
pub use sandbox::{FilesystemGrants, SandboxConfig};
pub use server::{
    BreakerConfig, FrameSocketConfig, HttpConfig, PinMode, PluginTransport, ProtocolMode,
    Resilience, RestartConfig, RestartPolicy, RetryConfig, ServerConfig, SessionMode, StdioConfig,
    Timeouts, TransportConfig,
};
pub use tools::{ToolFilter, ToolPattern};
pub use transport::BUILTIN_TRANSPORT_TYPES;
pub use url::HttpUrl;

use crate::error::{ConfigError, ConfigIssue};
use crate::{Error, ServerId};
use interpolate::Vars;
pub use path::JsonPath;
use reader::{Field, Object, Schema};
use report::Report;
use tree::Json;

const TOP_SCHEMA: Schema = Schema {
    known: &["mcpServers", "servers", "mcpManager"],
    foreign: &[(
        "inputs",
        "VS Code's input prompts are not supported; set the values in the environment and write `${env:NAME}`",
    )],
    synonyms: &[
        ("mcpServer", "mcpServers"),
        ("manager", "mcpManager"),
        ("gateway", "mcpManager"),
    ],
};

const GATEWAY_SCHEMA: Schema = Schema {
    known: &[
        "separator",
        "maxSessions",
        "maxSessionsPerClient",
        "maxInFlightPerSession",
        "maxInFlightPerClient",
        "sessionIdleTimeoutMs",
        "maxRequestBytes",
        "drainTimeoutMs",
        "pluginsDir",
        "pinning",
        "pinsFile",
        "auth",
        "access",
        "audit",
        "cluster",
    ],
    foreign: &[],
    synonyms: &[
        ("delimiter", "separator"),
        ("shutdownTimeoutMs", "drainTimeoutMs"),
        ("gracePeriodMs", "drainTimeoutMs"),
    ],
};

/// The candidate closest to `name`, if one is close enough to be what was
/// meant: the "did you mean" of the config's own messages, for checking
/// names the config leaves to others, such as plugin server types.
///
/// Comparison ignores case, `_`, `-` and spaces, and allows about one typo
/// per four characters (at least one, at most three).
///
/// ```
/// use mcp_core::config::{closest_name, BUILTIN_TRANSPORT_TYPES};
///
/// assert_eq!(closest_name("htp", BUILTIN_TRANSPORT_TYPES), Some("http"));
/// assert_eq!(closest_name("streamable_http", BUILTIN_TRANSPORT_TYPES), Some("streamable-http"));
/// assert_eq!(closest_name("python", BUILTIN_TRANSPORT_TYPES), None);
/// ```
pub fn closest_name<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    suggest::closest(name, &suggest::plain(candidates))
}

/// The warning for member `key` of `server`'s entry that neither
/// mcp-manager nor the plugin of its type (whose settings are
/// `plugin_keys`) reads: it is ignored, and the nearest known key is
/// suggested.
#[must_use]
pub fn unknown_setting(server: &ServerConfig, key: &str, plugin_keys: &[&str]) -> ConfigIssue {
    let known: Vec<&str> = plugin_keys
        .iter()
        .chain(plugin::COMMON_OPTIONS)
        .copied()
        .collect();
    let path = JsonPath::from(server.path()).key(key);
    let issue = ConfigIssue::new(path.as_str(), format!("unknown key `{key}` is ignored"));
    match closest_name(key, &known) {
        Some(near) => issue.with_hint(format!("did you mean `{near}`?")),
        None => issue,
    }
}

/// 0 for a warning about no server (those come first), else 1 + where in
/// the file the server the warning at `path` is about stands.
fn server_rank(servers: &[ServerConfig], path: &str) -> usize {
    let about = |server: &ServerConfig| {
        path.strip_prefix(server.path())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    servers.iter().position(about).map_or(0, |at| at + 1)
}

/// A whole config: the servers, the gateway-wide options, and the warnings
/// found while reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerConfig {
    servers: Vec<ServerConfig>,
    gateway: GatewayOptions,
    warnings: Vec<ConfigIssue>,
    source: Option<PathBuf>,
}

impl ManagerConfig {
    /// Reads and validates the file at `path`, taking `${VAR}` values from
    /// the process environment.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`](crate::ErrorKind::Io) when the file cannot be read;
    /// [`ErrorKind::Config`](crate::ErrorKind::Config), listing every
    /// problem, when it is not a valid config.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|err| Error::io(path, err))?;
        Self::from_file_bytes(path, bytes)
    }

    /// Validates `bytes`, the content of the file at `path` read already
    /// (by a caller that watches it for changes, say), as [`load`](Self::load)
    /// would.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config), listing every
    /// problem, when it is not a valid config (or not UTF-8).
    pub fn from_file_bytes(path: &Path, bytes: Vec<u8>) -> Result<Self, Error> {
        let text = String::from_utf8(bytes).map_err(|err| {
            let at = err.utf8_error().valid_up_to();
            let issue = ConfigIssue::new("", format!("the file is not valid UTF-8 (at byte {at})"))
                .with_hint("save the file as UTF-8");
            ConfigError::new(Some(path), vec![issue], Vec::new())
        })?;
        Self::from_json_str(&text, Some(path), &ProcessEnv)
    }

    /// Validates the config document `text`. `source` names the file it
    /// came from, for messages and `${workspaceFolder}`; `env` supplies the
    /// values of `${VAR}` references.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config), listing every
    /// problem, when `text` is not a valid config.
    pub fn from_json_str(
        text: &str,
        source: Option<&Path>,
        env: &dyn EnvLookup,
    ) -> Result<Self, Error> {
        Self::read(text, source, &Vars::new(env, source))
    }

    /// Validates the config document `text` that came from no file (a
    /// config built in a program): `${workspaceFolder}` stands for
    /// `folder`, and messages name no file.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Config`](crate::ErrorKind::Config), listing every
    /// problem, when `text` is not a valid config.
    pub fn from_json_str_in(text: &str, folder: &Path, env: &dyn EnvLookup) -> Result<Self, Error> {
        Self::read(text, None, &Vars::in_folder(env, folder))
    }

    fn read(text: &str, source: Option<&Path>, vars: &Vars<'_>) -> Result<Self, Error> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut report = Report::default();
        let parsed = match tree::parse(text) {
            Ok(tree) => Some(read_document(&tree, vars, &mut report)),
            Err(issue) => {
                report.error(issue);
                None
            }
        };
        let (errors, warnings) = report.into_parts();
        match parsed {
            Some((servers, gateway)) if errors.is_empty() => Ok(Self {
                servers,
                gateway,
                warnings,
                source: source.map(Path::to_path_buf),
            }),
            _ => Err(ConfigError::new(source, errors, warnings).into()),
        }
    }

    /// Runs one more check on every server, such as whether a plugin
    /// serves its type and its settings fit. The error it returns for a
    /// server makes the config invalid, reported like the others (same
    /// file, warnings kept); what it pushes onto its second argument is
    /// added to the config's warnings.
    ///
    /// # Errors
    ///
    /// A config error with every error `check` found.
    pub fn check_servers(
        mut self,
        mut check: impl FnMut(&ServerConfig, &mut Vec<ConfigIssue>) -> Vec<ConfigIssue>,
    ) -> Result<Self, Error> {
        let mut warnings = Vec::new();
        let issues: Vec<ConfigIssue> = self
            .servers
            .iter()
            .flat_map(|server| check(server, &mut warnings))
            .collect();
        self.warnings.extend(warnings);
        // The checker's warnings join the reader's in file order.
        let servers = &self.servers;
        self.warnings
            .sort_by_key(|warning| server_rank(servers, warning.path()));
        if issues.is_empty() {
            return Ok(self);
        }
        Err(ConfigError::new(self.source.as_deref(), issues, self.warnings).into())
    }

    /// Every server, enabled or not, in file order.
    pub fn servers(&self) -> &[ServerConfig] {
        &self.servers
    }

    /// The enabled servers, in file order.
    pub fn enabled_servers(&self) -> impl Iterator<Item = &ServerConfig> {
        self.servers.iter().filter(|server| server.is_enabled())
    }

    /// The server named `id`.
    pub fn server(&self, id: &str) -> Option<&ServerConfig> {
        self.servers
            .iter()
            .find(|server| server.id().as_str() == id)
    }

    /// The gateway-wide options.
    pub fn gateway(&self) -> &GatewayOptions {
        &self.gateway
    }

    /// The non-fatal findings: unknown keys, ignored settings and the like.
    pub fn warnings(&self) -> &[ConfigIssue] {
        &self.warnings
    }

    /// The file the config was read from, if any.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Where run-time plugins are looked up, when the config says
    /// (`mcpManager.pluginsDir`): a relative path is taken from the config
    /// file's folder.
    pub fn plugins_dir(&self) -> Option<PathBuf> {
        Some(self.beside(self.gateway().plugins_dir()?))
    }

    /// Where the gateway keeps the tool definitions it pinned:
    /// `mcpManager.pinsFile` (a relative path taken from the config
    /// file's folder), else `pins.json` in the user's data directory
    /// ([`crate::user_data_dir`]); `None` when neither is known.
    pub fn pins_file(&self) -> Option<PathBuf> {
        match self.gateway().pins_file() {
            Some(file) => Some(self.beside(file)),
            None => crate::user_data_dir().map(|dir| dir.join("pins.json")),
        }
    }

    /// The audit log's file (`mcpManager.audit.file`), taken from the
    /// config file's folder when relative.
    pub fn audit_file(&self) -> Option<PathBuf> {
        Some(self.beside(&self.gateway().audit()?.file))
    }

    /// `path`, taken from the config file's folder when relative.
    fn beside(&self, path: &Path) -> PathBuf {
        match self.source().and_then(Path::parent) {
            Some(folder) if path.is_relative() => folder.join(path),
            _ => path.to_owned(),
        }
    }
}

/// Gateway-wide options: the top-level `"mcpManager"` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayOptions {
    separator: String,
    limits: GatewayLimits,
    plugins_dir: Option<PathBuf>,
    pinning: PinMode,
    pins_file: Option<PathBuf>,
    auth: Option<AuthConfig>,
    access: Option<AccessConfig>,
    audit: Option<AuditConfig>,
    cluster: Option<ClusterConfig>,
}

/// Limits of the gateway's HTTP endpoint, from the `mcpManager` object;
/// `None` leaves the endpoint's default. The frame socket takes
/// `maxSessions`, `maxInFlightPerSession` (a connection is one session),
/// `maxRequestBytes` and `drainTimeoutMs` too.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayLimits {
    /// `maxSessions`: sessions open at once, in all.
    pub max_sessions: Option<usize>,
    /// `maxSessionsPerClient`: sessions open at once per client address.
    pub max_sessions_per_client: Option<usize>,
    /// `maxInFlightPerSession`: requests in flight per session.
    pub max_in_flight_per_session: Option<usize>,
    /// `maxInFlightPerClient`: requests in flight per client address.
    pub max_in_flight_per_client: Option<usize>,
    /// `sessionIdleTimeoutMs`: how long an idle session is kept;
    /// `Some(None)` (written `0`) keeps it until its client ends it.
    pub session_idle_timeout: Option<Option<Duration>>,
    /// `maxRequestBytes`: the largest request body.
    pub max_request_bytes: Option<usize>,
    /// `drainTimeoutMs`: on shutdown, how long requests in flight may take
    /// to finish before they are cancelled.
    pub drain_timeout: Option<Duration>,
}

impl GatewayOptions {
    /// What joins a namespace and a tool name at the gateway (`separator`,
    /// default `"__"`, as in `github__create_issue`).
    pub fn separator(&self) -> &str {
        &self.separator
    }

    /// The limits of the HTTP endpoint.
    pub fn limits(&self) -> &GatewayLimits {
        &self.limits
    }

    /// Where run-time plugins are looked up (`pluginsDir`), as written with
    /// its `${VAR}` references expanded; a relative one is relative to the
    /// config file's folder (see [`ManagerConfig::plugins_dir`]).
    pub fn plugins_dir(&self) -> Option<&Path> {
        self.plugins_dir.as_deref()
    }

    /// What the gateway does when a tool's definition changes
    /// (`pinning`, default `"warn"`), for servers that do not say.
    pub fn pinning(&self) -> PinMode {
        self.pinning
    }

    /// Where the pinned tool definitions are kept (`pinsFile`), as
    /// written with its `${VAR}` references expanded; a relative one is
    /// relative to the config file's folder (see
    /// [`ManagerConfig::pins_file`]).
    pub fn pins_file(&self) -> Option<&Path> {
        self.pins_file.as_deref()
    }

    /// How the endpoint checks access tokens (`auth`): `None` leaves it to
    /// the shared bearer token, if any.
    pub fn auth(&self) -> Option<&AuthConfig> {
        self.auth.as_ref()
    }

    /// Who may use which tools, prompts and resources (`access`).
    pub fn access(&self) -> Option<&AccessConfig> {
        self.access.as_ref()
    }

    /// Where calls are written down (`audit`), the file as written; see
    /// [`ManagerConfig::audit_file`].
    pub fn audit(&self) -> Option<&AuditConfig> {
        self.audit.as_ref()
    }

    /// What the gateway's replicas share (`cluster`): the key session ids
    /// are sealed with.
    pub fn cluster(&self) -> Option<&ClusterConfig> {
        self.cluster.as_ref()
    }
}

impl Default for GatewayOptions {
    fn default() -> Self {
        Self {
            separator: "__".to_owned(),
            limits: GatewayLimits::default(),
            plugins_dir: None,
            pinning: PinMode::default(),
            pins_file: None,
            auth: None,
            access: None,
            audit: None,
            cluster: None,
        }
    }
}

fn read_document(
    tree: &Json,
    vars: &Vars<'_>,
    report: &mut Report,
) -> (Vec<ServerConfig>, GatewayOptions) {
    tree::report_duplicates(tree, &JsonPath::root(), report);
    let Json::Object(_) = tree else {
        report.error(
            ConfigIssue::new(
                "",
                format!("the top level must be an object, found {}", tree.kind()),
            )
            .with_hint(r#"a config looks like {"mcpServers": {"name": {"command": "..."}}}"#),
        );
        return (Vec::new(), GatewayOptions::default());
    };
    let Some(top) = Field::new(tree, JsonPath::root()).object(report) else {
        return (Vec::new(), GatewayOptions::default());
    };
    top.report_unknown(&TOP_SCHEMA, report);
    let gateway = gateway_options(&top, vars, report);
    let servers = server_map(&top, report)
        .map(|map| read_servers(&map, vars, report))
        .unwrap_or_default();
    (servers, gateway)
}

/// The object of servers: `mcpServers` or `servers`.
fn server_map<'a>(top: &Object<'a>, report: &mut Report) -> Option<Field<'a>> {
    match (top.get("mcpServers"), top.get("servers")) {
        (Some(claude), Some(_)) => {
            report.error(
                ConfigIssue::new("", "has both `mcpServers` and `servers`").with_hint(
                    "keep one: `mcpServers` (Claude Desktop, Cursor) or `servers` (VS Code)",
                ),
            );
            Some(claude)
        }
        (Some(map), None) | (None, Some(map)) => Some(map),
        (None, None) => {
            report.error(
                ConfigIssue::new("", "no `mcpServers` object").with_hint(missing_servers_hint(top)),
            );
            None
        }
    }
}

fn missing_servers_hint(top: &Object<'_>) -> &'static str {
    let looks_like_entries = top.members().any(|(_, field)| match field.value {
        Json::Object(members) => members.iter().any(|(k, _)| k == "command" || k == "url"),
        _ => false,
    });
    if looks_like_entries {
        r#"the servers must sit inside "mcpServers": {"mcpServers": {"name": {"command": "..."}}}"#
    } else {
        r#"add the servers as {"mcpServers": {"name": {"command": "...", "args": [...]}}} (VS Code: "servers")"#
    }
}

fn read_servers(map: &Field<'_>, vars: &Vars<'_>, report: &mut Report) -> Vec<ServerConfig> {
    if !matches!(map.value, Json::Object(_)) {
        report.error(ConfigIssue::new(
            map.path.as_str(),
            format!(
                "expected an object mapping server names to their settings, found {}",
                map.value.kind()
            ),
        ));
        return Vec::new();
    }
    let Some(map) = map.object(report) else {
        return Vec::new();
    };
    if map.is_empty() {
        report.warn(ConfigIssue::new(
            map.path().as_str(),
            "no servers are configured",
        ));
    }
    let servers: Vec<ServerConfig> = map
        .members()
        .filter_map(|(name, field)| entry::parse(name, &field, vars, report))
        .collect();
    warn_about_shared_namespaces(&map, &servers, report);
    servers
}

/// Two enabled servers with one namespace expose clashing tool names when
/// both have a tool of the same name.
fn warn_about_shared_namespaces(map: &Object<'_>, servers: &[ServerConfig], report: &mut Report) {
    let mut first_with: HashMap<&str, &ServerId> = HashMap::new();
    for server in servers.iter().filter(|s| s.is_enabled()) {
        let first = *first_with.entry(server.namespace()).or_insert(server.id());
        if first != server.id() {
            let namespace = match server.namespace() {
                "" => "the empty namespace (no prefix)".to_owned(),
                ns => format!("the namespace \"{ns}\""),
            };
            report.warn(
                ConfigIssue::new(
                    map.path().key(server.id().as_str()).as_str(),
                    format!(
                        "shares {namespace} with `{}`; tools with the same name would clash",
                        first
                    ),
                )
                .with_hint("give one of them its own \"namespace\""),
            );
        }
    }
}

fn gateway_options(top: &Object<'_>, vars: &Vars<'_>, report: &mut Report) -> GatewayOptions {
    let default = GatewayOptions::default();
    let Some(section) = top.get("mcpManager").and_then(|f| f.object(report)) else {
        return default;
    };
    section.report_unknown(&GATEWAY_SCHEMA, report);
    let count = |key: &str, report: &mut Report| {
        section
            .get(key)
            .and_then(|field| field.integer(1, 1 << 30, report))
            .and_then(|n| usize::try_from(n).ok())
    };
    let limits = GatewayLimits {
        max_sessions: count("maxSessions", report),
        max_sessions_per_client: count("maxSessionsPerClient", report),
        max_in_flight_per_session: count("maxInFlightPerSession", report),
        max_in_flight_per_client: count("maxInFlightPerClient", report),
        session_idle_timeout: section
            .get("sessionIdleTimeoutMs")
            .and_then(|field| field.integer(0, entry::MAX_MILLIS, report))
            .and_then(|ms| u64::try_from(ms).ok())
            .map(|ms| (ms > 0).then(|| Duration::from_millis(ms))),
        max_request_bytes: section
            .get("maxRequestBytes")
            .and_then(|field| field.integer(1024, 1 << 30, report))
            .and_then(|n| usize::try_from(n).ok()),
        drain_timeout: section
            .get("drainTimeoutMs")
            .and_then(|field| field.integer(0, entry::MAX_MILLIS, report))
            .and_then(|ms| u64::try_from(ms).ok())
            .map(Duration::from_millis),
    };
    let separator = section
        .get("separator")
        .and_then(|field| {
            let separator = field.non_empty_string(report)?;
            if entry::is_tool_name_text(separator) {
                return Some(separator.to_owned());
            }
            report.error(
                ConfigIssue::new(field.path.as_str(), format!("\"{separator}\" is not a valid separator"))
                    .with_hint("the separator becomes part of tool names, so it uses only letters, digits, `_`, `.` and `-`, e.g. \"__\""),
            );
            None
        })
        .unwrap_or(default.separator);
    let path = |key: &str, report: &mut Report| {
        section.get(key).and_then(|field| {
            let raw = field.non_empty_string(report)?;
            expand::expand(vars, &field.path, raw, report).map(PathBuf::from)
        })
    };
    let plugins_dir = path("pluginsDir", report);
    let pins_file = path("pinsFile", report);
    let pinning = section
        .get("pinning")
        .and_then(|field| entry::pin_mode(&field, report))
        .unwrap_or_default();
    GatewayOptions {
        separator,
        limits,
        plugins_dir,
        pinning,
        pins_file,
        auth: auth::parse(&section, vars, report),
        access: access::parse_access(&section, report),
        audit: access::parse_audit(&section, vars, report),
        cluster: cluster::parse(&section, vars, report),
    }
}
