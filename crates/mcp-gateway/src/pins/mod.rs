//! Tool pinning, the defence against a server that changes a tool's
//! definition under its users (a "rug pull"): the first time the gateway
//! sees a tool it records the digest of its definition
//! ([`table::definition`]: name, title, description, input and output
//! schemas, annotations); when the server later lists a different one,
//! the tool is held back (`"enforce"`: left out of every list, unknown when
//! called) or served anyway (`"warn"`, the default), and either way the
//! change is logged, counted (`ServerObserver::tool_changed`, and the
//! number unapproved, `tools_unapproved`) and kept in the pins file
//! until it is approved (`mcp-manager pins approve SERVER/TOOL`) or the
//! server goes back to the pinned definition.
//!
//! The pins are checked where the merged tool list is built, once per
//! change of a server's list, never per request. What the gateway learns
//! is written to the file by a thread of its own, which also reads the file
//! again when someone else changed it (an approval, another gateway): the
//! tool lists are then built anew and the sessions told they changed.

mod file;
mod table;

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use mcp_core::ServerId;
use mcp_core::config::PinMode;
use serde_json::Value;

pub use file::PinFile;
use file::Stamp;
pub use table::{
    DEFINITION_MEMBERS, Observation, Pin, PinTable, Seen, Verdict, definition, differing_members,
    digest,
};

use crate::held::lock;

/// How often the pins file is looked at for changes made elsewhere.
const POLL: Duration = Duration::from_secs(1);

/// The gateway's pins: the mode for servers that do not set their own,
/// the table, and the file it is kept in.
#[derive(Debug)]
pub struct Pinning {
    mode: PinMode,
    file: Option<PinFile>,
    state: Mutex<State>,
    /// Moves when the table changed other than by what the gateway saw
    /// itself: merged lists built before are stale.
    version: AtomicU64,
    /// Wakes the thread that writes the file: something new was seen.
    wake: SyncSender<()>,
    /// Its end, until the thread takes it.
    woken: Mutex<Option<Receiver<()>>>,
}

#[derive(Debug, Default)]
struct State {
    table: PinTable,
    /// Seen, not written yet.
    pending: Vec<Observation>,
    /// The changed definitions already reported by this process: server,
    /// tool and digest.
    reported: HashSet<(String, String, String)>,
    /// The version of the file the table was read from or written to.
    stamp: Option<Stamp>,
    /// Why the file could not be read; it is not written while so.
    unreadable: Option<String>,
    /// Every server judged so far.
    judged: BTreeSet<String>,
    /// Whether the last write failed (and was logged).
    failing: bool,
}

/// What to do with one listed tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Judged {
    /// Whether it is listed and callable.
    pub(crate) served: bool,
    /// Whether its definition differs from the pinned one.
    pub(crate) unapproved: bool,
    /// Whether that difference was reported just now, for the first time
    /// in this process: to be counted.
    pub(crate) reported: bool,
}

impl Pinning {
    /// Pins in `mode` (for servers whose entry says none), kept in `file`
    /// (read now) or only in memory without one. A file that cannot be
    /// read is logged and left as it is: tools are then judged against
    /// nothing, and servers in `"enforce"` have every tool held back
    /// until the file can be read.
    #[must_use]
    pub fn new(mode: PinMode, file: Option<PinFile>) -> Self {
        let mut state = State {
            table: PinTable::new(),
            ..State::default()
        };
        if let Some(file) = &file {
            match file.load_stamped() {
                Ok((table, stamp)) => {
                    state.table = table;
                    state.stamp = stamp;
                }
                Err(error) => {
                    tracing::error!(
                        "tool pins: {error}; the file is left as it is and nothing is pinned until it is fixed"
                    );
                    state.unreadable = Some(error.to_string());
                    state.stamp = file.stamp();
                }
            }
        }
        let (wake, woken) = sync_channel(1);
        Self {
            mode,
            file,
            state: Mutex::new(state),
            version: AtomicU64::new(0),
            wake,
            woken: Mutex::new(Some(woken)),
        }
    }

    /// The mode of servers that do not set their own.
    #[must_use]
    pub fn mode(&self) -> PinMode {
        self.mode
    }

    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Judges `tool` (as listed by `server`, under its own name) in
    /// `mode`, recording what is new about it.
    pub(crate) fn judge(
        &self,
        server: &ServerId,
        mode: PinMode,
        name: &str,
        tool: &Value,
    ) -> Judged {
        let served = Judged {
            served: true,
            unapproved: false,
            reported: false,
        };
        if mode == PinMode::Off {
            return served;
        }
        let definition = definition(tool);
        let seen = Observation {
            server: server.as_str().to_owned(),
            tool: name.to_owned(),
            digest: digest(&definition),
            definition,
            at: now(),
        };
        let held = mode == PinMode::Enforce;
        let mut state = lock(&self.state);
        if !state.judged.contains(&seen.server) {
            state.judged.insert(seen.server.clone());
        }
        if let Some(why) = &state.unreadable {
            let why = why.clone();
            if held
                && state
                    .reported
                    .insert((seen.server.clone(), String::new(), String::new()))
            {
                tracing::warn!(server = %server, "tool pins: the pins file cannot be read ({why}), so the tools of this server (pinning: enforce) are held back");
            }
            return Judged {
                served: !held,
                ..served
            };
        }
        let (verdict, recorded) = state.table.observe(&seen);
        if recorded {
            state.pending.push(seen.clone());
            // A wake already waiting will do.
            let _ = self.wake.try_send(());
        }
        if verdict == Verdict::Pinned {
            return served;
        }
        let key = (seen.server.clone(), seen.tool.clone(), seen.digest.clone());
        let reported = state.reported.insert(key);
        if reported {
            let members = state
                .table
                .pin(&seen.server, &seen.tool)
                .map(|pin| differing_members(&pin.definition, &seen.definition).join(", "))
                .unwrap_or_default();
            drop(state);
            let approve = format!("mcp-manager pins approve {server}/{name}");
            if held {
                tracing::warn!(server = %server, tool = name, "the definition of tool `{name}` changed since it was pinned ({members}); it is held back until approved: `{approve}`");
            } else {
                tracing::warn!(server = %server, tool = name, "the definition of tool `{name}` changed since it was pinned ({members}); it is served anyway (pinning: warn); to accept it: `{approve}`");
            }
            tracing::debug!(server = %server, tool = name, digest = seen.digest, "changed definition");
        }
        Judged {
            served: !held,
            unapproved: true,
            reported,
        }
    }

    /// Writes what was seen to the file, or reads the file again when
    /// someone else changed it: the servers whose tools would now be
    /// served otherwise (empty when none, or without a file).
    fn sync(&self) -> Vec<String> {
        let Some(file) = &self.file else {
            lock(&self.state).pending.clear();
            return Vec::new();
        };
        let (pending, known, unreadable) = {
            let mut state = lock(&self.state);
            (
                std::mem::take(&mut state.pending),
                state.stamp,
                state.unreadable.is_some(),
            )
        };
        let outcome = if pending.is_empty() || unreadable {
            if file.stamp() == known {
                return Vec::new();
            }
            (false, file.load_stamped())
        } else {
            let updated = file
                .update_stamped(|table| {
                    let mut changed = false;
                    for seen in &pending {
                        changed |= table.observe(seen).1;
                    }
                    ((), changed)
                })
                .map(|(table, stamp, ())| (table, stamp));
            (true, updated)
        };
        let sent = pending;
        let mut state = lock(&self.state);
        let (written, outcome) = outcome;
        match outcome {
            Ok((table, stamp)) => {
                let mended = state.unreadable.take().is_some();
                state.failing = false;
                let before = std::mem::replace(&mut state.table, table);
                let pending = state.pending.clone();
                for seen in &pending {
                    state.table.observe(seen);
                }
                state.stamp = stamp;
                let differing = if mended {
                    // Every tool was judged against nothing.
                    tracing::info!("tool pins: the pins file can be read again");
                    state.judged.iter().cloned().collect()
                } else {
                    before.servers_differing(&state.table)
                };
                if !differing.is_empty() {
                    self.version.fetch_add(1, Ordering::AcqRel);
                }
                differing
            }
            Err(error @ (crate::Error::Io { .. } | crate::Error::File(_))) if written => {
                // Not written (a full disk, a lock that cannot be had): kept,
                // and tried again at the next tick.
                state.pending.splice(0..0, sent);
                if !state.failing {
                    state.failing = true;
                    tracing::error!("tool pins: {error}; trying again");
                }
                Vec::new()
            }
            Err(error) => {
                state.stamp = self.file.as_ref().and_then(PinFile::stamp);
                if state.unreadable.as_deref() != Some(&error.to_string()) {
                    tracing::error!("tool pins: {error}; the file is left as it is");
                    state.unreadable = Some(error.to_string());
                }
                Vec::new()
            }
        }
    }

    /// Keeps the file and the table in step from now on (until the
    /// pinning is dropped), from a thread of its own (`mcp-pins`: the
    /// file is read and written there, off the async runtime), calling
    /// `changed` with the servers whose tools are served otherwise after a
    /// change made elsewhere.
    pub(crate) fn spawn_sync(self: &Arc<Self>, changed: impl Fn(Vec<String>) + Send + 'static) {
        let Some(woken) = lock(&self.woken).take() else {
            return;
        };
        let weak: Weak<Self> = Arc::downgrade(self);
        let started = std::thread::Builder::new()
            .name("mcp-pins".to_owned())
            .spawn(move || {
                loop {
                    match woken.recv_timeout(POLL) {
                        Ok(()) | Err(RecvTimeoutError::Timeout) => {}
                        // The pinning is gone.
                        Err(RecvTimeoutError::Disconnected) => return,
                    }
                    let Some(pinning) = weak.upgrade() else {
                        return;
                    };
                    let servers = pinning.sync();
                    drop(pinning);
                    if !servers.is_empty() {
                        changed(servers);
                    }
                }
            });
        if let Err(error) = started {
            tracing::error!(
                "tool pins: cannot start the thread that keeps the pins file: {error}; they are kept in memory only"
            );
        }
    }
}

/// Now, as RFC 3339: the form of the times in the pins file.
#[must_use]
pub fn now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    mcp_protocol::mcp::tasks::rfc3339(ms)
}
