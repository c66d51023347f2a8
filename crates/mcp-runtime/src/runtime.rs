//! `McpRuntime`: the registry actor that owns the deployed servers, driven
//! by [`McpCommand`]s over one bounded channel.
//!
//! The actor never waits on a server: starting, stopping and executing run
//! in tasks of their own and report back, so one slow server cannot hold up
//! commands for the others. For the hot path, [`McpRuntime::server`] hands
//! out the server's [`ServerHandle`], which talks to the server's connection
//! actors directly.

use std::borrow::Cow;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use mcp_core::ServerId;
use mcp_protocol::Notification;
use mcp_protocol::raw::Raw;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::error::{Error, ErrorKind, Result};
use crate::observe::{NoObserver, Observer};
use crate::server::{CallOptions, ServerEvent, ServerHandle, ServerSpec, ServerState};

/// Commands queued for the registry before senders wait.
const COMMAND_CAPACITY: usize = 256;
/// Server notifications buffered for slow subscribers.
const EVENT_CAPACITY: usize = 1024;

/// What the runtime can be asked to do.
#[non_exhaustive]
pub enum McpCommand {
    /// Start a server and answer once it is running.
    Deploy {
        /// What to run.
        spec: ServerSpec,
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
    /// Send a request to a server.
    Execute {
        /// Which server.
        id: ServerId,
        /// The method.
        method: Cow<'static, str>,
        /// The params, raw.
        params: Option<Raw<'static>>,
        /// Timeout, progress and session.
        options: CallOptions,
        /// The result; dropping the receiver cancels the request.
        reply: oneshot::Sender<Result<Raw<'static>>>,
    },
    /// Send a notification to a server.
    Notify {
        /// Which server.
        id: ServerId,
        /// What to send.
        notification: Notification<'static>,
        /// Answered once it is queued.
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
    /// Run a different number of instances of a server.
    Scale {
        /// Which server.
        id: ServerId,
        /// How many.
        instances: NonZeroU32,
        /// Answered once the new instances run or the extra ones stopped.
        reply: oneshot::Sender<Result<()>>,
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
    commands: mpsc::Sender<McpCommand>,
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

    /// Sends a raw command.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Shutdown`] when the runtime has stopped.
    pub async fn send(&self, command: McpCommand) -> Result<()> {
        self.commands.send(command).await.map_err(|_| shut_down())
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> McpCommand) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.send(make(reply)).await?;
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

    /// Deploys a server and waits until it runs.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::AlreadyExists`], or why it did not start.
    pub async fn deploy(&self, spec: ServerSpec) -> Result<ServerHandle> {
        self.ask(|reply| McpCommand::Deploy { spec, reply }).await?
    }

    /// Stops a server and forgets it.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`].
    pub async fn undeploy(&self, id: &ServerId) -> Result<()> {
        let id = id.clone();
        self.ask(|reply| McpCommand::Undeploy { id, reply }).await?
    }

    /// The handle of a deployed server.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`].
    pub async fn server(&self, id: &ServerId) -> Result<ServerHandle> {
        let id = id.clone();
        self.ask(|reply| McpCommand::Get { id, reply }).await?
    }

    /// Sends a request to a server and waits for the result. Dropping the
    /// future cancels the request.
    ///
    /// # Errors
    ///
    /// As [`ServerHandle::request`], or [`ErrorKind::NotFound`].
    pub async fn execute(
        &self,
        id: &ServerId,
        method: impl Into<Cow<'static, str>>,
        params: Option<Raw<'static>>,
        options: CallOptions,
    ) -> Result<Raw<'static>> {
        let id = id.clone();
        let method = method.into();
        self.ask(|reply| McpCommand::Execute {
            id,
            method,
            params,
            options,
            reply,
        })
        .await?
    }

    /// Sends a notification to a server.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`] or [`ErrorKind::Unavailable`].
    pub async fn notify(&self, id: &ServerId, notification: Notification<'static>) -> Result<()> {
        let id = id.clone();
        self.ask(|reply| McpCommand::Notify {
            id,
            notification,
            reply,
        })
        .await?
    }

    /// Every server with its state, sorted by id.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Shutdown`].
    pub async fn list(&self) -> Result<Vec<ServerStatus>> {
        self.ask(|reply| McpCommand::List { reply }).await
    }

    /// Runs `instances` copies of a server.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::NotFound`], or a new instance's start-up error.
    pub async fn scale(&self, id: &ServerId, instances: NonZeroU32) -> Result<()> {
        let id = id.clone();
        self.ask(|reply| McpCommand::Scale {
            id,
            instances,
            reply,
        })
        .await?
    }

    /// Counters of every server.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Shutdown`].
    pub async fn metrics(&self) -> Result<MetricsSnapshot> {
        self.ask(|reply| McpCommand::Metrics { reply }).await
    }

    /// Stops every server (each drains its requests for up to its request
    /// timeout, then is stopped) and the runtime.
    pub async fn shutdown(&self) {
        let _ = self.ask(|reply| McpCommand::Shutdown { reply }).await;
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
    async fn run(mut self, mut commands: mpsc::Receiver<McpCommand>) {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
        let shutdown_reply = loop {
            tokio::select! {
                Some(done) = done_rx.recv() => self.on_done(done),
                command = commands.recv() => match command {
                    Some(McpCommand::Shutdown { reply }) => break Some(reply),
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

    fn on_command(&mut self, command: McpCommand, done: &mpsc::UnboundedSender<Done>) {
        match command {
            McpCommand::Deploy { spec, reply } => self.deploy(spec, reply, done),
            McpCommand::Undeploy { id, reply } => match self.servers.remove(&id) {
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
            McpCommand::Execute {
                id,
                method,
                params,
                options,
                mut reply,
            } => match self.handle(&id) {
                Ok(handle) => {
                    tokio::spawn(async move {
                        tokio::select! {
                            result = handle.request(method, params, options) => { let _ = reply.send(result); }
                            // The caller went away: dropping the request cancels it.
                            () = reply.closed() => {}
                        }
                    });
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
            McpCommand::Notify {
                id,
                notification,
                reply,
            } => match self.handle(&id) {
                Ok(handle) => {
                    tokio::spawn(async move {
                        let _ = reply.send(handle.notify(notification).await);
                    });
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
            McpCommand::Get { id, reply } => {
                let _ = reply.send(self.handle(&id));
            }
            McpCommand::List { reply } => {
                let _ = reply.send(self.list());
            }
            McpCommand::Scale {
                id,
                instances,
                reply,
            } => match self.handle(&id) {
                Ok(handle) => {
                    tokio::spawn(async move {
                        let _ = reply.send(handle.scale(instances).await);
                    });
                }
                Err(error) => {
                    let _ = reply.send(Err(error));
                }
            },
            McpCommand::Metrics { reply } => {
                let _ = reply.send(self.metrics());
            }
            McpCommand::Shutdown { reply } => {
                // Handled by the loop; unreachable here.
                let _ = reply.send(());
            }
        }
    }

    fn deploy(
        &mut self,
        spec: ServerSpec,
        reply: oneshot::Sender<Result<ServerHandle>>,
        done: &mpsc::UnboundedSender<Done>,
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
                    let _ = done.send(Done::Deployed { id, result, reply });
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
fn refuse(command: McpCommand) {
    match command {
        McpCommand::Deploy { reply, .. } | McpCommand::Get { reply, .. } => {
            let _ = reply.send(Err(shut_down()));
        }
        McpCommand::Undeploy { reply, .. }
        | McpCommand::Notify { reply, .. }
        | McpCommand::Scale { reply, .. } => {
            let _ = reply.send(Err(shut_down()));
        }
        McpCommand::Execute { reply, .. } => {
            let _ = reply.send(Err(shut_down()));
        }
        McpCommand::List { reply } => {
            let _ = reply.send(Vec::new());
        }
        McpCommand::Metrics { reply } => {
            let _ = reply.send(MetricsSnapshot::default());
        }
        McpCommand::Shutdown { reply } => {
            let _ = reply.send(());
        }
    }
}
