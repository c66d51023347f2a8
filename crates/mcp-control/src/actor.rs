//! The control actor: the running servers of one gateway, changed one
//! step at a time.
//!
//! Applying a config, server by server: gone (or now disabled) ones are
//! taken out of the gateway first, so no new request reaches them, then
//! stopped after their requests in flight finish; new ones are started and
//! added once running (one that fails to start is reported, kept as a
//! [`FailedStart`] that `describe_all` shows and the gateway names when it
//! is called, and tried again after its restart backoff, doubled after
//! each failed try up to its longest, unless its restart policy is
//! `never`, and on the next reload);
//! changed ones are taken out, drained and stopped, then started with their
//! new settings; unchanged ones are left alone, processes and sessions
//! untouched. Applied with a new plugin registry (the plugins directory
//! changed), a server whose type now launches differently (its plugin was
//! replaced) counts as changed, and one whose type is gone (its plugin was
//! removed) is stopped and kept as failed with the reason, until a plugin
//! serves its type again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use mcp_core::config::RestartPolicy;
use mcp_core::state::Deployed;
use mcp_core::{ManagerConfig, ServerConfig, ServerId};
use mcp_gateway::{Backend, Gateway, Unavailable};
use mcp_plugin_api::PluginRegistry;
use mcp_runtime::{McpRuntime, Server};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};
use crate::start::{Policies, Report, backend, start_servers};

/// A server of the config that did not start, and why.
#[derive(Clone, Debug)]
pub struct FailedStart {
    /// Its config.
    pub config: ServerConfig,
    /// Why it did not start.
    pub reason: String,
}

/// The servers the gateway runs now, sorted by id, with the config each
/// runs; and those of the config that did not start.
struct Running {
    servers: Vec<(ServerConfig, Server<Deployed>)>,
    failed: Vec<FailedStart>,
}

impl Running {
    fn backends(&self) -> Vec<Backend> {
        self.servers
            .iter()
            .map(|(config, server)| backend(config, server))
            .collect()
    }

    fn unavailable(&self) -> Vec<Unavailable> {
        self.failed
            .iter()
            .map(|failed| Unavailable {
                server: failed.config.id().clone(),
                namespace: failed.config.namespace().to_owned(),
                reason: format!("it failed to start: {}", failed.reason),
            })
            .collect()
    }

    fn forget_failed(&mut self, id: &ServerId) -> bool {
        let before = self.failed.len();
        self.failed.retain(|failed| failed.config.id() != id);
        self.failed.len() != before
    }

    fn sort(&mut self) {
        self.servers
            .sort_by(|(a, _), (b, _)| a.id().as_str().cmp(b.id().as_str()));
        self.failed
            .sort_by(|a, b| a.config.id().as_str().cmp(b.config.id().as_str()));
    }
}

/// What the control actor is asked to do.
enum Command {
    /// Run the enabled servers of this config, and only those (with this
    /// registry from now on, when given).
    Apply(
        Box<ManagerConfig>,
        Option<Arc<PluginRegistry>>,
        oneshot::Sender<()>,
    ),
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
    /// The servers that did not start.
    Failed(oneshot::Sender<Vec<FailedStart>>),
}

/// The control actor that owns the list of running servers; cheap to
/// clone. It stops when the last clone is dropped.
#[derive(Clone)]
pub struct Control {
    commands: mpsc::Sender<Command>,
    registry: Arc<ArcSwap<PluginRegistry>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

/// The actor.
struct Actor {
    runtime: McpRuntime,
    registry: Arc<PluginRegistry>,
    shared_registry: Arc<ArcSwap<PluginRegistry>>,
    gateway: Arc<Gateway>,
    running: Running,
    report: Report,
    /// When each server that failed to start is tried again, and the
    /// wait after that try (doubled each time, up to its restart config's
    /// longest backoff).
    retries: HashMap<ServerId, (Instant, Duration)>,
}

impl Control {
    /// The gateway over `servers` (names joined with `separator`, list
    /// changes and server notifications forwarded to its clients), and the
    /// actor that changes its servers from now on, starting new ones
    /// through `registry`; what the actor does goes to `report`. The
    /// servers of the config that did not start, `failed`, are shown as
    /// failed and answer calls with their reason until a later try, a
    /// reload or a deploy starts them. Must be called within a tokio
    /// runtime.
    #[must_use]
    pub fn start(
        runtime: McpRuntime,
        registry: Arc<PluginRegistry>,
        separator: &str,
        policies: Policies,
        servers: Vec<(ServerConfig, Server<Deployed>)>,
        failed: Vec<FailedStart>,
        report: Report,
    ) -> (Self, Arc<Gateway>) {
        let (commands, mut receiver) = mpsc::channel(16);
        let mut running = Running { servers, failed };
        running.sort();
        let mut gateway =
            Gateway::new(running.backends(), separator).with_notifications(runtime.clone());
        if let Some(pinning) = policies.pinning {
            gateway = gateway.with_pinning(pinning);
        }
        if let Some(access) = policies.access {
            gateway = gateway.with_access(access);
        }
        if let Some(audit) = policies.audit {
            gateway = gateway.with_audit(audit);
        }
        if let Some(key) = &policies.cluster_key {
            gateway = gateway.with_cluster_key(key);
        }
        let gateway = Arc::new(gateway);
        gateway.set_unavailable(running.unavailable());
        let shared_registry = Arc::new(ArcSwap::new(registry.clone()));
        let mut actor = Actor {
            runtime,
            registry,
            shared_registry: shared_registry.clone(),
            gateway: gateway.clone(),
            running,
            report,
            retries: HashMap::new(),
        };
        actor.schedule_retries();
        tokio::spawn(async move {
            loop {
                let due = actor.retries.values().map(|(at, _)| *at).min();
                let command = tokio::select! {
                    command = receiver.recv() => command,
                    () = sleep_until_due(due) => {
                        actor.retry_failed().await;
                        continue;
                    }
                };
                let Some(command) = command else {
                    break;
                };
                match command {
                    Command::Apply(config, registry, done) => {
                        actor.apply(&config, registry).await;
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
                    Command::Failed(reply) => {
                        let _ = reply.send(actor.running.failed.clone());
                    }
                }
            }
        });
        (
            Self {
                commands,
                registry: shared_registry,
            },
            gateway,
        )
    }

    /// The plugins new servers are started through now.
    #[must_use]
    pub fn registry(&self) -> Arc<PluginRegistry> {
        self.registry.load_full()
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

    /// The servers of the config that did not start, sorted by id; none
    /// once the actor has stopped.
    pub async fn failed(&self) -> Vec<FailedStart> {
        let (reply, answer) = oneshot::channel();
        if self.commands.send(Command::Failed(reply)).await.is_err() {
            return Vec::new();
        }
        answer.await.unwrap_or_default()
    }

    /// Why server `id` did not start, when it is one of the config's
    /// servers that did not.
    pub async fn failed_reason(&self, id: &ServerId) -> Option<String> {
        self.failed()
            .await
            .into_iter()
            .find(|failed| failed.config.id() == id)
            .map(|failed| failed.reason)
    }

    /// Brings the running servers in line with `config` (see the module
    /// docs) and waits until that is done.
    pub async fn apply(&self, config: ManagerConfig) {
        self.send_apply(config, None).await;
    }

    /// [`Control::apply`] with `registry` from now on: the plugins
    /// directory changed. Servers whose type launches differently through
    /// it are restarted (drained first); those whose type it does not
    /// serve are stopped and shown as failed, with the reason.
    pub async fn apply_with(&self, config: ManagerConfig, registry: Arc<PluginRegistry>) {
        self.send_apply(config, Some(registry)).await;
    }

    async fn send_apply(&self, config: ManagerConfig, registry: Option<Arc<PluginRegistry>>) {
        let (done, applied) = oneshot::channel();
        if self
            .commands
            .send(Command::Apply(Box::new(config), registry, done))
            .await
            .is_ok()
        {
            let _ = applied.await;
        }
    }
}

impl Actor {
    /// Starts the servers of `configs` side by side; those that run join
    /// the running ones and those that do not the failed ones, if
    /// `remember` (the gateway is not told yet). How each start went, an
    /// error naming the server for one that did not.
    async fn start_into<'c>(
        &mut self,
        configs: impl Iterator<Item = &'c ServerConfig>,
        remember: bool,
    ) -> Vec<Result<&'c ServerId, String>> {
        let mut outcomes = Vec::new();
        for started in start_servers(&self.runtime, &self.registry, configs).await {
            let id = started.config.id();
            outcomes.push(match started.server {
                Some(Ok(server)) => {
                    self.running.forget_failed(id);
                    self.running.servers.push((started.config.clone(), server));
                    Ok(id)
                }
                Some(Err(reason)) => {
                    let message = format!("`{id}` failed to start: {reason}");
                    if remember {
                        self.running.forget_failed(id);
                        self.running.failed.push(FailedStart {
                            config: started.config.clone(),
                            reason,
                        });
                    }
                    Err(message)
                }
                None => Err(format!("`{id}` is disabled")),
            });
        }
        self.running.sort();
        if remember {
            self.schedule_retries();
        }
        outcomes
    }

    /// Schedules a new try for each server that failed to start and has
    /// none yet, after its restart config's first backoff (none for a
    /// server that is never restarted); forgets the tries of servers no
    /// longer failed.
    fn schedule_retries(&mut self) {
        let failed = &self.running.failed;
        self.retries
            .retain(|id, _| failed.iter().any(|f| f.config.id() == id));
        let now = Instant::now();
        for failed in failed {
            let restart = failed.config.restart();
            if restart.policy() == RestartPolicy::Never {
                continue;
            }
            let first = restart.initial_backoff();
            self.retries
                .entry(failed.config.id().clone())
                .or_insert((now + first, first));
        }
    }

    /// Tries again to start the servers whose try is due: a remote server
    /// that was down, or asked for a sign-in the user has done since.
    async fn retry_failed(&mut self) {
        let now = Instant::now();
        let due: Vec<ServerConfig> = self
            .running
            .failed
            .iter()
            .filter(|f| {
                self.retries
                    .get(f.config.id())
                    .is_some_and(|(at, _)| *at <= now)
            })
            .map(|f| f.config.clone())
            .collect();
        if due.is_empty() {
            return;
        }
        let waits: HashMap<ServerId, Duration> = due
            .iter()
            .filter_map(|c| Some((c.id().clone(), self.retries.remove(c.id())?.1)))
            .collect();
        let mut started = false;
        for outcome in self.start_into(due.iter(), true).await {
            match outcome {
                Ok(id) => {
                    started = true;
                    (self.report)(&format!("{id}: running (started on a later try)"));
                }
                Err(reason) => tracing::debug!("tried again: {reason}"),
            }
        }
        let now = Instant::now();
        for config in &due {
            if self
                .running
                .failed
                .iter()
                .any(|f| f.config.id() == config.id())
            {
                let wait = waits
                    .get(config.id())
                    .map_or(config.restart().initial_backoff(), |wait| {
                        (*wait * 2).min(config.restart().max_backoff())
                    });
                self.retries.insert(config.id().clone(), (now + wait, wait));
            }
        }
        if started {
            self.publish();
        } else {
            self.gateway.set_unavailable(self.running.unavailable());
        }
    }

    fn publish(&self) {
        self.gateway.set_unavailable(self.running.unavailable());
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
        // A deploy that fails says so to its caller and changes nothing.
        let outcome = self.start_into(std::iter::once(config), false).await;
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
            if self.running.forget_failed(id) {
                self.retries.remove(id);
                self.publish();
                (self.report)(&format!("{id}: undeployed (it had not started)"));
                return Ok(());
            }
            return Err(Error::not_found(id.as_str()));
        };
        let (_, server) = self.running.servers.remove(position);
        self.publish();
        (self.report)(&format!("{id}: undeployed, stopping it"));
        server
            .undeploy()
            .await
            .map(drop)
            .map_err(|e| Error::new(ErrorKind::Failed, e.to_string()))
    }

    async fn apply(&mut self, new: &ManagerConfig, registry: Option<Arc<PluginRegistry>>) {
        let previous = registry.map(|registry| {
            self.shared_registry.store(registry.clone());
            std::mem::replace(&mut self.registry, registry)
        });
        let wanted: HashMap<&ServerId, &ServerConfig> = new
            .servers()
            .iter()
            .filter(|s| s.is_enabled())
            .map(|s| (s.id(), s))
            .collect();
        let current = &self.registry;
        let (keep, leave): (Vec<_>, Vec<_>) = std::mem::take(&mut self.running.servers)
            .into_iter()
            .partition(|(config, _)| {
                wanted.get(config.id()) == Some(&config)
                    && previous
                        .as_ref()
                        .is_none_or(|old| launches_alike(old, current, config))
            });
        // Out of the gateway first, so nothing new reaches them. Those that
        // failed to start are tried again (or forgotten, when gone).
        self.running.servers = keep;
        self.running.failed.clear();
        self.retries.clear();
        self.publish();
        for (config, server) in leave {
            let id = config.id();
            let verb = match wanted.get(id) {
                Some(wanted) if *wanted == &config => "changed plugin",
                Some(_) => "changed",
                None => "removed",
            };
            (self.report)(&format!("{id}: {verb}, stopping it"));
            if let Err(error) = server.undeploy().await {
                tracing::warn!(server = %id, "stopping it: {error}");
            }
        }
        let starting: Vec<&ServerConfig> = new
            .servers()
            .iter()
            .filter(|s| s.is_enabled())
            .filter(|s| !self.running.servers.iter().any(|(c, _)| c.id() == s.id()))
            .collect();
        for outcome in self.start_into(starting.into_iter(), true).await {
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

/// Waits until `due`; forever when there is nothing to wait for.
async fn sleep_until_due(due: Option<Instant>) {
    match due {
        Some(due) => tokio::time::sleep_until(due).await,
        None => std::future::pending().await,
    }
}

/// Whether `config`'s server starts the same way through `old` and `new`:
/// the same plugin serves its type, and gives the same launch.
fn launches_alike(old: &PluginRegistry, new: &PluginRegistry, config: &ServerConfig) -> bool {
    let kind = mcp_plugin_api::plugin_kind(config);
    let same_plugin = matches!(
        (old.plugin(kind), new.plugin(kind)),
        (Ok(a), Ok(b)) if a == b
    );
    same_plugin
        && matches!(
            (old.launch(config), new.launch(config)),
            (Ok(a), Ok(b)) if a.same_as(&b)
        )
}
