//! The tokio task around a connection's [`Machine`]: it feeds the machine
//! what arrives (from the transport, the callers, the clients asked on the
//! server's behalf, the clock) and carries out what the machine asks (send
//! a message, publish a notification, ask a client, wake at a time).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use mcp_protocol::{Message, Request, RequestId};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::machine::{Event, Machine};
use super::{ConnCommand, ConnectionSettings, Exit};
use crate::server::{ServerEvent, SessionInfo, Shared};
use crate::transport::inprocess::InProcessEnd;
use crate::transport::{Closer, Inbound, TransportLink};

/// The answer to a server's request to the client, from the task that
/// asked the client, for the request of ours it was made for.
type ClientAnswer = (i64, Message<'static>);

/// What a connection's task is connected to, besides its transport.
pub(crate) struct Wiring<'a> {
    pub(crate) shared: &'a Arc<Shared>,
    pub(crate) events: &'a broadcast::Sender<ServerEvent>,
    pub(crate) commands: &'a mut mpsc::Receiver<ConnCommand>,
    /// Requests that arrived while no connection was up; taken once ready.
    pub(crate) held: &'a mut VecDeque<ConnCommand>,
    pub(crate) stop: &'a mut watch::Receiver<bool>,
}

/// Runs one connection over `link`: the handshake, then requests until the
/// transport ends, the commands stop or a stop is asked for. `on_ready` is
/// called once the handshake is done, with the in-process server the link
/// offers for requests made on the callers' tasks (none for a stateless
/// session, whose requests the machine rewrites).
pub(crate) async fn run(
    settings: &ConnectionSettings,
    link: TransportLink,
    wiring: Wiring<'_>,
    on_ready: impl FnOnce(SessionInfo, Option<InProcessEnd>),
) -> Exit {
    let TransportLink {
        outbound,
        mut inbound,
        closer,
        mut direct,
    } = link;
    let Wiring {
        shared,
        events,
        commands,
        held,
        stop,
    } = wiring;
    let mut machine = Machine::new(settings.clone(), Arc::clone(shared), Instant::now());
    let mut on_ready = Some(on_ready);
    let mut asking = Asking::new();
    let sleep = tokio::time::sleep(settings.startup_timeout);
    tokio::pin!(sleep);
    let mut armed: Option<Instant> = None;
    let exit = loop {
        while let Some(event) = machine.poll_event() {
            match event {
                Event::Ready(info) => {
                    if let Some(on_ready) = on_ready.take() {
                        let direct = direct.take().filter(|_| !machine.is_stateless());
                        on_ready(*info, direct);
                    }
                }
                Event::Publish(notification) => {
                    // No subscriber is fine: nobody is listening yet.
                    let _ = events.send(ServerEvent {
                        server: settings.server.clone(),
                        notification,
                    });
                }
                Event::Ask {
                    for_id,
                    request,
                    requester,
                } => asking.ask(for_id, request, requester),
                Event::Abandon(id) => asking.abandon(&id),
            }
        }
        if let Some(exit) = machine.take_exit() {
            break exit;
        }
        if machine.is_ready() && !held.is_empty() {
            let now = Instant::now();
            while let Some(command) = held.pop_front() {
                machine.handle_command(command, now);
            }
        }
        let next = machine.poll_timeout();
        if next != armed {
            if let Some(at) = next {
                sleep.as_mut().reset(at);
            }
            armed = next;
        }
        tokio::select! {
            biased;
            inbound = inbound.recv() => match inbound {
                Some(Inbound::Message(message)) => machine.handle_message(message, Instant::now()),
                Some(Inbound::Related { message, request }) => {
                    machine.handle_related(message, &request, Instant::now());
                }
                Some(Inbound::Failed { id, reason }) => machine.handle_failed(&id, reason, Instant::now()),
                Some(Inbound::Closed(reason)) => machine.handle_closed(reason),
                None => machine.handle_closed("the transport stopped".to_owned()),
            },
            permit = outbound.reserve(), if machine.has_transmit() => match permit {
                Ok(permit) => {
                    if let Some(message) = machine.poll_transmit() {
                        permit.send(message);
                    }
                }
                Err(_) => machine.handle_closed("the transport stopped taking messages".to_owned()),
            },
            () = &mut sleep, if armed.is_some() => {
                machine.handle_timeout(Instant::now());
                armed = None;
            }
            command = commands.recv(), if machine.accepts_commands() => match command {
                Some(command) => machine.handle_command(command, Instant::now()),
                None => break Exit::Stopped,
            },
            Some((for_id, answer)) = asking.answers.recv() => {
                if let Some(id) = answer.id() {
                    asking.done(&id.clone().into_owned());
                }
                machine.handle_client_answer(for_id, answer, Instant::now());
            }
            _ = stop.wait_for(|stop| *stop) => break Exit::Stopped,
        }
    };
    asking.abort_all();
    let queued = machine.finish(&exit);
    close(exit, queued, outbound, closer, settings).await
}

/// Flushes what is queued when the connection was stopped (cancellations,
/// say), then closes the transport.
async fn close(
    exit: Exit,
    queued: VecDeque<Message<'static>>,
    outbound: mpsc::Sender<Message<'static>>,
    closer: Box<dyn Closer>,
    settings: &ConnectionSettings,
) -> Exit {
    if matches!(exit, Exit::Stopped) {
        for message in queued {
            if outbound.send(message).await.is_err() {
                break;
            }
        }
    }
    drop(outbound);
    // The grace lets a server that was serving finish in peace; one that
    // failed its handshake or was lost is terminated at once.
    let grace = match exit {
        Exit::Stopped => settings.grace,
        Exit::StartFailed(_) | Exit::Lost(_) => Duration::ZERO,
    };
    closer.close(grace).await;
    exit
}

/// The server's requests being put to clients, each in a task of its own.
struct Asking {
    tasks: HashMap<RequestId<'static>, AbortHandle>,
    answers: mpsc::Receiver<ClientAnswer>,
    answer: mpsc::Sender<ClientAnswer>,
}

impl Asking {
    fn new() -> Self {
        let (answer, answers) = mpsc::channel(16);
        Self {
            tasks: HashMap::new(),
            answers,
            answer,
        }
    }

    fn ask(&mut self, for_id: i64, request: Request<'static>, requester: mcp_core::RequestContext) {
        let answers = self.answer.clone();
        let server_id = request.id.clone();
        let task = tokio::spawn(async move {
            let Request { id, method, params } = request;
            let answer = match requester.request(&method, params).await {
                Ok(result) => Message::response(id, result),
                Err(error) => Message::error(Some(id), error),
            };
            let _ = answers.send((for_id, answer)).await;
        });
        self.tasks.insert(server_id, task.abort_handle());
    }

    fn done(&mut self, id: &RequestId<'static>) {
        self.tasks.remove(id);
    }

    fn abandon(&mut self, id: &RequestId<'static>) {
        if let Some(task) = self.tasks.remove(id) {
            task.abort();
        }
    }

    fn abort_all(&mut self) {
        for (_, task) in self.tasks.drain() {
            task.abort();
        }
    }
}
