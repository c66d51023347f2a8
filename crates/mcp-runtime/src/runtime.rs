//! `McpRuntime`: the registry actor that owns the deployed servers, driven
//! by `Command`s over one bounded channel.
//!
//! The actor never waits on a server: starting and stopping run in tasks of
//! their own and report back, so one slow server cannot hold up commands
//! for the others. Servers are deployed and undeployed through the
//! type-state API ([`crate::Server`]); [`McpRuntime::server`] finds a
//! deployed one by name, whose [`ServerHandle`] talks to its connection
//! actors directly.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use mcp_core::ServerId;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{Error, ErrorKind, Result};
use crate::observe::{NoObserver, Observer};
use crate::server::{ServerEvent, ServerHandle, ServerSpec, ServerState};

/// Commands queued for the registry before senders wait.
const COMMAND_CAPACITY: usize = 256;
/// Server notifications buffered for slow subscribers.
const EVENT_CAPACITY: usize = 1024;

/// What the registry actor can be asked to do.
pub(crate) enum Command {
    /// Start a server and answer once it is running.
    Deploy {
        /// What to run (boxed: the other commands are small).
        spec: Box<ServerSpec>,
        /// The server's handle, or why it did not start.
        reply: oneshot::Sender<Result<ServerHandle>>,
    },
    /// Stop a server and forget it.
    Undeploy {
        /// Which server.
        id: ServerId,
        /// Answered once it is stopped.
        reply: oneshot::Sender<Result<()>>,
    },
    /// The handle of a server.
    Get {
        /// Which server.
        id: ServerId,
        /// Its handle.
        reply: oneshot::Sender<Result<ServerHandle>>,
    },
    /// Every server with its state.
    List {
        /// The servers, sorted by id.
        reply: oneshot::Sender<Vec<ServerStatus>>,
    },
    /// Counters of every server.
    Metrics {
        /// The snapshot.
        reply: oneshot::Sender<MetricsSnapshot>,
    },
    /// Stop every server and the runtime.
    Shutdown {
        /// Answered once everything is stopped.
        reply: oneshot::Sender<()>,
    },
}

/// A server as `list` shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerStatus {
    /// Its id.
    pub id: ServerId,
    /// How it is reached.
    pub transport: String,
    /// The state of each instance.
    pub instances: Vec<ServerState>,
    /// Requests in flight.
    pub in_flight: usize,
    /// What it said in its handshake, once running.
    pub session: Option<crate::server::SessionInfo>,
    /// Its circuit breaker's state; `None` without a breaker.
    pub breaker: Option<crate::observe::BreakerState>,
    /// Requests waiting in its bulkhead's queue.
    pub queued: usize,
    /// Its most recent errors (requests without an answer, lost
    /// connections), oldest first.
    pub recent_errors: Vec<crate::server::RecentError>,
    /// The client sessions with an instance of their own (a per-client
    /// server's; 0 for a shared one).
    pub client_instances: usize,
}

/// Counters of one server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerMetrics {
    /// Its id.
    pub id: Option<ServerId>,
    /// Requests sent.
    pub requests: u64,
    /// Requests that ended in an error of any kind.
    pub errors: u64,
    /// Requests that timed out.
    pub timeouts: u64,
    /// Restarts after a lost connection.
    pub restarts: u64,
    /// Requests in flight now.
    pub in_flight: usize,
    /// Instances.
    pub instances: usize,
}

/// Counters of every server.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// One entry per server, sorted by id.
    pub servers: Vec<ServerMetrics>,
}

/// The runtime: a handle to the registry actor. Cheap to clone; when the
/// last clone is dropped, every server is stopped.
#[derive(Clone, Debug)]
pub struct McpRuntime {
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<ServerEvent>,
}

impl McpRuntime {
    /// Starts the registry actor on the current tokio runtime, reporting
    /// to no one.
    #[must_use]
    pub fn start() -> Self {
        Self::start_with(Arc::new(NoObserver))
    }

    /// Starts the registry actor on the current tokio runtime; every server
    /// it deploys reports to `observer`.
    #[must_use]
    pub fn start_with(observer: Arc<dyn Observer>) -> Self {
        let (commands, receiver) = mpsc::channel(COMMAND_CAPACITY);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let registry = Registry {
            servers: HashMap::new(),
            events: events.clone(),
            observer,
        };
        tokio::spawn(registry.run(receiver));
        Self { commands, events }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| shut_down())?;
        answer.await.map_err(|_| shut_down())
    }

    /// Every notification any server sends on its own.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<ServerEvent> {
        self.events.subscribe()
    }

    /// Tells every subscriber `event` as if its server had sent it (a
    /// gateway announcing that a server's lists changed because the server
    /// came or went, say).
    pub fn publish(&self, event: ServerEvent) {
        // No subscriber is fine.
        let _ = self.events.send(event);
    }

    /// Deploys a server and waits until it runs: the step behind
    /// [`crate::Server::deploy`].
    pub(crate) async fn deploy(&self, spec: ServerSpec) -> Result<ServerHandle> {
        self.ask(|reply| Command::Deploy {
            spec: Box::new(spec),
            reply,
        })
        .await?
    }

    /// Stops a server and forgets it: the step behind
    /// [`crate::Server::undeploy`].
    pub(crate) async fn undeploy(&self, id: &ServerId) -> Result<()> {
        let id = id.clone();
        self.ask(|reply| Command::Undeploy { id, reply }).await?
    }

    /// The handle of the deployed server called `id`: the step behind
    /// [`McpRuntime::server`] (in `typestate`).
    pub(crate) async fn handle(&self, id: &ServerId) -> Result<ServerHandle> {
        let id = id.clone();
        self.ask(|reply| Command::Get { id, reply }).await?
    }

    /// Every server with its state, sorted by id.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Shutdown`].
    pub async fn list(&self) -> Result<Vec<ServerStatus>> {
        self.ask(|reply| Command::List { reply }).await
    }

    /// Counters of every server.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Shutdown`].
    pub async fn metrics(&self) -> Result<MetricsSnapshot> {
        self.ask(|reply| Command::Metrics { reply }).await
    }

    /// Stops every server (each drains its requests for up to its request
    /// timeout, then is stopped) and the runtime.
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| Command::Shutdown { reply }).await;
    }
}

fn shut_down() -> Error {
    Error::new(ErrorKind::Shutdown, "the runtime has shut down")
}

fn not_found(id: &ServerId) -> Error {
    Error::new(ErrorKind::NotFound, format!("no server `{id}` is deployed"))
}

enum Slot {
    Deploying,
    Running(ServerHandle),
}

/// Internal messages from the registry's own tasks.
enum Done {
    Deployed {
        id: ServerId,
        result: Result<ServerHandle>,
        reply: oneshot::Sender<Result<ServerHandle>>,
    },
}

struct Registry {
    servers: HashMap<ServerId, Slot>,
    events: broadcast::Sender<ServerEvent>,
    observer: Arc<dyn Observer>,
}

impl Registry {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let (done_tx, mut done_rx) = mpsc::channel::<Done>(COMMAND_CAPACITY);
        let shutdown_reply = loop {
            tokio::select! {
                Some(done) = done_rx.recv() => self.on_done(done),
                command = commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => break Some(reply),
                    Some(command) => self.on_command(command, &done_tx),
                    None => break None,
                },
            }
        };
        let handles: Vec<ServerHandle> = self
            .servers
            .drain()
            .filter_map(|(_, slot)| match slot {
                Slot::Running(handle) => Some(handle),
                Slot::Deploying => None,
            })
            .collect();
        let stops: Vec<_> = handles
            .into_iter()
            .map(|h| tokio::spawn(async move { h.stop().await }))
            .collect();
        for stop in stops {
            let _ = stop.await;
        }
        // Refuse what is still queued.
        commands.close();
        while let Some(command) = commands.recv().await {
            refuse(command);
        }
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn on_done(&mut self, done: Done) {
        match done {
            Done::Deployed { id, result, reply } => {
                match &result {
                    Ok(handle) => {
                        self.servers.insert(id, Slot::Running(handle.clone()));
                    }
                    Err(_) => {
                        self.servers.remove(&id);
                    }
                }
                let _ = reply.send(result);
            }
        }
    }

    fn handle(&self, id: &ServerId) -> Result<ServerHandle> {
        match self.servers.get(id) {
            Some(Slot::Running(handle)) => Ok(handle.clone()),
            Some(Slot::Deploying) => Err(Error::new(
                ErrorKind::Unavailable,
                format!("server `{id}` is starting"),
            )),
            None => Err(not_found(id)),
        }
    }

    fn on_command(&mut self, command: Command, done: &mpsc::Sender<Done>) {
        match command {
            Command::Deploy { spec, reply } => self.deploy(*spec, reply, done),
            Command::Undeploy { id, reply } => match self.servers.remove(&id) {
                Some(Slot::Running(handle)) => {
                    tokio::spawn(async move {
                        handle.stop().await;
                        let _ = reply.send(Ok(()));
                    });
                }
                Some(Slot::Deploying) => {
                    self.servers.insert(id.clone(), Slot::Deploying);
                    let _ = reply.send(Err(Error::new(
                        ErrorKind::Unavailable,
                        format!("server `{id}` is still starting"),
                    )));
                }
                None => {
                    let _ = reply.send(Err(not_found(&id)));
                }
            },
            Command::Get { id, reply } => {
                let _ = reply.send(self.handle(&id));
            }
            Command::List { reply } => {
                let _ = reply.send(self.list());
            }
            Command::Metrics { reply } => {
                let _ = reply.send(self.metrics());
            }
            Command::Shutdown { reply } => {
                // Handled by the loop; unreachable here.
                let _ = reply.send(());
            }
        }
    }

    fn deploy(
        &mut self,
        spec: ServerSpec,
        reply: oneshot::Sender<Result<ServerHandle>>,
        done: &mpsc::Sender<Done>,
    ) {
        let id = spec.id.clone();
        match self.servers.entry(id.clone()) {
            Entry::Occupied(_) => {
                let _ = reply.send(Err(Error::new(
                    ErrorKind::AlreadyExists,
                    format!("server `{id}` is already deployed"),
                )));
            }
            Entry::Vacant(slot) => {
                slot.insert(Slot::Deploying);
                let events = self.events.clone();
                let observer = self.observer.server(&id);
                let done = done.clone();
                tokio::spawn(async move {
                    let result = ServerHandle::start(spec, events, observer).await;
                    let _ = done.send(Done::Deployed { id, result, reply }).await;
                });
            }
        }
    }

    fn running(&self) -> Vec<&ServerHandle> {
        let mut handles: Vec<&ServerHandle> = self
            .servers
            .values()
            .filter_map(|slot| match slot {
                Slot::Running(handle) => Some(handle),
                Slot::Deploying => None,
            })
            .collect();
        handles.sort_by(|a, b| a.id().cmp(b.id()));
        handles
    }

    fn list(&self) -> Vec<ServerStatus> {
        self.running()
            .into_iter()
            .map(|handle| ServerStatus {
                id: handle.id().clone(),
                transport: handle.spec().connector.describe(),
                instances: handle.states(),
                in_flight: handle.in_flight(),
                session: handle.session(),
                breaker: handle.breaker_state(),
                queued: handle.queued(),
                recent_errors: handle.recent_errors(),
                client_instances: handle.client_instances(),
            })
            .collect()
    }

    fn metrics(&self) -> MetricsSnapshot {
        let servers = self
            .running()
            .into_iter()
            .map(|handle| {
                let shared = handle.shared();
                ServerMetrics {
                    id: Some(handle.id().clone()),
                    requests: shared.requests.load(Ordering::Relaxed),
                    errors: shared.errors.load(Ordering::Relaxed),
                    timeouts: shared.timeouts.load(Ordering::Relaxed),
                    restarts: shared.restarts.load(Ordering::Relaxed),
                    in_flight: handle.in_flight(),
                    instances: handle.states().len(),
                }
            })
            .collect();
        MetricsSnapshot { servers }
    }
}

/// Answers a command that arrived after shutdown.
fn refuse(command: Command) {
    match command {
        Command::Deploy { reply, .. } | Command::Get { reply, .. } => {
            let _ = reply.send(Err(shut_down()));
        }
        Command::Undeploy { reply, .. } => {
            let _ = reply.send(Err(shut_down()));
        }
        Command::List { reply } => {
            let _ = reply.send(Vec::new());
        }
        Command::Metrics { reply } => {
            let _ = reply.send(MetricsSnapshot::default());
        }
        Command::Shutdown { reply } => {
            let _ = reply.send(());
        }
    }
}
