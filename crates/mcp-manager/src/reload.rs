//! Changing the servers of a running gateway: the [`Control`] actor owns
//! the list of running servers and applies a new config, a deploy or an
//! undeploy (from the admin API) one at a time; hot reload feeds it.
//!
//! Hot reload: `serve --config FILE` watches the file and applies its
//! changes to the running gateway.
//!
//! The file is read again when its content changes (looked at every
//! second; editors that replace the file are fine) or on SIGHUP. A file
//! that does not load or check is rejected with every problem logged, and
//! the running servers stay as they were. Otherwise, server by server:
//!
//! - gone (or now disabled): taken out of the gateway first, so no new
//!   request reaches it, then stopped after its requests in flight finish
//!   (up to its request timeout);
//! - new: started, and added to the gateway once running (one that fails to
//!   start is logged and left out);
//! - changed: taken out, drained and stopped, then started with its new
//!   settings and put back;
//! - unchanged: left alone, its processes and sessions untouched.
//!
//! Every client session is then told which lists changed. `mcpManager`
//! options (separator, limits) apply at the next start; a change to them
//! is logged as such. A server deployed through the admin API runs until
//! undeployed, or until the file is applied again: the file is the
//! source of truth.

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use mcp_core::{ManagerConfig, ServerConfig, ServerId};
use mcp_runtime::McpRuntime;
use mcp_runtime::gateway::{Backend, Gateway};
use tokio::sync::{mpsc, oneshot};

use crate::launch;

/// How often the file is looked at.
const POLL: Duration = Duration::from_secs(1);

/// The servers the gateway runs now, by id, with the config they run.
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
    Apply(Box<ManagerConfig>),
    /// Start one more server.
    Deploy {
        config: Box<ServerConfig>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Stop one server.
    Undeploy {
        id: ServerId,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// A handle to the control actor, which owns the list of running servers.
#[derive(Clone, Debug)]
pub(crate) struct Control {
    commands: mpsc::Sender<Command>,
}

impl Control {
    /// Starts the actor over `servers`, the gateway's backends now.
    pub(crate) fn start(
        runtime: McpRuntime,
        gateway: Arc<Gateway>,
        servers: Vec<(ServerConfig, Backend)>,
    ) -> Self {
        let (commands, mut receiver) = mpsc::channel(16);
        tokio::spawn(async move {
            let mut running = Running { servers };
            while let Some(command) = receiver.recv().await {
                match command {
                    Command::Apply(config) => {
                        apply(&runtime, &gateway, &mut running, &config).await;
                    }
                    Command::Deploy { config, reply } => {
                        let _ = reply.send(deploy(&runtime, &gateway, &mut running, &config).await);
                    }
                    Command::Undeploy { id, reply } => {
                        let _ = reply.send(undeploy(&runtime, &gateway, &mut running, &id).await);
                    }
                }
            }
        });
        Self { commands }
    }

    async fn ask(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Command,
    ) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| "the gateway is stopping".to_owned())?;
        answer
            .await
            .unwrap_or_else(|_| Err("the gateway is stopping".to_owned()))
    }

    /// Starts `config`'s server and adds it to the gateway.
    pub(crate) async fn deploy(&self, config: ServerConfig) -> Result<(), String> {
        let config = Box::new(config);
        self.ask(|reply| Command::Deploy { config, reply }).await
    }

    /// Takes server `id` out of the gateway and stops it.
    pub(crate) async fn undeploy(&self, id: ServerId) -> Result<(), String> {
        self.ask(|reply| Command::Undeploy { id, reply }).await
    }

    async fn apply(&self, config: ManagerConfig) {
        let _ = self.commands.send(Command::Apply(Box::new(config))).await;
    }
}

/// Starts the servers of `configs` side by side; those that run join
/// `running` (the gateway is not told yet). How each start went, an
/// error naming the server for one that did not.
async fn start_into<'c>(
    runtime: &McpRuntime,
    running: &mut Running,
    configs: impl Iterator<Item = &'c ServerConfig>,
) -> Vec<Result<&'c ServerId, String>> {
    let mut outcomes = Vec::new();
    for started in launch::start(runtime, configs).await {
        let id = started.config.id();
        outcomes.push(match started.handle {
            Some(Ok(handle)) => {
                running
                    .servers
                    .push((started.config.clone(), backend(started.config, handle)));
                Ok(id)
            }
            Some(Err(reason)) => Err(format!("`{id}` failed to start: {reason}")),
            None => Err(format!("`{id}` is disabled")),
        });
    }
    running.sort();
    outcomes
}

async fn deploy(
    runtime: &McpRuntime,
    gateway: &Gateway,
    running: &mut Running,
    config: &ServerConfig,
) -> Result<(), String> {
    let id = config.id();
    if running.servers.iter().any(|(c, _)| c.id() == id) {
        return Err(format!("a server `{id}` is already deployed"));
    }
    let outcome = start_into(runtime, running, std::iter::once(config)).await;
    outcome
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(format!("`{id}` did not start")))?;
    gateway.set_backends(running.backends());
    eprintln!("mcp-manager: {id}: deployed, running");
    Ok(())
}

async fn undeploy(
    runtime: &McpRuntime,
    gateway: &Gateway,
    running: &mut Running,
    id: &ServerId,
) -> Result<(), String> {
    let Some(position) = running.servers.iter().position(|(c, _)| c.id() == id) else {
        return Err(format!("no server `{id}` is deployed"));
    };
    running.servers.remove(position);
    gateway.set_backends(running.backends());
    eprintln!("mcp-manager: {id}: undeployed, stopping it");
    runtime.undeploy(id).await.map_err(|e| e.to_string())
}

/// The backend of a started server.
pub(crate) fn backend(config: &ServerConfig, handle: mcp_runtime::ServerHandle) -> Backend {
    Backend {
        handle,
        namespace: config.namespace().to_owned(),
        tools: config.tools().clone(),
    }
}

/// Checks `bytes`, the config file at `path`: the config, or every problem
/// as one text.
fn check(path: &Path, bytes: Vec<u8>) -> Result<ManagerConfig, String> {
    let registry = mcp_plugins::default_registry();
    ManagerConfig::from_file_bytes(path, bytes)
        .and_then(|config| config.check_servers(|server| registry.config_issue(server)))
        .map_err(|error| error.to_string())
}

/// Watches `path` until `stop` resolves, having `control` apply each new
/// version of it.
pub(crate) async fn watch(
    path: PathBuf,
    control: Control,
    mut config: ManagerConfig,
    stop: impl Future<Output = ()>,
) {
    let mut stop = std::pin::pin!(stop);
    let mut seen = std::fs::read(&path).ok();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut hangup = hangups();
    loop {
        let forced = tokio::select! {
            () = &mut stop => return,
            _ = tick.tick() => false,
            Some(()) = next_hangup(&mut hangup) => true,
        };
        let now = std::fs::read(&path);
        if !forced && now.as_ref().ok() == seen.as_ref() {
            continue;
        }
        seen = now.as_ref().ok().cloned();
        tracing::info!("reading {} again", path.display());
        let checked = now
            .map_err(|error| format!("cannot read {}: {error}", path.display()))
            .and_then(|bytes| check(&path, bytes));
        match checked {
            Err(problems) => {
                eprintln!(
                    "mcp-manager: config reload rejected, still running the previous one: {problems}"
                );
            }
            Ok(new) => {
                if new.gateway() != config.gateway() {
                    tracing::warn!(
                        "`mcpManager` changed in {}: it applies at the next start",
                        path.display()
                    );
                }
                config = new.clone();
                control.apply(new).await;
            }
        }
    }
}

/// Brings `running` in line with `new`.
async fn apply(
    runtime: &McpRuntime,
    gateway: &Gateway,
    running: &mut Running,
    new: &ManagerConfig,
) {
    let wanted: HashMap<&ServerId, &ServerConfig> = new
        .servers()
        .iter()
        .filter(|s| s.is_enabled())
        .map(|s| (s.id(), s))
        .collect();
    let (keep, leave): (Vec<_>, Vec<_>) = std::mem::take(&mut running.servers)
        .into_iter()
        .partition(|(config, _)| wanted.get(config.id()) == Some(&config));
    // Out of the gateway first, so nothing new reaches them.
    running.servers = keep;
    gateway.set_backends(running.backends());
    for (config, _) in &leave {
        let id = config.id();
        let verb = if wanted.contains_key(id) {
            "changed"
        } else {
            "removed"
        };
        eprintln!("mcp-manager: {id}: {verb}, stopping it");
        if let Err(error) = runtime.undeploy(id).await {
            tracing::warn!(server = %id, "stopping it: {error}");
        }
    }
    let starting: Vec<&ServerConfig> = new
        .servers()
        .iter()
        .filter(|s| s.is_enabled())
        .filter(|s| !running.servers.iter().any(|(c, _)| c.id() == s.id()))
        .collect();
    for outcome in start_into(runtime, running, starting.into_iter()).await {
        match outcome {
            Ok(id) => eprintln!("mcp-manager: {id}: running"),
            Err(reason) => eprintln!("mcp-manager: not started: {reason}"),
        }
    }
    gateway.set_backends(running.backends());
    eprintln!(
        "mcp-manager: config reloaded: serving {} server(s)",
        running.servers.len()
    );
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangups() -> Hangups {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

/// The next SIGHUP; never, where there are none.
async fn next_hangup(hangups: &mut Hangups) -> Option<()> {
    #[cfg(unix)]
    if let Some(signal) = hangups {
        return signal.recv().await;
    }
    let _ = hangups;
    std::future::pending().await
}
