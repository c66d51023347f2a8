//! What a server is (its spec, how it is spoken to) and the values its
//! handle gives out (states, events, what it said in its handshake).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use mcp_core::config::{ProtocolMode, Resilience, RestartConfig, SessionMode, Timeouts};
use mcp_core::{Launch, ServerConfig, ServerId};
use mcp_protocol::mcp::{Implementation, ServerCapabilities};
use mcp_protocol::{Notification, ProtocolVersion};
use tokio::sync::mpsc;

use crate::transport::{self, Connector};

/// What the server told about itself in the handshake.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionInfo {
    /// The protocol version in use.
    pub protocol_version: ProtocolVersion,
    /// What the server offers.
    pub capabilities: ServerCapabilities,
    /// The server's name and version.
    pub server_info: Implementation,
    /// The server's guidance for the model.
    pub instructions: Option<String>,
    /// In a session opened with `initialize`: the server also serves
    /// stateless (2026-07-28) requests (it answered `server/discover`
    /// too), so a request that carries the 2026-07-28 envelope is passed
    /// on as it is, beside the session.
    pub dual: bool,
}

/// A notification a server sent on its own: a list change, a log message, a
/// resource update.
#[derive(Clone, Debug)]
pub struct ServerEvent {
    /// Who sent it.
    pub server: ServerId,
    /// What it sent.
    pub notification: Notification<'static>,
}

/// Where an instance is in its life.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerState {
    /// Starting for the first time.
    Starting,
    /// Serving.
    Running,
    /// Lost and waiting to start again.
    Restarting {
        /// Restarts in a row so far, this one included.
        attempt: u32,
        /// Why the last connection ended.
        reason: String,
    },
    /// Given up on: it failed to start, or crashed too often.
    Failed {
        /// Why.
        reason: String,
    },
    /// Stopped on request.
    Stopped,
}

impl ServerState {
    /// A short name: `starting`, `running`, `restarting`, `failed`, `stopped`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Restarting { .. } => "restarting",
            Self::Failed { .. } => "failed",
            Self::Stopped => "stopped",
        }
    }
}

/// Which generation of the protocol to speak to a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// An `initialize` handshake proposing 2025-11-25; the server may answer
    /// with an older version. Every server today speaks this.
    #[default]
    Stateful,
    /// Stateless 2026-07-28: `server/discover`, then the version and client
    /// capabilities in every request's `_meta`.
    Stateless,
    /// Both generations when the server serves both: `server/discover`,
    /// then `initialize`. A server that answers both keeps a session for
    /// requests without the 2026-07-28 envelope and takes those with it as
    /// they are ([`SessionInfo::dual`]); one that answers only discovery is
    /// spoken to statelessly, one that answers only `initialize` in a
    /// session.
    Auto,
}

/// Everything the runtime needs to run a server.
#[derive(Clone)]
pub struct ServerSpec {
    /// Its id.
    pub id: ServerId,
    /// How to reach it.
    pub connector: Arc<dyn Connector>,
    /// How many copies to run.
    pub instances: NonZeroU32,
    /// Request and start-up timeouts.
    pub timeouts: Timeouts,
    /// When and how to restart it.
    pub restart: RestartConfig,
    /// How often to ping an instance; `None` for never.
    pub health_interval: Option<Duration>,
    /// How long a stopping server may take before it is killed.
    pub stop_grace: Duration,
    /// Which protocol generation to speak.
    pub protocol: UpstreamProtocol,
    /// Whether client sessions share the instances, or each gets its own
    /// (see [`SessionMode`]).
    pub sessions: SessionMode,
    /// The most requests in flight at once (the bulkhead's size); `None`
    /// for no limit.
    pub max_concurrency: Option<NonZeroU32>,
    /// Bulkhead queue, total timeout, circuit breaker, retries.
    pub resilience: Resilience,
}

impl ServerSpec {
    /// A spec with the defaults: one instance, the default timeouts and
    /// restart policy, a health check every 30 s, 2 s to stop.
    pub fn new(id: ServerId, connector: Arc<dyn Connector>) -> Self {
        Self {
            id,
            connector,
            instances: NonZeroU32::MIN,
            timeouts: Timeouts::default(),
            restart: RestartConfig::default(),
            health_interval: Some(Duration::from_secs(30)),
            stop_grace: Duration::from_secs(2),
            protocol: UpstreamProtocol::Stateful,
            sessions: SessionMode::Shared,
            max_concurrency: None,
            resilience: Resilience::default(),
        }
    }

    /// The spec of a configured server reached as `launch` says: its
    /// instances, timeouts, restart policy, protocol, concurrency and
    /// resilience from `config`; a remote server's access tokens from
    /// `credentials`, when given.
    #[must_use]
    pub fn from_config(
        config: &ServerConfig,
        launch: Launch,
        credentials: Option<Arc<dyn mcp_core::auth::TokenSource>>,
    ) -> Self {
        let mut spec = Self::new(
            config.id().clone(),
            transport::connector(config.id(), launch, config.sandbox(), credentials),
        );
        spec.instances = config.instances();
        spec.timeouts = *config.timeouts();
        spec.restart = *config.restart();
        spec.max_concurrency = config.max_concurrency();
        spec.resilience = *config.resilience();
        spec.sessions = config.sessions();
        spec.protocol = match config.protocol() {
            ProtocolMode::Stateful => UpstreamProtocol::Stateful,
            ProtocolMode::Stateless => UpstreamProtocol::Stateless,
            ProtocolMode::Auto => UpstreamProtocol::Auto,
        };
        spec
    }
}

impl std::fmt::Debug for ServerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSpec")
            .field("id", &self.id)
            .field("connector", &self.connector.describe())
            .field("instances", &self.instances)
            .finish_non_exhaustive()
    }
}

/// An error a server's requests or connection ran into.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecentError {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// What happened.
    pub message: String,
}

/// The lists a server has, for [`ServerHandle::list_all`](crate::ServerHandle::list_all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ListKind {
    /// `tools/list`.
    Tools,
    /// `resources/list`.
    Resources,
    /// `resources/templates/list`.
    ResourceTemplates,
    /// `prompts/list`.
    Prompts,
}

impl ListKind {
    /// The list request's method.
    #[must_use]
    pub fn method(self) -> &'static str {
        match self {
            Self::Tools => "tools/list",
            Self::Resources => "resources/list",
            Self::ResourceTemplates => "resources/templates/list",
            Self::Prompts => "prompts/list",
        }
    }

    /// The member of the result that holds the items.
    #[must_use]
    pub fn key(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resourceTemplates",
            Self::Prompts => "prompts",
        }
    }

    /// Whether a server with `capabilities` has this list.
    pub(super) fn offered_by(self, capabilities: &ServerCapabilities) -> bool {
        match self {
            Self::Tools => capabilities.tools.is_some(),
            Self::Resources | Self::ResourceTemplates => capabilities.resources.is_some(),
            Self::Prompts => capabilities.prompts.is_some(),
        }
    }
}

/// Options of one request.
#[derive(Clone, Debug, Default)]
pub struct CallOptions {
    /// Overrides the server's request timeout.
    pub timeout: Option<Duration>,
    /// Where progress notifications go, with the caller's own token. Without
    /// a sink, a progress token in the request is removed.
    pub progress: Option<mpsc::Sender<Notification<'static>>>,
    /// Keeps every request with the same key on one instance.
    pub session: Option<u64>,
    /// Who answers what the server asks of the client while it serves this
    /// request (`sampling/createMessage`, `elicitation/create`,
    /// `roots/list`); without one, the server is told there is no client
    /// to ask.
    pub requester: Option<mcp_core::RequestContext>,
}
