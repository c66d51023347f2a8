//! The recent events of a session's request streams, kept so that a
//! client that lost a stream resumes it with `Last-Event-ID`.
//!
//! Only a request answered on an event stream (one whose client asked for
//! progress, or one the server asks something of meanwhile) writes here;
//! a plain JSON answer never does. The log of a session sits behind a
//! mutex held for a moment, never across an `.await`.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::{Bytes, BytesMut};
use mcp_runtime::transport::CHANNEL_CAPACITY;
use tokio::sync::mpsc;

use crate::lock;

/// How many request streams of a session are kept for resuming.
const KEPT_STREAMS: usize = 16;
/// How many events of one stream are kept, at most.
const KEPT_EVENTS: usize = 256;
/// How many bytes of one stream's events are kept, at most.
const KEPT_BYTES: usize = 1 << 20;

/// The recent events of a session's request streams: every event gets the
/// id `STREAM-SEQ`, and a client that lost a stream resumes it with a GET
/// carrying the last id it saw.
#[derive(Default)]
struct Replay {
    next_stream: u64,
    /// Oldest first.
    streams: VecDeque<(u64, StreamLog)>,
}

#[derive(Default)]
struct StreamLog {
    next_seq: u64,
    /// The framed events, with their sequence numbers, oldest first.
    events: VecDeque<(u64, Bytes)>,
    bytes: usize,
    /// The stream's answer has been sent: nothing more will come.
    done: bool,
    /// The connection the stream is being read on, if any.
    live: Option<mpsc::Sender<Bytes>>,
}

impl Replay {
    /// A new stream read on `live`; its number.
    fn open(&mut self, live: mpsc::Sender<Bytes>) -> u64 {
        self.next_stream += 1;
        if self.streams.len() >= KEPT_STREAMS {
            // Forget the oldest finished stream, else the oldest.
            let finished = self.streams.iter().position(|(_, log)| log.done);
            self.streams.remove(finished.unwrap_or(0));
        }
        let log = StreamLog {
            live: Some(live),
            ..StreamLog::default()
        };
        self.streams.push_back((self.next_stream, log));
        self.next_stream
    }

    fn log(&mut self, stream: u64) -> Option<&mut StreamLog> {
        self.streams
            .iter_mut()
            .find(|(n, _)| *n == stream)
            .map(|(_, log)| log)
    }
}

/// A session's [`Replay`], shared by its request streams.
#[derive(Default)]
pub(super) struct ReplayLog(Mutex<Replay>);

impl ReplayLog {
    /// A new stream read on `live`; its number.
    pub(super) fn open(&self, live: mpsc::Sender<Bytes>) -> u64 {
        lock(&self.0).open(live)
    }

    /// Gives `event` (an encoded SSE event) the next id of `stream`, keeps
    /// it, and sends it to the connection reading the stream, if any.
    pub(super) async fn relay(&self, stream: u64, event: Bytes) {
        let (framed, live) = {
            let mut replay = lock(&self.0);
            let Some(log) = replay.log(stream) else {
                return;
            };
            let seq = log.next_seq;
            log.next_seq += 1;
            let mut framed = BytesMut::with_capacity(event.len() + 24);
            framed.extend_from_slice(format!("id: {stream}-{seq}\n").as_bytes());
            framed.extend_from_slice(&event);
            let framed = framed.freeze();
            log.bytes += framed.len();
            log.events.push_back((seq, framed.clone()));
            while log.events.len() > KEPT_EVENTS || log.bytes > KEPT_BYTES {
                match log.events.pop_front() {
                    Some((_, old)) => log.bytes -= old.len(),
                    None => break,
                }
            }
            (framed, log.live.clone())
        };
        if let Some(live) = live {
            if live.send(framed).await.is_err() {
                // The client went away; the events wait for it to resume.
                if let Some(log) = lock(&self.0).log(stream) {
                    if log.live.as_ref().is_some_and(|l| l.same_channel(&live)) {
                        log.live = None;
                    }
                }
            }
        }
    }

    /// Marks `stream` complete and lets its connection end. A stream read
    /// to its end keeps only its last event (the answer), in case the
    /// connection drops before that reaches the client; one whose client
    /// went away keeps what it has for when the client comes back.
    pub(super) fn finish(&self, stream: u64) {
        if let Some(log) = lock(&self.0).log(stream) {
            log.done = true;
            if log.live.take().is_some() {
                while log.events.len() > 1 {
                    if let Some((_, old)) = log.events.pop_front() {
                        log.bytes -= old.len();
                    }
                }
            }
        }
    }

    /// Resumes the stream an event id (`STREAM-SEQ`) belongs to: the events
    /// after it, and where the rest will come while the stream goes on.
    pub(super) fn resume(&self, last: &str) -> Option<(Vec<Bytes>, mpsc::Receiver<Bytes>)> {
        let (stream, seq) = last.split_once('-')?;
        let (stream, seq): (u64, u64) = (stream.parse().ok()?, seq.parse().ok()?);
        let mut replay = lock(&self.0);
        let log = replay.log(stream)?;
        let missed = log
            .events
            .iter()
            .filter(|(n, _)| *n > seq)
            .map(|(_, event)| event.clone())
            .collect();
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        if !log.done {
            log.live = Some(sender);
        }
        Some((missed, receiver))
    }
}
