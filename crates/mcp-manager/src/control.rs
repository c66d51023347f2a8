//! Running the servers of a config behind one gateway, and changing them
//! while it serves: what `mcp-manager serve` (with its hot reload and admin
//! API) and the Python package share.
//!
//! - [`start_servers`] starts the enabled servers of a config side by side
//!   through the plugin registry.
//! - [`Control`] is an actor that owns the list of running servers and
//!   applies a new config, a deploy or an undeploy one at a time, keeping
//!   the [`Gateway`]'s backends in step.
//! - [`server_entry`] checks one `mcpServers` entry given at run time;
//!   [`describe`] and [`health`] say how a server is doing, as JSON.
//!
//! Applying a config, server by server: gone (or now disabled) ones are
//! taken out of the gateway first, so no new request reaches them, then
//! stopped after their requests in flight finish; new ones are started and
//! added once running (one that fails to start is reported and left out);
//! changed ones are taken out, drained and stopped, then started with their
//! new settings; unchanged ones are left alone, processes and sessions
//! untouched.

use std::collections::HashMap;
use std::sync::Arc;

use mcp_core::config::ProcessEnv;
use mcp_core::{ManagerConfig, ServerConfig, ServerId};
use mcp_runtime::gateway::{Backend, Gateway};
use mcp_runtime::{McpRuntime, MetricsSnapshot, ServerHandle, ServerState, ServerStatus};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, ErrorKind};

/// Where the control actor reports what it did (one line each: a server
/// started, stopped, failed to start).
pub type Report = Arc<dyn Fn(&str) + Send + Sync>;

/// One server of a config and how starting it went.
#[derive(Debug)]
pub struct Started<'c> {
    /// Its config.
    pub config: &'c ServerConfig,
    /// `None` for a disabled server; otherwise the running server, or why
    /// it did not start.
    pub handle: Option<Result<ServerHandle, String>>,
}

/// Starts the enabled servers among `servers` side by side and waits until
/// each runs or has failed to start; sorted by server id.
pub async fn start_servers<'c>(
    runtime: &McpRuntime,
    servers: impl Iterator<Item = &'c ServerConfig>,
) -> Vec<Started<'c>> {
    let registry = mcp_plugins::default_registry();
    let mut started = Vec::new();
    let mut pending = Vec::new();
    for config in servers {
        if !config.is_enabled() {
            started.push(Started {
                config,
                handle: None,
            });
            continue;
        }
        let spec = match registry.spec(config) {
            Ok(spec) => spec,
            Err(error) => {
                started.push(Started {
                    config,
                    handle: Some(Err(error.to_string())),
                });
                continue;
            }
        };
        let runtime = runtime.clone();
        pending.push((
            config,
            tokio::spawn(async move { runtime.deploy(spec).await }),
        ));
    }
    for (config, task) in pending {
        let handle = match task.await {
            Ok(Ok(handle)) => Ok(handle),
            Ok(Err(error)) => Err(error.to_string()),
            Err(error) => Err(format!("starting it panicked: {error}")),
        };
        started.push(Started {
            config,
            handle: Some(handle),
        });
    }
    started.sort_by_key(|s| s.config.id().as_str().to_owned());
    started
}

/// `config` checked against the plugins that will run its servers (each
/// server's plugin-specific settings), as every way of loading a config
/// does before starting anything.
///
/// # Errors
///
/// The config error naming every problem.
pub fn check_plugins(config: ManagerConfig) -> Result<ManagerConfig, mcp_core::Error> {
    let registry = mcp_plugins::default_registry();
    config.check_servers(|server| registry.config_issue(server))
}

/// The gateway backend of a started server.
#[must_use]
pub fn backend(config: &ServerConfig, handle: ServerHandle) -> Backend {
    Backend {
        handle,
        namespace: config.namespace().to_owned(),
        tools: config.tools().clone(),
    }
}

/// Checks one `mcpServers` entry named `name` (as a config file's would be
/// checked, environment references resolved from this process's
/// environment) and gives its server config.
///
/// # Errors
///
/// [`ErrorKind::Invalid`] naming every problem.
pub fn server_entry(name: &str, entry: &Value) -> Result<ServerConfig, Error> {
    if !entry.is_object() {
        return Err(Error::new(
            ErrorKind::Invalid,
            format!("the config of `{name}` must be a JSON object (an mcpServers entry)"),
        ));
    }
    let text = json!({"mcpServers": {name: entry}}).to_string();
    ManagerConfig::from_json_str(&text, None, &ProcessEnv)
        .and_then(check_plugins)
        .map_err(|e| Error::new(ErrorKind::Invalid, format!("invalid server entry: {e}")))?
        .servers()
        .first()
        .cloned()
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Invalid,
                format!("no server `{name}` in the entry"),
            )
        })
}

/// The servers the gateway runs now, sorted by id, with the config each
/// runs.
struct Running {
    servers: Vec<(ServerConfig, Backend)>,
}

impl Running {
    fn backends(&self) -> Vec<Backend> {
        self.servers.iter().map(|(_, b)| b.clone()).collect()
    }

    fn sort(&mut self) {
        self.servers
            .sort_by(|(a, _), (b, _)| a.id().as_str().cmp(b.id().as_str()));
    }
}

/// What the control actor is asked to do.
enum Command {
    /// Run the enabled servers of this config, and only those.
    Apply(Box<ManagerConfig>, oneshot::Sender<()>),
    /// Start one more server.
    Deploy {
        config: Box<ServerConfig>,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Stop one server.
    Undeploy {
        id: ServerId,
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// The configs of the running servers.
    Configs(oneshot::Sender<Vec<ServerConfig>>),
}

/// The control actor that owns the list of running servers; cheap to
/// clone. It stops when the last clone is dropped.
#[derive(Clone)]
pub struct Control {
    commands: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

/// The actor.
struct Actor {
    runtime: McpRuntime,
    gateway: Arc<Gateway>,
    running: Running,
    report: Report,
}

impl Control {
    /// The gateway over `servers` (names joined with `separator`, list
    /// changes and server notifications forwarded to its clients), and the
    /// actor that changes its servers from now on; what the actor does goes
    /// to `report`. Must be called within a tokio runtime.
    #[must_use]
    pub fn start(
        runtime: McpRuntime,
        separator: &str,
        servers: Vec<(ServerConfig, Backend)>,
        report: Report,
    ) -> (Self, Arc<Gateway>) {
        let (commands, mut receiver) = mpsc::channel(16);
        let mut running = Running { servers };
        running.sort();
        let gateway = Arc::new(
            Gateway::new(running.backends(), separator).with_notifications(runtime.clone()),
        );
        let mut actor = Actor {
            runtime,
            gateway: gateway.clone(),
            running,
            report,
        };
        tokio::spawn(async move {
            while let Some(command) = receiver.recv().await {
                match command {
                    Command::Apply(config, done) => {
                        actor.apply(&config).await;
                        let _ = done.send(());
                    }
                    Command::Deploy { config, reply } => {
                        let _ = reply.send(actor.deploy(&config).await);
                    }
                    Command::Undeploy { id, reply } => {
                        let _ = reply.send(actor.undeploy(&id).await);
                    }
                    Command::Configs(reply) => {
                        let configs = actor.running.servers.iter().map(|(c, _)| c.clone());
                        let _ = reply.send(configs.collect());
                    }
                }
            }
        });
        (Self { commands }, gateway)
    }

    async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), Error>>) -> Command,
    ) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| Error::stopping())?;
        answer.await.unwrap_or_else(|_| Err(Error::stopping()))
    }

    /// Starts `config`'s server and adds it to the gateway.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Conflict`] when a server of that name runs,
    /// [`ErrorKind::Failed`] when it did not start.
    pub async fn deploy(&self, config: ServerConfig) -> Result<(), Error> {
        let config = Box::new(config);
        self.ask(|reply| Command::Deploy { config, reply }).await
    }

    /// Takes server `id` out of the gateway, then stops it after its
    /// requests in flight finish.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] when no such server runs.
    pub async fn undeploy(&self, id: ServerId) -> Result<(), Error> {
        self.ask(|reply| Command::Undeploy { id, reply }).await
    }

    /// The configs of the running servers, sorted by id; none once the
    /// actor has stopped.
    pub async fn configs(&self) -> Vec<ServerConfig> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Configs(reply)).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Brings the running servers in line with `config` (see the module
    /// docs) and waits until that is done.
    pub async fn apply(&self, config: ManagerConfig) {
        let (done, applied) = oneshot::channel();
        if self
            .commands
            .send(Command::Apply(Box::new(config), done))
            .await
            .is_ok()
        {
            let _ = applied.await;
        }
    }
}

impl Actor {
    /// Starts the servers of `configs` side by side; those that run join
    /// the running ones (the gateway is not told yet). How each start went,
    /// an error naming the server for one that did not.
    async fn start_into<'c>(
        &mut self,
        configs: impl Iterator<Item = &'c ServerConfig>,
    ) -> Vec<Result<&'c ServerId, String>> {
        let mut outcomes = Vec::new();
        for started in start_servers(&self.runtime, configs).await {
            let id = started.config.id();
            outcomes.push(match started.handle {
                Some(Ok(handle)) => {
                    self.running
                        .servers
                        .push((started.config.clone(), backend(started.config, handle)));
                    Ok(id)
                }
                Some(Err(reason)) => Err(format!("`{id}` failed to start: {reason}")),
                None => Err(format!("`{id}` is disabled")),
            });
        }
        self.running.sort();
        outcomes
    }

    fn publish(&self) {
        self.gateway.set_backends(self.running.backends());
    }

    async fn deploy(&mut self, config: &ServerConfig) -> Result<(), Error> {
        let id = config.id();
        if self.running.servers.iter().any(|(c, _)| c.id() == id) {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("a server `{id}` is already deployed"),
            ));
        }
        let outcome = self.start_into(std::iter::once(config)).await;
        outcome
            .into_iter()
            .next()
            .unwrap_or_else(|| Err(format!("`{id}` did not start")))
            .map_err(|reason| Error::new(ErrorKind::Failed, reason))?;
        self.publish();
        (self.report)(&format!("{id}: deployed, running"));
        Ok(())
    }

    async fn undeploy(&mut self, id: &ServerId) -> Result<(), Error> {
        let Some(position) = self.running.servers.iter().position(|(c, _)| c.id() == id) else {
            return Err(Error::not_found(id.as_str()));
        };
        self.running.servers.remove(position);
        self.publish();
        (self.report)(&format!("{id}: undeployed, stopping it"));
        self.runtime
            .undeploy(id)
            .await
            .map_err(|e| Error::new(ErrorKind::Failed, e.to_string()))
    }

    async fn apply(&mut self, new: &ManagerConfig) {
        let wanted: HashMap<&ServerId, &ServerConfig> = new
            .servers()
            .iter()
            .filter(|s| s.is_enabled())
            .map(|s| (s.id(), s))
            .collect();
        let (keep, leave): (Vec<_>, Vec<_>) = std::mem::take(&mut self.running.servers)
            .into_iter()
            .partition(|(config, _)| wanted.get(config.id()) == Some(&config));
        // Out of the gateway first, so nothing new reaches them.
        self.running.servers = keep;
        self.publish();
        for (config, _) in &leave {
            let id = config.id();
            let verb = if wanted.contains_key(id) {
                "changed"
            } else {
                "removed"
            };
            (self.report)(&format!("{id}: {verb}, stopping it"));
            if let Err(error) = self.runtime.undeploy(id).await {
                tracing::warn!(server = %id, "stopping it: {error}");
            }
        }
        let starting: Vec<&ServerConfig> = new
            .servers()
            .iter()
            .filter(|s| s.is_enabled())
            .filter(|s| !self.running.servers.iter().any(|(c, _)| c.id() == s.id()))
            .collect();
        for outcome in self.start_into(starting.into_iter()).await {
            match outcome {
                Ok(id) => (self.report)(&format!("{id}: running")),
                Err(reason) => (self.report)(&format!("not started: {reason}")),
            }
        }
        self.publish();
        (self.report)(&format!(
            "config reloaded: serving {} server(s)",
            self.running.servers.len()
        ));
    }
}

/// Every server of `runtime` as [`describe`] shows it, sorted by name,
/// with its config when `control` runs it.
///
/// # Errors
///
/// When the runtime has stopped.
pub async fn describe_all(
    runtime: &McpRuntime,
    control: Option<&Control>,
) -> mcp_runtime::Result<Vec<Value>> {
    let list = runtime.list().await?;
    let metrics = runtime.metrics().await?;
    let configs = match control {
        Some(control) => control.configs().await,
        None => Vec::new(),
    };
    Ok(list
        .iter()
        .map(|status| {
            let config = configs.iter().find(|c| c.id() == &status.id);
            describe(status, &metrics, config)
        })
        .collect())
}

/// `healthy` (every instance running, circuit closed), `degraded` (some
/// running, or the circuit not closed) or `down` (none running).
#[must_use]
pub fn health(status: &ServerStatus) -> &'static str {
    let running = status
        .instances
        .iter()
        .filter(|s| **s == ServerState::Running)
        .count();
    let closed = status
        .breaker
        .is_none_or(|b| b == mcp_runtime::observe::BreakerState::Closed);
    match running {
        0 => "down",
        n if n == status.instances.len() && closed => "healthy",
        _ => "degraded",
    }
}

/// How server `status` is doing, as the admin API and the Python package
/// show it: state, health, instances, requests in flight and queued,
/// breaker, protocol, counters from `metrics`, recent errors; with its
/// `config`, also its transport type, namespace and priority.
#[must_use]
pub fn describe(
    status: &ServerStatus,
    metrics: &MetricsSnapshot,
    config: Option<&ServerConfig>,
) -> Value {
    let counters = metrics
        .servers
        .iter()
        .find(|m| m.id.as_ref() == Some(&status.id));
    let instances: Vec<Value> = status
        .instances
        .iter()
        .map(|state| match state {
            ServerState::Restarting { attempt, reason } => {
                json!({"state": state.name(), "attempt": attempt, "reason": reason})
            }
            ServerState::Failed { reason } => json!({"state": state.name(), "reason": reason}),
            _ => json!({"state": state.name()}),
        })
        .collect();
    let state = status
        .instances
        .iter()
        .find(|s| **s == ServerState::Running)
        .or_else(|| status.instances.first())
        .map_or("stopped", ServerState::name);
    json!({
        "name": status.id.as_str(),
        "type": config.map(|c| c.transport().name()),
        "namespace": config.map(ServerConfig::namespace),
        "priority": config.map(ServerConfig::priority),
        "transport": status.transport,
        "state": state,
        "health": health(status),
        "instances": instances,
        "inFlight": status.in_flight,
        "queued": status.queued,
        "breaker": status.breaker.map(|b| b.name()),
        "protocolVersion": status.session.as_ref().map(|s| s.protocol_version.as_str()),
        "serverInfo": status.session.as_ref().map(|s| json!({
            "name": s.server_info.name,
            "version": s.server_info.version,
        })),
        "requests": counters.map_or(0, |c| c.requests),
        "errors": counters.map_or(0, |c| c.errors),
        "timeouts": counters.map_or(0, |c| c.timeouts),
        "restarts": counters.map_or(0, |c| c.restarts),
        "recentErrors": status.recent_errors.iter().map(|e| json!({
            "atMs": e.at_ms,
            "message": e.message,
        })).collect::<Vec<_>>(),
    })
}
