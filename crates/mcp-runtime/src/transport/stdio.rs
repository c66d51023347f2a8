//! The stdio transport: a child process speaking newline-delimited JSON on
//! its stdin and stdout.
//!
//! The child runs in its own process group, so stopping it stops whatever it
//! spawned too (`npx` starts node, a shell script starts its tools). Its
//! stderr lines are logged with the server's name, rate-limited so that a
//! server flooding stderr cannot flood the log. A stdout line that is not a
//! JSON-RPC message is logged and skipped. Stopping closes stdin, waits for
//! the grace period, then sends SIGTERM to the group, waits again, then
//! SIGKILL; the child is always reaped. If the link is dropped without being
//! closed, the group is killed at once.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use bytes::BytesMut;
use mcp_core::config::SandboxConfig;
use mcp_core::{BoxFuture, ServerId};
use mcp_protocol::Message;
use mcp_protocol::codec::ndjson::{LineDecoder, encode_message};
use mcp_sandbox::Sandbox;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, oneshot, watch};

use super::stderr::{StderrTail, log_stderr};
use super::{Closer, Connector, Inbound, TransportEnds, TransportLink};
use crate::error::{Error, ErrorKind, Result};

/// How long to wait after SIGTERM before SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// What to run. Its `Debug` output counts the arguments and names the
/// variables: their values may be secrets.
#[derive(Clone)]
pub struct StdioCommand {
    /// The server this process serves, for logs.
    pub server: ServerId,
    /// The program.
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment variables set on top of the manager's own.
    pub env: BTreeMap<String, String>,
    /// Working directory; the manager's own when `None`.
    pub cwd: Option<PathBuf>,
    /// The longest stdout line accepted.
    pub max_message: usize,
    /// What the process may reach, when it runs in a sandbox.
    pub sandbox: Option<SandboxConfig>,
}

impl std::fmt::Debug for StdioCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioCommand")
            .field("server", &self.server)
            .field("command", &self.command)
            .field("args", &self.args.len())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("cwd", &self.cwd)
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

/// Starts [`StdioCommand`]s.
#[derive(Clone, Debug)]
pub struct StdioConnector {
    command: StdioCommand,
    /// The arguments as [`Connector::describe`] shows them, when they
    /// differ from those run (some hold secrets).
    shown_args: Option<Vec<String>>,
}

impl StdioConnector {
    /// A connector that runs `command` on every start.
    #[must_use]
    pub fn new(command: StdioCommand) -> Self {
        Self {
            command,
            shown_args: None,
        }
    }

    /// Described with `args` instead of the arguments it runs.
    #[must_use]
    pub fn shown_with(mut self, args: Option<Vec<String>>) -> Self {
        self.shown_args = args;
        self
    }
}

impl Connector for StdioConnector {
    fn connect(&self) -> BoxFuture<'_, Result<TransportLink>> {
        Box::pin(async move { spawn(&self.command) })
    }

    fn describe(&self) -> String {
        let args = self.shown_args.as_ref().unwrap_or(&self.command.args);
        std::iter::once(self.command.command.as_str())
            .chain(args.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn spawn(spec: &StdioCommand) -> Result<TransportLink> {
    let mut command = Command::new(&spec.command);
    command
        .args(&spec.args)
        .envs(&spec.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        command.current_dir(cwd);
    }
    if let Some(config) = &spec.sandbox {
        let sandbox = Sandbox::prepare(config).map_err(|e| {
            Error::new(
                ErrorKind::Start,
                format!("could not sandbox `{}`: {e}", spec.command),
            )
        })?;
        sandbox.confine(command.as_std_mut());
    }
    let mut child = command.spawn().map_err(|e| {
        let sandboxed = if spec.sandbox.is_some() {
            " in its sandbox"
        } else {
            ""
        };
        Error::new(
            ErrorKind::Start,
            format!("could not start `{}`{sandboxed}: {e}", spec.command),
        )
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(Error::new(
            ErrorKind::Start,
            "the child's pipes are missing",
        ));
    };
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let (exit_tx, exit_rx) = watch::channel(None);
    let (stop_tx, stop_rx) = oneshot::channel();
    let owner = tokio::spawn(own_process(child, pid, stop_rx, exit_tx));
    let closer = ProcessCloser {
        stop: Some(stop_tx),
        owner: Some(owner),
    };
    let (link, ends) = TransportLink::new(Box::new(closer));
    let TransportEnds { outbound, inbound } = ends;
    let tail = StderrTail::default();
    tokio::spawn(write_stdin(stdin, outbound));
    tokio::spawn(read_stdout(
        Output {
            server: spec.server.clone(),
            max_message: spec.max_message,
            inbound,
            exit: exit_rx,
            tail: tail.clone(),
        },
        stdout,
    ));
    tokio::spawn(log_stderr(spec.server.clone(), stderr, tail));
    tracing::debug!(server = %spec.server, pid = ?pid, "started `{}`", spec.command);
    Ok(link)
}

/// Owns the child: reports its exit, and stops it when told to (or when the
/// link is dropped).
async fn own_process(
    mut child: Child,
    pid: Option<Pid>,
    stop: oneshot::Receiver<Duration>,
    exit: watch::Sender<Option<ExitStatus>>,
) {
    let mut group = GroupGuard(pid);
    let status = tokio::select! {
        status = child.wait() => status.ok(),
        grace = stop => {
            // A dropped closer means: stop now.
            let grace = grace.unwrap_or(Duration::ZERO);
            terminate(&mut child, &group, grace).await
        }
    };
    // The group leader is gone; kill whatever it left behind.
    group.kill(Signal::SIGKILL);
    group.0 = None;
    let _ = exit.send(status);
}

/// Waits `grace` for the child to exit on its own (its stdin is closed),
/// then SIGTERM to the group, then SIGKILL.
async fn terminate(child: &mut Child, group: &GroupGuard, grace: Duration) -> Option<ExitStatus> {
    if let Ok(status) = tokio::time::timeout(grace, child.wait()).await {
        return status.ok();
    }
    group.kill(Signal::SIGTERM);
    if let Ok(status) = tokio::time::timeout(TERM_GRACE, child.wait()).await {
        return status.ok();
    }
    group.kill(Signal::SIGKILL);
    child.wait().await.ok()
}

/// Kills the process group when dropped, so that a runtime torn down
/// mid-flight leaves no process behind.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&self, signal: Signal) {
        if let Some(pid) = self.0 {
            // ESRCH (the group is gone already) is the expected outcome.
            let _ = killpg(pid, signal);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill(Signal::SIGKILL);
    }
}

struct ProcessCloser {
    stop: Option<oneshot::Sender<Duration>>,
    owner: Option<tokio::task::JoinHandle<()>>,
}

impl Closer for ProcessCloser {
    fn close(mut self: Box<Self>, grace: Duration) -> BoxFuture<'static, ()> {
        let stop = self.stop.take();
        let owner = self.owner.take();
        Box::pin(async move {
            if let Some(stop) = stop {
                let _ = stop.send(grace);
            }
            if let Some(owner) = owner {
                let _ = owner.await;
            }
        })
    }
}

async fn write_stdin(stdin: ChildStdin, outbound: mpsc::Receiver<Message<'static>>) {
    // An error means the child closed its stdin; the stdout reader reports
    // the end. Dropping stdin closes it: the child sees end of input.
    let _ = write_lines(outbound, stdin).await;
}

/// Where the stdout reader sends what it reads, and what it needs to
/// explain the end of the stream.
struct Output {
    server: ServerId,
    max_message: usize,
    inbound: mpsc::Sender<Inbound>,
    exit: watch::Receiver<Option<ExitStatus>>,
    tail: StderrTail,
}

async fn read_stdout(output: Output, mut stdout: impl AsyncRead + Unpin) {
    let Output {
        server,
        max_message,
        inbound,
        mut exit,
        tail,
    } = output;
    let mut decoder = LineDecoder::new(max_message);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let reason = loop {
        match stdout.read_buf(&mut buf).await {
            Ok(0) => break "its stdout closed".to_owned(),
            Ok(_) => {}
            Err(e) => break format!("reading its stdout failed: {e}"),
        }
        loop {
            let line = match decoder.decode(&mut buf) {
                Ok(Some(line)) => line,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(server = %server, "{e}");
                    continue;
                }
            };
            match Message::parse(&line) {
                Ok(message) => {
                    if inbound
                        .send(Inbound::Message(message.into_owned()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => tracing::warn!(
                    server = %server,
                    line = decoder.line_number(),
                    "skipping a stdout line that is not a JSON-RPC message ({e}): {}",
                    preview(&line)
                ),
            }
        }
    };
    // Give the exit status a moment to arrive, to say why.
    let status = tokio::time::timeout(Duration::from_millis(500), exit.wait_for(Option::is_some))
        .await
        .ok()
        .and_then(|r| r.ok().and_then(|s| *s));
    let mut reason = match status {
        Some(status) => format!("the process exited ({status}); {reason}"),
        None => format!("the process is gone: {reason}"),
    };
    if let Some(stderr) = tail.text().await {
        reason.push_str("; its last stderr lines: ");
        reason.push_str(&stderr);
    }
    let _ = inbound.send(Inbound::Closed(reason)).await;
}

fn preview(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line.get(..200).unwrap_or(line));
    if line.len() > 200 {
        format!("{text}…")
    } else {
        text.into_owned()
    }
}

/// Writes messages as newline-delimited JSON to `output` until the channel
/// closes, batching what is queued into one write: the writing half of
/// stdio, for a child's stdin and for a server's stdout alike.
pub async fn write_lines(
    mut outgoing: mpsc::Receiver<Message<'static>>,
    mut output: impl AsyncWrite + Unpin,
) -> std::io::Result<()> {
    let mut buf = BytesMut::with_capacity(8 * 1024);
    while let Some(message) = outgoing.recv().await {
        buf.clear();
        encode_message(&message, &mut buf);
        while let Ok(message) = outgoing.try_recv() {
            encode_message(&message, &mut buf);
            if buf.len() > 256 * 1024 {
                break;
            }
        }
        output.write_all(&buf).await?;
        output.flush().await?;
    }
    Ok(())
}
