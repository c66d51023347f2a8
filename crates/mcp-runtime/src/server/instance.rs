//! One running copy of a server: its supervisor task, which starts a
//! transport, runs a connection actor on it and restarts it with backoff
//! when it is lost.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use std::borrow::Cow;

use mcp_core::config::{RestartConfig, RestartPolicy, SessionMode};
use mcp_core::{RequestContext, ServerId};
use mcp_protocol::Notification;
use mcp_protocol::mcp::Method;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::connection::{self, ConnCommand, ConnectionSettings, Exit, Wiring};
use crate::error::{Error, ErrorKind, Result};
use crate::lock;
use crate::server::direct::Direct;
use crate::server::{ServerEvent, ServerSpec, ServerState, SessionInfo, Shared};
use crate::transport::inprocess::InProcessEnd;

/// Commands queued for one instance before callers wait.
const COMMAND_CAPACITY: usize = 1024;

/// One running copy of a server.
pub(super) struct Instance {
    /// Unique among the instances of the process, for rendezvous hashing.
    pub(super) id: u64,
    pub(super) commands: mpsc::Sender<ConnCommand>,
    pub(super) in_flight: AtomicUsize,
    pub(super) state: watch::Receiver<ServerState>,
    pub(super) session: watch::Receiver<Option<SessionInfo>>,
    /// An in-process server, while its connection is ready: requests are
    /// made on the caller's task.
    pub(super) direct: Arc<ArcSwapOption<Direct>>,
    /// Set once it is told to stop: no new request goes to it.
    stopping: AtomicBool,
    stop: watch::Sender<bool>,
    /// Its supervisor, taken (once) by whoever stops it.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Instance {
    /// Whether it takes new requests: not stopping, its connection actor
    /// listening. Two atomic loads.
    pub(super) fn is_live(&self) -> bool {
        !self.stopping.load(Ordering::Acquire) && !self.commands.is_closed()
    }
}

/// Forgets a server's cached lists and tells its subscribers each may
/// have changed: after a restart, whether asked for or after a crash.
pub(super) fn lists_may_have_changed(
    shared: &Shared,
    events: &broadcast::Sender<ServerEvent>,
    server: &ServerId,
) {
    shared.invalidate_lists();
    for method in [
        Method::ToolListChanged,
        Method::ResourceListChanged,
        Method::PromptListChanged,
    ] {
        let _ = events.send(ServerEvent {
            server: server.clone(),
            notification: Notification {
                method: Cow::Borrowed(method.as_str()),
                params: None,
            },
        });
    }
}

/// The next instance id.
fn next_instance_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pub(super) async fn futures_join(
    stops: impl Iterator<Item = impl Future<Output = ()> + Send + 'static>,
) {
    let tasks: Vec<_> = stops.map(tokio::spawn).collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// Waits for an instance's requests to finish (up to `drain`), then stops it
/// and waits for its supervisor to end.
pub(super) async fn stop_instance(instance: Arc<Instance>, drain: Duration) {
    let until = Instant::now() + drain;
    while instance.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    instance.stopping.store(true, Ordering::Release);
    instance.stop.send_replace(true);
    let task = lock(&instance.task).take();
    if let Some(task) = task {
        let _ = task.await;
    }
}

/// Starts one instance's supervisor; the receiver says how its first start
/// went.
pub(super) fn spawn_instance(
    spec: &ServerSpec,
    shared: &Arc<Shared>,
    events: &broadcast::Sender<ServerEvent>,
    owner: Option<RequestContext>,
) -> (Arc<Instance>, oneshot::Receiver<Result<()>>) {
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let (state_tx, state_rx) = watch::channel(ServerState::Starting);
    let (session_tx, session_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (started_tx, started_rx) = oneshot::channel();
    let direct = Arc::new(ArcSwapOption::empty());
    let instance = Arc::new(Instance {
        id: next_instance_id(),
        commands: commands_tx,
        in_flight: AtomicUsize::new(0),
        state: state_rx,
        session: session_rx,
        direct: direct.clone(),
        stopping: AtomicBool::new(false),
        stop: stop_tx,
        task: Mutex::new(None),
    });
    let supervisor = Supervisor {
        spec: spec.clone(),
        shared: shared.clone(),
        events: events.clone(),
        state: state_tx,
        session: session_tx,
        direct,
        stop: stop_rx,
        owner,
    };
    let task = tokio::spawn(supervisor.run(commands_rx, started_tx));
    *lock(&instance.task) = Some(task);
    (instance, started_rx)
}

struct Supervisor {
    spec: ServerSpec,
    shared: Arc<Shared>,
    events: broadcast::Sender<ServerEvent>,
    state: watch::Sender<ServerState>,
    session: watch::Sender<Option<SessionInfo>>,
    direct: Arc<ArcSwapOption<Direct>>,
    stop: watch::Receiver<bool>,
    /// The client session a per-client server's instance serves.
    owner: Option<RequestContext>,
}

impl Supervisor {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<ConnCommand>,
        started: oneshot::Sender<Result<()>>,
    ) {
        let settings = ConnectionSettings {
            server: self.spec.id.clone(),
            startup_timeout: self.spec.timeouts.startup(),
            health_interval: self.spec.health_interval,
            health_timeout: self.spec.timeouts.request(),
            grace: self.spec.stop_grace,
            protocol: self.spec.protocol,
            roots: (self.spec.sessions == SessionMode::PerClient).then(|| self.owner.clone()),
        };
        let mut started = Some(started);
        let mut failures = 0u32;
        let mut held = VecDeque::new();
        loop {
            let began = Instant::now();
            let exit = self
                .run_once(&settings, &mut commands, &mut held, &mut started)
                .await;
            self.direct.store(None);
            self.session.send_replace(None);
            let reason = match exit {
                Exit::Stopped => break,
                Exit::StartFailed(error) => {
                    if let Some(started) = started.take() {
                        self.state.send_replace(ServerState::Failed {
                            reason: error.message().to_owned(),
                        });
                        let _ = started.send(Err(error));
                        return;
                    }
                    error.message().to_owned()
                }
                Exit::Lost(reason) => reason,
            };
            tracing::warn!(server = %self.spec.id, "connection lost: {reason}");
            self.shared.note_error(format!("connection lost: {reason}"));
            // A connection that stayed up a while resets the count.
            if began.elapsed() >= self.spec.restart.max_backoff().max(Duration::from_secs(10)) {
                failures = 0;
            }
            failures += 1;
            if self.spec.restart.policy() == RestartPolicy::Never
                || failures > self.spec.restart.max_restarts()
            {
                let reason = match self.spec.restart.policy() {
                    RestartPolicy::Never => {
                        format!("it stopped and its restart policy is `never`: {reason}")
                    }
                    _ => format!("it failed {failures} times in a row; the last time: {reason}"),
                };
                tracing::error!(server = %self.spec.id, "giving up: {reason}");
                self.shared.observer.gave_up();
                refuse_held(
                    &mut held,
                    &format!("server `{}` has failed: {reason}", self.spec.id),
                );
                self.state.send_replace(ServerState::Failed { reason });
                return;
            }
            self.shared.restarts.fetch_add(1, Ordering::Relaxed);
            self.shared.observer.restarted();
            self.state.send_replace(ServerState::Restarting {
                attempt: failures,
                reason: reason.clone(),
            });
            let delay = backoff(&self.spec.restart, failures);
            tracing::info!(server = %self.spec.id, "restarting in {} ms (attempt {failures})", delay.as_millis());
            if self
                .hold_during_backoff(&mut commands, &mut held, delay)
                .await
            {
                break;
            }
        }
        refuse_held(&mut held, &format!("server `{}` was stopped", self.spec.id));
        self.state.send_replace(ServerState::Stopped);
    }

    /// One connection, from start to end.
    async fn run_once(
        &mut self,
        settings: &ConnectionSettings,
        commands: &mut mpsc::Receiver<ConnCommand>,
        held: &mut VecDeque<ConnCommand>,
        started: &mut Option<oneshot::Sender<Result<()>>>,
    ) -> Exit {
        let connect =
            tokio::time::timeout(self.spec.timeouts.startup(), self.spec.connector.connect());
        let link = tokio::select! {
            link = connect => match link {
                Ok(Ok(link)) => link,
                Ok(Err(error)) => return Exit::StartFailed(error),
                Err(_) => return Exit::StartFailed(Error::new(ErrorKind::Start, "connecting timed out")),
            },
            _ = self.stop.wait_for(|stop| *stop) => return Exit::Stopped,
        };
        let state = &self.state;
        let session = &self.session;
        let (direct, shared, events) = (&self.direct, &self.shared, &self.events);
        let on_ready = |info: SessionInfo, end: Option<InProcessEnd>| {
            tracing::info!(
                server = %settings.server,
                "running: {} {} speaking {}",
                info.server_info.name,
                info.server_info.version,
                info.protocol_version
            );
            direct.store(end.map(|end| Arc::new(Direct::new(end, shared.clone()))));
            session.send_replace(Some(info));
            state.send_replace(ServerState::Running);
            match started.take() {
                Some(started) => {
                    let _ = started.send(Ok(()));
                }
                // A new process (or connection) after a restart may offer
                // other lists than the one it replaces.
                None => lists_may_have_changed(shared, events, &settings.server),
            }
        };
        let wiring = Wiring {
            shared: &self.shared,
            events: &self.events,
            commands,
            held,
            stop: &mut self.stop,
        };
        connection::run(settings, link, wiring, on_ready).await
    }

    /// Waits out a backoff. Requests that arrive meanwhile are held for the
    /// restarted connection, and answered with a timeout if theirs runs out
    /// first. True if a stop was asked for.
    async fn hold_during_backoff(
        &mut self,
        commands: &mut mpsc::Receiver<ConnCommand>,
        held: &mut VecDeque<ConnCommand>,
        delay: Duration,
    ) -> bool {
        let end = Instant::now() + delay;
        loop {
            expire(held);
            let wake = held
                .iter()
                .filter_map(ConnCommand::deadline)
                .min()
                .map_or(end, |d| d.min(end));
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= end {
                        return false;
                    }
                }
                _ = self.stop.wait_for(|stop| *stop) => return true,
                command = commands.recv() => match command {
                    Some(command) => held.push_back(command),
                    None => return true,
                },
            }
        }
    }
}

/// Answers every held request with `reason`.
fn refuse_held(held: &mut VecDeque<ConnCommand>, reason: &str) {
    for command in held.drain(..) {
        if let ConnCommand::Request { reply, .. } = command {
            let _ = reply.send(Err(Error::new(ErrorKind::Unavailable, reason)));
        }
    }
}

/// Answers held requests whose time ran out, and drops cancelled ones.
fn expire(held: &mut VecDeque<ConnCommand>) {
    let now = Instant::now();
    held.retain_mut(|command| match command {
        ConnCommand::Request { reply, .. } if reply.is_closed() => false,
        ConnCommand::Request {
            timeout, enqueued, ..
        } if *enqueued + *timeout <= now => {
            let ConnCommand::Request { reply, timeout, .. } =
                std::mem::replace(command, ConnCommand::Expired)
            else {
                return false;
            };
            let _ = reply.send(Err(Error::timeout(timeout)));
            false
        }
        ConnCommand::Expired => false,
        _ => true,
    });
}

/// The wait before restart number `attempt` (from 1): exponential from the
/// initial backoff, capped, with ±25 % jitter so that many servers crashing
/// together do not restart in lockstep.
fn backoff(restart: &RestartConfig, attempt: u32) -> Duration {
    let base = restart
        .initial_backoff()
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(restart.max_backoff());
    let jitter = jitter_fraction();
    base.mul_f64(0.75 + 0.5 * jitter)
}

/// A number in [0, 1) that differs from call to call; no randomness crate
/// is needed for jitter.
fn jitter_fraction() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(u64::from(std::process::id()));
    #[allow(clippy::cast_precision_loss)] // 53 bits of a hash are plenty.
    let fraction = (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64;
    fraction
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let restart = RestartConfig::new(
            RestartPolicy::OnFailure,
            5,
            Duration::from_millis(100),
            Duration::from_millis(1000),
        );
        for (attempt, base) in [
            (1, 100),
            (2, 200),
            (3, 400),
            (4, 800),
            (5, 1000),
            (30, 1000),
        ] {
            let delay = backoff(&restart, attempt).as_secs_f64() * 1000.0;
            let base = f64::from(base);
            assert!(
                delay >= base * 0.75 && delay <= base * 1.25,
                "attempt {attempt}: {delay}"
            );
        }
    }

    #[test]
    fn jitter_varies() {
        let samples: Vec<f64> = (0..16).map(|_| jitter_fraction()).collect();
        assert!(samples.iter().all(|f| (0.0..1.0).contains(f)));
        assert!(samples.windows(2).any(|w| w[0] != w[1]));
    }
}
