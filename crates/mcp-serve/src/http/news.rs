//! Session news: what a replica tells the others of its sessions, so that
//! a client that keeps sending the first id of its session (as the
//! official Python SDK does) finds the session as it left it on a replica
//! that takes it over, and a session ended on one replica is ended on all.
//!
//! With [`HttpServeOptions::session_peers`](super::HttpServeOptions) and a
//! shared key, each change to what a session's ids carry (see
//! [`Change`](super::sealed::Change)) is told to every peer: every id of
//! the session, and its newest, which carries the session as it is now.
//! A DELETE is told as every id of the session, ended. A peer keeps what
//! it hears by id (at most [`MAX_HEARD`] ids, for [`HEARD_FOR`]); taking
//! a session over from an id, it starts from the newest id it heard of
//! when that one carries more changes than the id itself. A peer that has
//! the session open too (a balancer spread the session's requests over
//! replicas) catches up at once: it sets the level and the subscriptions
//! as the news says.
//!
//! News is POSTed to [`NEWS_PATH`] on each peer's MCP listener, its body
//! sealed with the shared key for the purpose `mcp-manager session news`:
//! that is its credential (it needs no bearer token, and passes the
//! `Host` check), and a body that does not open with the key gets 403. A
//! peer is named `HOST:PORT`, resolved again for each piece of news: a
//! name that resolves to several addresses (a Kubernetes headless
//! Service) names every replica behind it, this one included (which
//! knows its own news and ignores it). Each piece is sent once, within
//! [`SEND_WITHIN`] per peer, from a queue of [`QUEUE`]: a peer that is
//! down, slow, or started later misses it, and a session it takes over
//! then starts from what the client's id carries.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::StatusCode;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use mcp_runtime::seal::Seal;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::Shared;
use super::body::{HttpResponse, not_allowed, status};
use super::sealed::{MAX_ID, Sealed};
use super::session::{end_session, forget_oldest};

/// Where a replica hears its peers' news.
pub const NEWS_PATH: &str = "/mcp-manager/cluster/sessions";
/// What news is sealed for.
const PURPOSE: &str = "mcp-manager session news";
/// The most ids one piece of news names.
const MAX_IDS: usize = 16;
/// The largest body of news heard: [`MAX_IDS`] ids of the longest.
const MAX_BODY: usize = 2 * (MAX_IDS + 1) * MAX_ID;
/// The news waiting to be sent, at most.
const QUEUE: usize = 1024;
/// How long a peer has to take a piece of news (resolving its name,
/// connecting, and answering).
const SEND_WITHIN: Duration = Duration::from_secs(2);
/// The most ids whose news is kept; past it, the oldest are forgotten.
const MAX_HEARD: usize = 65_536;
/// How long news is kept.
const HEARD_FOR: Duration = Duration::from_secs(24 * 3600);

/// What a replica tells the others of one of its sessions.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Tidings {
    /// Every id of the session.
    pub(super) ids: Vec<String>,
    /// Its newest id, which carries the session as it is now; `None`: the
    /// session ended.
    pub(super) newest: Option<String>,
}

/// What a piece of news heard says.
pub(super) enum Hearing {
    /// It is this replica's own (a peer's name resolves to it too):
    /// nothing to do.
    Own,
    /// A session changed: what its newest id carries, kept.
    Changed(Arc<Heard>),
    /// A session ended: every id it had.
    Ended(Vec<String>),
}

/// What was heard of a session that goes on.
pub(super) struct Heard {
    /// What its newest id carries.
    pub(super) sealed: Sealed,
    /// Every id of the session.
    pub(super) ids: Vec<String>,
    at: Instant,
}

/// The news this replica tells and hears.
pub(super) struct News {
    /// Names this replica in what it tells, so that it ignores its own.
    me: String,
    heard: SkipMap<String, Arc<Heard>>,
    /// To the task that tells the peers; `None` without peers or without
    /// a shared key.
    outbox: Option<mpsc::Sender<Tidings>>,
}

impl News {
    /// News told to `peers`, when `seal`'s key is shared, by a task
    /// spawned here; `me` names this replica.
    pub(super) fn new(peers: &[String], seal: &Arc<Seal>, me: String) -> Self {
        let outbox = (seal.shared() && !peers.is_empty()).then(|| {
            let (outbox, queue) = mpsc::channel(QUEUE);
            tokio::spawn(tell_peers(peers.to_vec(), seal.clone(), me.clone(), queue));
            outbox
        });
        Self {
            me,
            heard: SkipMap::new(),
            outbox,
        }
    }

    /// Tells the peers `tidings` (its first [`MAX_IDS`] ids), unless too
    /// much news waits already.
    pub(super) fn tell(&self, mut tidings: Tidings) {
        let Some(outbox) = &self.outbox else {
            return;
        };
        tidings.ids.truncate(MAX_IDS);
        if outbox.try_send(tidings).is_err() {
            tracing::warn!(
                "news of a session was not told to the peers: {QUEUE} pieces wait already"
            );
        }
    }

    /// What was heard of the session `id`.
    pub(super) fn heard(&self, id: &str) -> Option<Arc<Heard>> {
        self.heard.get(id).map(|entry| entry.value().clone())
    }

    /// What to take the session `id` over with, which its id says is
    /// `sealed`: the newest heard of it when that carries more changes
    /// (and is of the same route and subject), and its other ids heard of.
    pub(super) fn newest(&self, id: &str, sealed: Sealed) -> (Sealed, Vec<String>) {
        let Some(heard) = self.heard(id) else {
            return (sealed, Vec::new());
        };
        let others = heard.ids.iter().filter(|other| *other != id).cloned();
        let others = others.take(MAX_IDS).collect();
        let newer = heard.sealed.route == sealed.route
            && heard.sealed.subject == sealed.subject
            && heard.sealed.changes > sealed.changes;
        (if newer { heard.sealed.clone() } else { sealed }, others)
    }

    /// Opens `body`, news sealed by a peer with `seal`'s key, and keeps
    /// it; `None` when it does not open, or is not news.
    pub(super) fn hear(&self, seal: &Seal, body: &str) -> Option<Hearing> {
        let plain: Value = serde_json::from_slice(&seal.open(PURPOSE, body)?).ok()?;
        let ids: Vec<String> = serde_json::from_value(plain.get("ids")?.clone()).ok()?;
        if ids.len() > MAX_IDS || ids.iter().any(|id| id.len() > MAX_ID) {
            return None;
        }
        let newest = match plain.get("newest") {
            None => None,
            Some(newest) => Some(newest.as_str()?.to_owned()),
        };
        if plain.get("from")?.as_str()? == self.me {
            return Some(Hearing::Own);
        }
        let Some(newest) = newest else {
            for id in &ids {
                self.heard.remove(id);
            }
            return Some(Hearing::Ended(ids));
        };
        // Sealed for a session, by a replica with the key: every id heard
        // of is of the newest's route.
        let sealed = Sealed::open(seal, &newest)?;
        let ids: Vec<String> = ids
            .into_iter()
            .filter(|id| Sealed::route_of(id) == sealed.route)
            .collect();
        let heard = Arc::new(Heard {
            sealed,
            ids,
            at: Instant::now(),
        });
        let changes = heard.sealed.changes;
        for id in &heard.ids {
            self.heard.compare_insert(id.clone(), heard.clone(), |old| {
                old.sealed.changes < changes
            });
        }
        Some(Hearing::Changed(heard))
    }

    /// Forgets the news past [`HEARD_FOR`] or [`MAX_HEARD`].
    pub(super) fn forget_old(&self) {
        forget_oldest(&self.heard, |heard| heard.at, MAX_HEARD, HEARD_FOR);
    }
}

/// `tidings` as told by `me`, sealed.
fn seal_tidings(seal: &Seal, me: &str, tidings: &Tidings) -> Option<String> {
    let mut plain = json!({ "from": me, "ids": tidings.ids });
    if let (Some(newest), Some(object)) = (&tidings.newest, plain.as_object_mut()) {
        object.insert("newest".to_owned(), Value::from(newest.as_str()));
    }
    seal.seal(PURPOSE, &serde_json::to_vec(&plain).ok()?)
}

/// Tells every peer each piece of news that comes on `queue`, one piece at
/// a time, to all peers at once; ends when `queue` does.
async fn tell_peers(
    peers: Vec<String>,
    seal: Arc<Seal>,
    me: String,
    mut queue: mpsc::Receiver<Tidings>,
) {
    while let Some(tidings) = queue.recv().await {
        let Some(body) = seal_tidings(&seal, &me, &tidings) else {
            continue;
        };
        let body = Bytes::from(body);
        let mut sends = tokio::task::JoinSet::new();
        for peer in &peers {
            let (peer, body) = (peer.clone(), body.clone());
            sends.spawn(async move {
                if let Err(error) = tokio::time::timeout(SEND_WITHIN, tell(&peer, body))
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {SEND_WITHIN:?}")))
                {
                    tracing::debug!(peer, "news of a session was not told: {error}");
                }
            });
        }
        while sends.join_next().await.is_some() {}
    }
}

/// Tells every address `peer` resolves to `body`.
async fn tell(peer: &str, body: Bytes) -> Result<(), String> {
    let addresses = tokio::net::lookup_host(peer)
        .await
        .map_err(|error| format!("its name did not resolve: {error}"))?;
    let mut sends = tokio::task::JoinSet::new();
    for address in addresses {
        sends.spawn(post(address, body.clone()));
    }
    let mut failed = Vec::new();
    while let Some(sent) = sends.join_next().await {
        if let Ok(Err(error)) = sent {
            failed.push(error);
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(failed.join("; "))
    }
}

/// POSTs `body` to [`NEWS_PATH`] at `address`.
async fn post(address: SocketAddr, body: Bytes) -> Result<(), String> {
    let failed = |error: &dyn std::fmt::Display| format!("{address}: {error}");
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|error| failed(&error))?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|error| failed(&error))?;
    // Ends once `sender` is dropped and the exchange is over.
    tokio::spawn(connection);
    let request = hyper::Request::post(NEWS_PATH)
        .header("host", address.to_string())
        .header("content-type", "text/plain")
        .body(Full::new(body))
        .map_err(|error| failed(&error))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| failed(&error))?;
    match response.status() {
        status if status.is_success() => Ok(()),
        StatusCode::FORBIDDEN => {
            // Not a transient fault: the replicas were given different keys.
            tracing::warn!(
                %address,
                "a peer refused news of a session: its cluster key is not this one's"
            );
            Err(failed(&"refused (403)"))
        }
        status => Err(failed(&format!("answered {status}"))),
    }
}

impl Shared {
    /// A POST of news from a peer: kept, and a session it says ended is
    /// ended here (204); 403 when it does not open with the key; 404
    /// without a shared key.
    pub(super) async fn hear_news(&self, request: hyper::Request<Incoming>) -> HttpResponse {
        if !self.seal.shared() {
            return status(StatusCode::NOT_FOUND);
        }
        if request.method() != hyper::Method::POST {
            return not_allowed("POST");
        }
        let body = match Limited::new(request.into_body(), MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<LengthLimitError>() => {
                return status(StatusCode::PAYLOAD_TOO_LARGE);
            }
            Err(_) => return status(StatusCode::BAD_REQUEST),
        };
        let hearing = std::str::from_utf8(&body)
            .ok()
            .and_then(|body| self.news.hear(&self.seal, body));
        let Some(hearing) = hearing else {
            return status(StatusCode::FORBIDDEN);
        };
        tracing::debug!(
            ended = matches!(hearing, Hearing::Ended(_)),
            "news of a session heard"
        );
        match hearing {
            Hearing::Own => {}
            Hearing::Changed(heard) => {
                // A session open here too (its client's requests go to
                // several replicas) catches up.
                let mut open: Vec<Arc<super::session::Session>> = Vec::new();
                for session in heard.ids.iter().filter_map(|id| self.sessions.get(id)) {
                    if !open.iter().any(|other| Arc::ptr_eq(other, &session)) {
                        open.push(session);
                    }
                }
                for session in open {
                    self.catch_up(&session, &heard.sealed).await;
                }
            }
            Hearing::Ended(ids) => {
                let mut ended = 0;
                for id in &ids {
                    match self.sessions.remove(id) {
                        Some(session) => {
                            end_session(&session, &self.cancellable);
                            ended += 1;
                        }
                        None => self.sessions.mark_ended(id),
                    }
                }
                if ended > 0 {
                    tracing::info!("ended a session another replica was told to end");
                }
            }
        }
        status(StatusCode::NO_CONTENT)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::panic)]
mod tests {
    use std::collections::BTreeSet;

    use mcp_protocol::ProtocolVersion;
    use mcp_runtime::seal::ClusterKey;

    use super::*;

    fn sealed(route: &str, changes: u64) -> Sealed {
        Sealed {
            route: route.to_owned(),
            version: ProtocolVersion::parse("2025-11-25").unwrap(),
            capabilities: json!({}),
            client_info: json!({"name": "c", "version": "1"}),
            subject: None,
            level: None,
            subscriptions: BTreeSet::from([format!("test://{changes}")]),
            changes,
        }
    }

    #[tokio::test]
    async fn news_is_heard_with_the_key_only_and_the_newest_kept() {
        let key = ClusterKey([3_u8; 32]);
        let seal = Arc::new(Seal::new(Some(&key)));
        let here = News::new(&[], &seal, "here".to_owned());
        let route = "00000000000000ab";
        let first = sealed(route, 0).seal(&seal).unwrap();
        let second = sealed(route, 1).seal(&seal).unwrap();
        let third = sealed(route, 2).seal(&seal).unwrap();
        let told = |ids: &[&String], newest: Option<&String>| {
            let tidings = Tidings {
                ids: ids.iter().map(|id| (*id).clone()).collect(),
                newest: newest.cloned(),
            };
            seal_tidings(&seal, "there", &tidings).unwrap()
        };

        // The newest wins, whatever the order it comes in.
        here.hear(&seal, &told(&[&first, &third], Some(&third)))
            .unwrap();
        here.hear(&seal, &told(&[&first, &second], Some(&second)))
            .unwrap();
        let (taken, others) = here.newest(&first, sealed(route, 0));
        assert_eq!(taken, sealed(route, 2));
        assert_eq!(others, std::slice::from_ref(&third));
        // An id that says more than the news is taken as it is.
        assert_eq!(here.newest(&first, sealed(route, 3)).0, sealed(route, 3));
        // Nor is news of another route taken for this one.
        let other = sealed("00000000000000cd", 9);
        assert_eq!(here.newest(&first, other.clone()).0, other);

        // News sealed with another key, changed, not news, or this
        // replica's own is not taken.
        let foreign = Seal::new(Some(&ClusterKey([4_u8; 32])));
        let tidings = Tidings {
            ids: vec![first.clone()],
            newest: None,
        };
        let forged = seal_tidings(&foreign, "there", &tidings).unwrap();
        assert!(here.hear(&seal, &forged).is_none());
        assert!(here.hear(&seal, "garbage").is_none());
        let mut changed = told(&[&first], None);
        changed.pop();
        assert!(here.hear(&seal, &changed).is_none());
        let not_news = seal.seal(PURPOSE, b"{\"ids\": 7}").unwrap();
        assert!(here.hear(&seal, &not_news).is_none());
        let mine = seal_tidings(&seal, "here", &tidings).unwrap();
        assert!(matches!(here.hear(&seal, &mine), Some(Hearing::Own)));
        assert!(here.heard(&first).is_some());

        // An id of another route in the news is left out of it.
        let stray = sealed("00000000000000ef", 0).seal(&seal).unwrap();
        let Some(Hearing::Changed(heard)) =
            here.hear(&seal, &told(&[&stray, &third], Some(&third)))
        else {
            panic!("not heard as a change");
        };
        assert_eq!(heard.ids, std::slice::from_ref(&third));
        assert!(here.heard(&stray).is_none());

        // The end of the session is heard, and forgets it.
        let ended = here.hear(&seal, &told(&[&first, &third], None));
        assert!(matches!(ended, Some(Hearing::Ended(_))));
        assert!(here.heard(&first).is_none() && here.heard(&third).is_none());
        assert!(here.heard(&second).is_some());
    }
}
