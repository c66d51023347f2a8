//! Sessions: what a client keeps between its requests, the registry of
//! every open one, and the counts behind the limits.
//!
//! Nothing here takes a lock. Sessions are found by id in a lock-free map
//! (crossbeam's skip list, epoch-reclaimed); a session's own stream is an
//! atomically swapped slot; the counts of sessions and of requests in
//! flight, per client address and per session, are atomics; the requests
//! a client may cancel are kept by (session, request id) in a lock-free
//! map as well.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use crossbeam_skiplist::SkipMap;
use mcp_core::auth::Principal;
use mcp_core::{BoxFuture, HandlerResult, Peer};
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::raw::Raw;
use mcp_protocol::{ErrorObject, Message, Notification, RequestId};
use mcp_runtime::dispatch::{SharedAsked, ask_client};
use mcp_runtime::observe::Observer;
use mcp_runtime::seal::Seal;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::Caller;
use super::body::encode_event;
use super::replay::ReplayLog;
use super::sealed::{Change, Sealed};

/// One client session.
pub(super) struct Session {
    /// The address of the client that opened it.
    pub(super) client: IpAddr,
    /// Who opened it, when access tokens are checked: only the same
    /// subject may use it.
    owner: Caller,
    /// Its [`Peer::session`] key.
    pub(super) key: u64,
    /// The session's own stream (the GET), as encoded events.
    stream: ArcSwapOption<mpsc::Sender<Bytes>>,
    /// Its requests in flight.
    running: AtomicUsize,
    /// The server's requests to the client that wait for an answer.
    pub(super) asked: SharedAsked,
    closed: AtomicBool,
    /// The clock `last_active` counts from.
    epoch: tokio::time::Instant,
    /// When it was last used, in milliseconds since `epoch`.
    last_active: AtomicU64,
    /// The recent events of its request streams, for `Last-Event-ID`.
    pub(super) replay: ReplayLog,
    /// What its ids carry, when they are sealed with a key the replicas
    /// share.
    carried: ArcSwapOption<Carried>,
    /// Set when it is taken out of [`Sessions`]: an id given to it after
    /// that is taken out again.
    filed_out: AtomicBool,
    /// Counts the session as open while it lives.
    _open: OpenSession,
}

/// Counts a session as open from its creation to its drop.
struct OpenSession(Arc<dyn Observer>);

impl OpenSession {
    fn new(observer: &Arc<dyn Observer>) -> Self {
        observer.sessions(1);
        Self(observer.clone())
    }
}

impl Drop for OpenSession {
    fn drop(&mut self) {
        self.0.sessions(-1);
    }
}

impl Session {
    pub(super) fn new(
        client: IpAddr,
        owner: Caller,
        epoch: tokio::time::Instant,
        observer: &Arc<dyn Observer>,
    ) -> Self {
        let session = Self {
            _open: OpenSession::new(observer),
            client,
            owner,
            key: mcp_core::next_session_key(),
            stream: ArcSwapOption::empty(),
            running: AtomicUsize::new(0),
            asked: SharedAsked::default(),
            closed: AtomicBool::new(false),
            epoch,
            last_active: AtomicU64::new(0),
            replay: ReplayLog::default(),
            carried: ArcSwapOption::empty(),
            filed_out: AtomicBool::new(false),
        };
        session.touch();
        session
    }

    /// Whether `caller` may use this session: the subject that opened it,
    /// when it was opened with an access token.
    pub(super) fn used_by(&self, caller: &Caller) -> bool {
        match (&self.owner, caller) {
            (None, _) => true,
            (Some(owner), Some(caller)) => owner.subject == caller.subject,
            (Some(_), None) => false,
        }
    }

    /// Who opened it, when access tokens are checked.
    pub(super) fn owner(&self) -> Option<&Principal> {
        self.owner.as_deref()
    }

    /// Says that its id `first` (the one it is filed under) carries
    /// `sealed`, so that a [`Change`] seals it again; `others` are ids
    /// the session had on other replicas.
    pub(super) fn carry(&self, first: String, sealed: Sealed, others: Vec<String>) {
        self.carried.store(Some(Arc::new(Carried {
            sealed,
            first,
            later: Vec::new(),
            others,
        })));
    }

    /// What its ids carry now, if they carry anything.
    pub(super) fn sealed(&self) -> Option<Sealed> {
        self.carried
            .load()
            .as_ref()
            .map(|carried| carried.sealed.clone())
    }

    /// Takes `sealed` as what its ids carry, unless they carry as many
    /// changes already (another replica told of it; no new id is made:
    /// the client's go on naming it).
    pub(super) fn adopt(&self, sealed: Sealed) {
        self.carried.rcu(|carried| {
            let carried = carried.as_ref()?;
            if carried.sealed.changes >= sealed.changes {
                return Some(carried.clone());
            }
            Some(Arc::new(Carried {
                sealed: sealed.clone(),
                first: carried.first.clone(),
                later: carried.later.clone(),
                others: carried.others.clone(),
            }))
        });
    }

    /// Every id the session had (its first, its later ones, and those it
    /// had on other replicas), and its newest; `None` when its ids carry
    /// nothing.
    pub(super) fn ids(&self) -> Option<(Vec<String>, String)> {
        let carried = self.carried.load_full()?;
        let newest = carried.later.last().unwrap_or(&carried.first).clone();
        let ids = std::iter::once(&carried.first)
            .chain(&carried.later)
            .chain(&carried.others)
            .cloned()
            .collect();
        Some((ids, newest))
    }

    /// Notes that the session is in use now.
    pub(super) fn touch(&self) {
        self.last_active
            .store(millis_since(self.epoch), Ordering::Relaxed);
    }

    /// Whether nothing has used the session since `since` (milliseconds
    /// since the epoch): no request in flight, no open stream.
    pub(super) fn idle_since(&self, since: u64) -> bool {
        self.last_active.load(Ordering::Relaxed) < since
            && self.running.load(Ordering::Acquire) == 0
            && self
                .stream
                .load()
                .as_ref()
                .is_none_or(|stream| stream.is_closed())
    }

    pub(super) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Where what the server sends outside any request goes from now on.
    pub(super) fn set_stream(&self, stream: mpsc::Sender<Bytes>) {
        self.stream.store(Some(Arc::new(stream)));
    }

    /// The session's own stream, if open.
    pub(super) fn stream(&self) -> Option<Arc<mpsc::Sender<Bytes>>> {
        self.stream.load_full()
    }

    /// Closes the session's own stream.
    pub(super) fn end_stream(&self) {
        self.stream.store(None);
    }

    /// Counts one more request in flight, unless `limit` are.
    fn enter(&self, limit: usize) -> bool {
        self.running
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    fn leave(&self) {
        self.running.fetch_sub(1, Ordering::AcqRel);
        self.touch();
    }
}

/// What the ids of a session carry: the id it is filed under, the ids it
/// was given since (each sealed again after a [`Change`]), and what the
/// newest says.
pub(super) struct Carried {
    sealed: Sealed,
    first: String,
    /// The newest last; at most [`MAX_LATER`].
    later: Vec<String>,
    /// Ids it had on other replicas, heard of when it was taken over
    /// here: told with its own, not filed.
    others: Vec<String>,
}

/// The most ids a session keeps besides its first: a client sends the
/// newest (or its first), the others only while the answer that replaced
/// them is on its way. Older ones are ended here.
const MAX_LATER: usize = 8;

/// A session being taken over: the one task that restores it, and the
/// session it restored (`None`: it could not be), for the others to wait
/// on.
pub(super) type TakeOver = tokio::sync::OnceCell<Option<Arc<Session>>>;

pub(super) fn millis_since(epoch: tokio::time::Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Notifications sent outside a request's stream: to the session's GET
/// stream when one is open, else dropped (the client did not ask for them).
pub(super) struct SessionPeer(pub(super) Arc<Session>);

impl Peer for SessionPeer {
    fn notify(&self, notification: Notification<'static>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(stream) = self.0.stream() else {
                return;
            };
            let event = encode_event(&Message::Notification(notification));
            if stream.send(event).await.is_err() {
                // Gone: forget it, unless another has taken its place.
                let _ = self.0.stream.compare_and_swap(&stream, None);
            }
        })
    }

    /// A request to the client outside any of its requests goes on the
    /// session's GET stream; without one open, the client cannot be asked.
    fn request(&self, method: &str, params: Option<Raw<'static>>) -> BoxFuture<'_, HandlerResult> {
        let method = method.to_owned();
        Box::pin(async move {
            let Some(stream) = self.0.stream() else {
                return Err(ErrorObject::new(
                    error_code::METHOD_NOT_FOUND,
                    format!(
                        "`{method}` cannot reach the client: it has no stream open for what comes outside its requests (GET)"
                    ),
                ));
            };
            ask_client(&self.0.asked, &method, params, |message| async move {
                stream.send(encode_event(&message)).await.is_ok()
            })
            .await
        })
    }

    fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    fn session(&self) -> Option<u64> {
        Some(self.0.key)
    }

    fn principal(&self) -> Option<&Principal> {
        self.0.owner()
    }
}

/// Counts per client address, each changed in one atomic step. A client's
/// entry stays while it is in use; [`ClientCounts::forget_idle`] (the
/// endpoint's periodic sweep) drops the entries at zero. (A count taken in the instant its entry is
/// dropped goes uncounted: a client may then briefly exceed its limit by
/// the requests that raced, never fall short of it.)
#[derive(Default)]
pub(super) struct ClientCounts(SkipMap<IpAddr, AtomicUsize>);

impl ClientCounts {
    /// Counts one more for `client`, unless it has `limit` already.
    pub(super) fn acquire(&self, client: IpAddr, limit: usize) -> bool {
        if limit == 0 {
            return false;
        }
        self.0
            .get_or_insert(client, AtomicUsize::new(0))
            .value()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    /// Counts one less for `client`.
    pub(super) fn release(&self, client: IpAddr) {
        if let Some(entry) = self.0.get(&client) {
            let _ = entry
                .value()
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        }
    }

    /// The sum over all clients.
    pub(super) fn total(&self) -> usize {
        self.0
            .iter()
            .map(|entry| entry.value().load(Ordering::Acquire))
            .sum()
    }

    /// Drops the entries of clients at zero.
    pub(super) fn forget_idle(&self) {
        for entry in self.0.iter() {
            if entry.value().load(Ordering::Acquire) == 0 {
                entry.remove();
            }
        }
    }
}

/// A request admitted against its client's limit (and its session's, if
/// it has one) until dropped.
pub(super) struct Admitted {
    counts: Arc<ClientCounts>,
    client: IpAddr,
    session: Option<Arc<Session>>,
}

impl Admitted {
    /// Admits a request of `client` (in `session`), or says which limit it
    /// hit.
    pub(super) fn try_new(
        counts: &Arc<ClientCounts>,
        client: IpAddr,
        per_client: usize,
        session: Option<(&Arc<Session>, usize)>,
    ) -> Result<Self, Refused> {
        if let Some((session, per_session)) = session {
            if !session.enter(per_session) {
                return Err(Refused::Session(per_session));
            }
        }
        let session = session.map(|(session, _)| session.clone());
        if !counts.acquire(client, per_client) {
            if let Some(session) = &session {
                session.leave();
            }
            return Err(Refused::Client(per_client));
        }
        Ok(Self {
            counts: counts.clone(),
            client,
            session,
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.counts.release(self.client);
        if let Some(session) = &self.session {
            session.leave();
        }
    }
}

/// Which limit refused a request.
#[derive(Debug)]
pub(super) enum Refused {
    /// The session's, of this many requests in flight.
    Session(usize),
    /// The client address's, of this many requests in flight.
    Client(usize),
}

/// How long the id of a session ended here is remembered, so that it is
/// not taken over again as if another replica had opened it.
const ENDED_FOR: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// The most ended ids remembered; past it, the oldest are forgotten first.
const MAX_ENDED: usize = 65_536;

/// Every open session by id, with the counts behind the session limits,
/// and the ids of those that ended here lately.
pub(super) struct Sessions {
    by_id: SkipMap<String, Arc<Session>>,
    /// The later ids of sessions (see [`Carried`]).
    later: SkipMap<String, Arc<Session>>,
    ended: SkipMap<String, std::time::Instant>,
    open: AtomicUsize,
    per_client: ClientCounts,
    max: usize,
    max_per_client: usize,
}

impl Sessions {
    pub(super) fn new(max: usize, max_per_client: usize) -> Self {
        Self {
            by_id: SkipMap::new(),
            later: SkipMap::new(),
            ended: SkipMap::new(),
            open: AtomicUsize::new(0),
            per_client: ClientCounts::default(),
            max,
            max_per_client,
        }
    }

    /// The session named `id`: its first id or a later one.
    pub(super) fn get(&self, id: &str) -> Option<Arc<Session>> {
        self.by_id
            .get(id)
            .or_else(|| self.later.get(id))
            .map(|entry| entry.value().clone())
    }

    /// Makes `change` to what `session`'s ids carry, and gives it a new id
    /// that says so, returned; `None` when the session's ids carry nothing
    /// (see [`Session::carry`]), say that already, or the new one would be
    /// too long. Every id it had goes on naming it, but the oldest past
    /// [`MAX_LATER`], ended here.
    pub(super) fn change(
        &self,
        session: &Arc<Session>,
        seal: &Seal,
        change: &Change,
    ) -> Option<String> {
        let mut made = None;
        session.carried.rcu(|carried| {
            made = None;
            let carried = carried.as_ref()?;
            let Some(sealed) = change.apply(&carried.sealed) else {
                return Some(carried.clone());
            };
            let Some(id) = sealed.seal(seal) else {
                return Some(carried.clone());
            };
            let mut later = carried.later.clone();
            later.push(id.clone());
            let over = later.len().saturating_sub(MAX_LATER);
            made = Some((id, later.drain(..over).collect::<Vec<_>>()));
            Some(Arc::new(Carried {
                sealed,
                first: carried.first.clone(),
                later,
                others: carried.others.clone(),
            }))
        });
        let (id, dropped) = made?;
        self.later.insert(id.clone(), session.clone());
        let now = std::time::Instant::now();
        for old in dropped {
            self.later.remove(&old);
            self.ended.insert(old, now);
        }
        // Taken out meanwhile: so is the new id.
        if session.filed_out.load(Ordering::SeqCst) {
            self.later.remove(&id);
        }
        Some(id)
    }

    /// Reserves room for one more session of `client`, or says why there
    /// is none. [`Reservation::fill`] files the session in it; a
    /// reservation dropped unfilled (an `initialize` that failed, or whose
    /// client went away) gives the room back.
    pub(super) fn reserve(&self, client: IpAddr) -> Result<Reservation<'_>, String> {
        let max = self.max;
        if self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_err()
        {
            return Err(format!(
                "too many sessions: the server has its limit of {max} open"
            ));
        }
        if !self.per_client.acquire(client, self.max_per_client) {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(format!(
                "too many sessions: this client has its limit of {} open; end one first",
                self.max_per_client
            ));
        }
        Ok(Reservation {
            sessions: self,
            client,
            filled: false,
        })
    }

    /// Gives back the room of a session, or of a reservation unfilled.
    fn unreserve(&self, client: IpAddr) {
        self.open.fetch_sub(1, Ordering::AcqRel);
        self.per_client.release(client);
    }

    /// Takes the session `id` (any of its ids) out, with all its ids,
    /// giving back its room; `None` when no such session is open (or
    /// another caller took it out first).
    pub(super) fn remove(&self, id: &str) -> Option<Arc<Session>> {
        let carried = self.get(id).and_then(|session| session.carried.load_full());
        let first = carried
            .as_ref()
            .map_or(id, |carried| carried.first.as_str());
        let removed = self.by_id.remove(first)?.value().clone();
        removed.filed_out.store(true, Ordering::SeqCst);
        self.unreserve(removed.client);
        let now = std::time::Instant::now();
        self.ended.insert(first.to_owned(), now);
        if let Some(carried) = removed.carried.load_full() {
            for later in &carried.later {
                self.later.remove(later);
                self.ended.insert(later.clone(), now);
            }
        }
        Some(removed)
    }

    /// Remembers that the session `id`, which another replica opened,
    /// ended here.
    pub(super) fn mark_ended(&self, id: &str) {
        self.ended.insert(id.to_owned(), std::time::Instant::now());
    }

    /// Whether the session `id` ended here lately (see [`ENDED_FOR`]).
    pub(super) fn ended_here(&self, id: &str) -> bool {
        self.ended.contains_key(id)
    }

    /// Drops the per-client counts of clients with no session, and the
    /// ended ids past [`ENDED_FOR`] or [`MAX_ENDED`].
    pub(super) fn forget_idle_clients(&self) {
        self.per_client.forget_idle();
        forget_oldest(&self.ended, |at| *at, MAX_ENDED, ENDED_FOR);
    }

    /// The ids of the sessions `pick` chooses.
    pub(super) fn ids_where(&self, pick: impl Fn(&Session) -> bool) -> Vec<String> {
        self.by_id
            .iter()
            .filter(|entry| pick(entry.value()))
            .map(|entry| entry.key().clone())
            .collect()
    }

    /// Every open session.
    pub(super) fn all(&self) -> Vec<Arc<Session>> {
        self.by_id
            .iter()
            .map(|entry| entry.value().clone())
            .collect()
    }
}

/// Forgets the entries of `map` older than `keep_for` (by `at`), and the
/// oldest past `max`.
pub(super) fn forget_oldest<V: Send + 'static>(
    map: &SkipMap<String, V>,
    at: impl Fn(&V) -> std::time::Instant,
    max: usize,
    keep_for: std::time::Duration,
) {
    let now = std::time::Instant::now();
    let mut ages: Vec<(std::time::Duration, String)> = map
        .iter()
        .map(|entry| (now.duration_since(at(entry.value())), entry.key().clone()))
        .collect();
    ages.sort_unstable_by_key(|(age, _)| std::cmp::Reverse(*age));
    let over = ages.len().saturating_sub(max);
    for (n, (age, id)) in ages.iter().enumerate() {
        if n < over || *age > keep_for {
            map.remove(id);
        } else {
            break;
        }
    }
}

/// Room for one session, counted against the limits until it is filled or
/// dropped.
pub(super) struct Reservation<'s> {
    sessions: &'s Sessions,
    client: IpAddr,
    filled: bool,
}

impl Reservation<'_> {
    /// Files `session` under `id`, in this room.
    /// Files `session` under `id`, unless a session is filed there
    /// already (two takeovers of one id that crossed): that one stays,
    /// the room is given back, and it is the one returned.
    pub(super) fn fill(mut self, id: String, session: Arc<Session>) -> Arc<Session> {
        let filed = self.sessions.by_id.get_or_insert(id, session.clone());
        let kept = filed.value().clone();
        self.filled = Arc::ptr_eq(&kept, &session);
        kept
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if !self.filled {
            self.sessions.unreserve(self.client);
        }
    }
}

/// The requests in flight that their client may cancel, by session key and
/// request id.
#[derive(Default)]
pub(super) struct Cancellable(SkipMap<(u64, RequestId<'static>), AbortHandle>);

impl Cancellable {
    pub(super) fn insert(&self, session: u64, id: RequestId<'static>, task: AbortHandle) {
        self.0.insert((session, id), task);
    }

    pub(super) fn remove(&self, session: u64, id: RequestId<'static>) {
        self.0.remove(&(session, id));
    }

    /// Aborts request `id` of a session, which its client cancelled.
    pub(super) fn cancel(&self, session: u64, id: RequestId<'static>) {
        if let Some(task) = self.0.remove(&(session, id)) {
            task.value().abort();
        }
    }

    /// Aborts every request of a session that ended.
    pub(super) fn abort_session(&self, session: u64) {
        // The keys sort by session first: its requests are one run.
        let first = (session, RequestId::Number(i64::MIN));
        for entry in self.0.range(first..) {
            if entry.key().0 != session {
                break;
            }
            if entry.remove() {
                entry.value().abort();
            }
        }
    }
}

/// Ends `session`: closed to the server, its stream shut, its requests
/// aborted.
pub(super) fn end_session(session: &Session, cancellable: &Cancellable) {
    session.closed.store(true, Ordering::Release);
    session.end_stream();
    cancellable.abort_session(session.key);
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use mcp_runtime::observe::NoObserver;

    use super::*;

    const A: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
    const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

    fn session(client: IpAddr) -> Arc<Session> {
        let observer: Arc<dyn Observer> = Arc::new(NoObserver);
        Arc::new(Session::new(
            client,
            None,
            tokio::time::Instant::now(),
            &observer,
        ))
    }

    #[test]
    fn client_counts_stop_at_the_limit_and_forget_a_client_at_zero() {
        let counts = ClientCounts::default();
        assert!(counts.acquire(A, 2));
        assert!(counts.acquire(A, 2));
        assert!(!counts.acquire(A, 2));
        assert!(counts.acquire(B, 2));
        assert_eq!(counts.total(), 3);
        counts.release(A);
        assert!(counts.acquire(A, 2));
        counts.release(A);
        counts.release(A);
        counts.release(B);
        assert_eq!(counts.total(), 0);
        counts.forget_idle();
        assert!(counts.0.is_empty());
        // A release with nothing counted changes nothing.
        counts.release(A);
        assert_eq!(counts.total(), 0);
        assert!(!counts.acquire(A, 0));
    }

    #[tokio::test]
    async fn sessions_are_limited_in_all_and_per_client() {
        let sessions = Sessions::new(3, 2);
        for id in ["a1", "a2"] {
            sessions.reserve(A).unwrap().fill(id.to_owned(), session(A));
        }
        let Err(refused) = sessions.reserve(A) else {
            panic!("a third session of A was let in");
        };
        assert!(
            refused.contains("this client has its limit of 2"),
            "{refused}"
        );
        sessions
            .reserve(B)
            .unwrap()
            .fill("b1".to_owned(), session(B));
        let Err(refused) = sessions.reserve(B) else {
            panic!("a fourth session was let in");
        };
        assert!(
            refused.contains("the server has its limit of 3"),
            "{refused}"
        );
        // Taking one out, once, gives its room back.
        assert!(sessions.remove("a1").is_some());
        assert!(sessions.remove("a1").is_none());
        // A reservation dropped unfilled gives its room back.
        drop(sessions.reserve(A).unwrap());
        sessions
            .reserve(A)
            .unwrap()
            .fill("a3".to_owned(), session(A));
        assert!(sessions.reserve(A).is_err());
        assert!(sessions.remove("a3").is_some());
        assert_eq!(sessions.ids_where(|s| s.client == A), ["a2"]);
        assert!(sessions.get("b1").is_some());
    }

    #[tokio::test]
    async fn admitted_requests_count_against_session_and_client() {
        let counts = Arc::new(ClientCounts::default());
        let one = session(A);
        let first = Admitted::try_new(&counts, A, 10, Some((&one, 1))).unwrap();
        assert!(matches!(
            Admitted::try_new(&counts, A, 10, Some((&one, 1))),
            Err(Refused::Session(1))
        ));
        let stateless = Admitted::try_new(&counts, A, 2, None).unwrap();
        assert!(matches!(
            Admitted::try_new(&counts, A, 2, None),
            Err(Refused::Client(2))
        ));
        assert!(!one.idle_since(u64::MAX));
        drop((first, stateless));
        assert_eq!(counts.total(), 0);
        assert!(one.idle_since(u64::MAX));
    }

    #[tokio::test]
    async fn cancelled_and_ended_requests_are_aborted() {
        let cancellable = Cancellable::default();
        let tasks: Vec<_> = (0..3)
            .map(|_| tokio::spawn(std::future::pending::<()>()))
            .collect();
        cancellable.insert(1, RequestId::Number(7), tasks[0].abort_handle());
        cancellable.insert(1, RequestId::Number(8), tasks[1].abort_handle());
        cancellable.insert(2, RequestId::Number(7), tasks[2].abort_handle());
        cancellable.cancel(2, RequestId::Number(7));
        tokio::task::yield_now().await;
        assert!(tasks[2].is_finished());
        assert!(!tasks[0].is_finished());
        let ended = session(A);
        cancellable.abort_session(1);
        end_session(&ended, &cancellable);
        tokio::task::yield_now().await;
        assert!(tasks.iter().all(tokio::task::JoinHandle::is_finished));
        assert!(ended.is_closed());
        assert!(cancellable.0.is_empty());
    }

    #[test]
    fn a_session_keeps_its_ids_and_ends_with_all_of_them() {
        use mcp_protocol::ProtocolVersion;
        use mcp_protocol::mcp::LoggingLevel;
        use mcp_runtime::seal::ClusterKey;

        let seal = Seal::new(Some(&ClusterKey([9_u8; 32])));
        let sessions = Sessions::new(4, 4);
        let sealed = Sealed {
            route: "00000000000000aa".to_owned(),
            version: ProtocolVersion::parse("2025-11-25").unwrap(),
            capabilities: serde_json::json!({}),
            client_info: serde_json::json!({}),
            subject: None,
            level: None,
            subscriptions: std::collections::BTreeSet::new(),
            changes: 0,
        };
        let first = sealed.seal(&seal).unwrap();
        let one = session(A);
        one.carry(first.clone(), sealed, Vec::new());
        let one = sessions.reserve(A).unwrap().fill(first.clone(), one);
        let subscribe = |n: usize| Change::Subscribe(format!("test://{n}"));
        let level = Change::Level(LoggingLevel::Info);
        let second = sessions.change(&one, &seal, &level).unwrap();
        assert!(second.starts_with("00000000000000aa."), "{second}");
        // What the id says already: no new id.
        assert_eq!(sessions.change(&one, &seal, &level), None);
        let opened = Sealed::open(&seal, &second).unwrap();
        assert_eq!(opened.level, Some(LoggingLevel::Info));
        let mut ids = vec![first.clone(), second];
        for n in 0..MAX_LATER {
            ids.push(sessions.change(&one, &seal, &subscribe(n)).unwrap());
        }
        // The newest ids name it; the oldest later one was ended.
        for id in ids.iter().skip(2).chain([&first]) {
            assert!(Arc::ptr_eq(&sessions.get(id).unwrap(), &one), "{id}");
        }
        assert!(sessions.get(&ids[1]).is_none());
        assert!(sessions.ended_here(&ids[1]));
        let newest = Sealed::open(&seal, ids.last().unwrap()).unwrap();
        assert_eq!(newest.subscriptions.len(), MAX_LATER);
        assert_eq!(sessions.ids_where(|_| true), vec![first.clone()]);
        // Ended by a later id, it ends by all of them, once.
        assert!(sessions.remove(&ids[4]).is_some());
        assert!(sessions.remove(&first).is_none());
        for id in &ids {
            assert!(sessions.get(id).is_none(), "{id}");
            assert!(sessions.ended_here(id), "{id}");
        }
        assert_eq!(sessions.open.load(Ordering::Acquire), 0);
        // A change made after it ended names nothing.
        let late = sessions.change(&one, &seal, &subscribe(99)).unwrap();
        assert!(sessions.get(&late).is_none());
    }
}
