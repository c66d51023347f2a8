//! Session ids that carry their session: what a replica needs to take
//! over a session another replica opened (the protocol version, the
//! client's capabilities and info, the subject of its token, and what the
//! client changed since: its log level and the resources it subscribed
//! to), sealed with [`Seal`] for the purpose `session`.
//!
//! An id is `ROUTE.SEALED`: `ROUTE`, sixteen hex digits drawn when the
//! session opens, stays the same for the whole session (a load balancer
//! hashes on it to keep the session on one replica), while `SEALED` is
//! sealed again each time what it carries changes (see [`Change`]), the
//! new id sent back on the answer that changed it. Every id a session had
//! goes on naming it on the replica that has it; a replica that takes it
//! over from one of them gets the session as that id says.

use std::collections::BTreeSet;

use mcp_protocol::mcp::{LoggingLevel, Method, ResourceRequestParams, SetLevelParams, View};
use mcp_protocol::raw::Raw;
use mcp_protocol::{ProtocolVersion, Request};
use mcp_runtime::seal::Seal;
use serde_json::{Value, json};

/// What sessions ids are sealed for.
const PURPOSE: &str = "mcp-manager session";
/// The longest id made: a session whose client says (or subscribes to)
/// more than this gets an id that only this process knows, or keeps the
/// id it has.
pub(super) const MAX_ID: usize = 4096;
/// How many hex digits a route has.
const ROUTE_LEN: usize = 16;

/// What a sealed id says about its session.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Sealed {
    /// The id's route: the same in every id of the session.
    pub(super) route: String,
    /// The negotiated protocol version.
    pub(super) version: ProtocolVersion,
    /// The client's `capabilities`, as it sent them.
    pub(super) capabilities: Value,
    /// The client's `clientInfo`, as it sent it.
    pub(super) client_info: Value,
    /// The subject of the token that opened it, if one did.
    pub(super) subject: Option<String>,
    /// The level of the client's last `logging/setLevel`, if it sent one.
    pub(super) level: Option<LoggingLevel>,
    /// The URIs of the resources the client is subscribed to.
    pub(super) subscriptions: BTreeSet<String>,
    /// How many changes (see [`Change`]) made it: of two ids of one
    /// session, the one with more is the newer.
    pub(super) changes: u64,
}

impl Sealed {
    /// A new id for this session; `None` when it would be longer than
    /// [`MAX_ID`].
    pub(super) fn seal(&self, seal: &Seal) -> Option<String> {
        let mut plain = json!({
            "k": self.route,
            "v": self.version.as_str(),
            "c": self.capabilities,
            "i": self.client_info,
        });
        let object = plain.as_object_mut()?;
        if let Some(subject) = &self.subject {
            object.insert("s".to_owned(), Value::from(subject.as_str()));
        }
        if let Some(level) = self.level {
            object.insert("l".to_owned(), serde_json::to_value(level).ok()?);
        }
        if !self.subscriptions.is_empty() {
            object.insert("r".to_owned(), json!(self.subscriptions));
        }
        if self.changes > 0 {
            object.insert("n".to_owned(), Value::from(self.changes));
        }
        let sealed = seal.seal(PURPOSE, &serde_json::to_vec(&plain).ok()?)?;
        let id = format!("{}.{sealed}", self.route);
        (id.len() <= MAX_ID).then_some(id)
    }

    /// What `id` says, when it was sealed with `seal`'s key, its route is
    /// the one sealed in it, and it names a version of the protocol spoken
    /// here that has sessions.
    pub(super) fn open(seal: &Seal, id: &str) -> Option<Self> {
        if id.len() > MAX_ID {
            return None;
        }
        let (route, sealed) = id.split_once('.')?;
        let value: Value = serde_json::from_slice(&seal.open(PURPOSE, sealed)?).ok()?;
        if value.get("k")?.as_str()? != route {
            return None;
        }
        let version = ProtocolVersion::parse(value.get("v")?.as_str()?)?;
        if !version.is_stateful() {
            return None;
        }
        let level = match value.get("l") {
            None => None,
            Some(level) => Some(serde_json::from_value(level.clone()).ok()?),
        };
        let subscriptions = match value.get("r") {
            None => BTreeSet::new(),
            Some(uris) => serde_json::from_value(uris.clone()).ok()?,
        };
        let changes = value.get("n").map_or(Some(0), Value::as_u64)?;
        Some(Self {
            route: route.to_owned(),
            version,
            capabilities: value.get("c")?.clone(),
            client_info: value.get("i")?.clone(),
            subject: value.get("s").and_then(Value::as_str).map(str::to_owned),
            level,
            subscriptions,
            changes,
        })
    }

    /// A route for a new session, drawn from `id` (a fresh, unguessable
    /// session id of this process).
    pub(super) fn route_of(id: &str) -> String {
        id.chars().take(ROUTE_LEN).collect()
    }
}

/// A request that changes what a session's id carries, once it is
/// answered with a result.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Change {
    /// `logging/setLevel`.
    Level(LoggingLevel),
    /// `resources/subscribe`.
    Subscribe(String),
    /// `resources/unsubscribe`.
    Unsubscribe(String),
}

impl Change {
    /// The change `request` makes if it succeeds; `None` for a request
    /// that changes nothing an id carries, or whose params are not valid
    /// (it will fail).
    pub(super) fn of(request: &Request<'_>) -> Option<Self> {
        let params = || request.params.as_ref().map(Raw::reborrow);
        let uri = || {
            ResourceRequestParams::from_params(params())
                .ok()
                .map(|params| params.uri.into_owned())
        };
        match Method::from_name(&request.method)? {
            Method::SetLogLevel => Some(Self::Level(
                SetLevelParams::from_params(params()).ok()?.level,
            )),
            Method::ResourcesSubscribe => uri().map(Self::Subscribe),
            Method::ResourcesUnsubscribe => uri().map(Self::Unsubscribe),
            _ => None,
        }
    }

    /// What `sealed` says once this change is made; `None` when it says
    /// that already.
    pub(super) fn apply(&self, sealed: &Sealed) -> Option<Sealed> {
        let mut changed = sealed.clone();
        let differs = match self {
            Self::Level(level) => changed.level.replace(*level) != Some(*level),
            Self::Subscribe(uri) => changed.subscriptions.insert(uri.clone()),
            Self::Unsubscribe(uri) => changed.subscriptions.remove(uri),
        };
        changed.changes = changed.changes.saturating_add(1);
        differs.then_some(changed)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use mcp_protocol::RequestId;
    use mcp_runtime::seal::ClusterKey;

    use super::*;

    const ROUTE: &str = "0123456789abcdef";

    fn sealed() -> Sealed {
        Sealed {
            route: ROUTE.to_owned(),
            version: ProtocolVersion::parse("2025-11-25").unwrap(),
            capabilities: json!({"sampling": {}, "elicitation": {"form": {}}}),
            client_info: json!({"name": "c", "version": "1"}),
            subject: Some("alice".to_owned()),
            level: None,
            subscriptions: BTreeSet::new(),
            changes: 0,
        }
    }

    fn request(method: &str, params: Value) -> Request<'static> {
        Request {
            id: RequestId::Number(1),
            method: method.to_owned().into(),
            params: Some(Raw::from_value(&params)),
        }
    }

    #[test]
    fn an_id_opens_on_every_replica_with_the_key() {
        let key = ClusterKey([7_u8; 32]);
        let id = sealed().seal(&Seal::new(Some(&key))).unwrap();
        assert!(id.starts_with("0123456789abcdef.v1."), "{id}");
        assert_eq!(Sealed::open(&Seal::new(Some(&key)), &id), Some(sealed()));
        assert_eq!(Sealed::open(&Seal::new(None), &id), None);
        // Sealed for another purpose, it is no session id.
        let other = Seal::new(Some(&key)).seal("state", b"{}").unwrap();
        assert_eq!(Sealed::open(&Seal::new(Some(&key)), &other), None);
        assert_eq!(
            Sealed::open(&Seal::new(Some(&key)), &format!("{ROUTE}.{other}")),
            None
        );
        // Another route before the same sealed part names no session.
        let moved = id.replacen('0', "f", 1);
        assert_eq!(Sealed::open(&Seal::new(Some(&key)), &moved), None);
        assert_eq!(Sealed::open(&Seal::new(Some(&key)), ROUTE), None);
    }

    #[test]
    fn what_the_client_changed_is_carried() {
        let seal = Seal::new(Some(&ClusterKey([5_u8; 32])));
        let mut changed = sealed();
        for change in [
            Change::of(&request("logging/setLevel", json!({"level": "info"}))).unwrap(),
            Change::of(&request(
                "resources/subscribe",
                json!({"uri": "ev+test://a"}),
            ))
            .unwrap(),
            Change::of(&request(
                "resources/subscribe",
                json!({"uri": "ev+test://b"}),
            ))
            .unwrap(),
            Change::of(&request(
                "resources/unsubscribe",
                json!({"uri": "ev+test://a"}),
            ))
            .unwrap(),
        ] {
            changed = change.apply(&changed).unwrap();
        }
        assert_eq!(changed.level, Some(LoggingLevel::Info));
        assert_eq!(changed.changes, 4);
        assert_eq!(
            changed.subscriptions.iter().collect::<Vec<_>>(),
            ["ev+test://b"]
        );
        let id = changed.seal(&seal).unwrap();
        assert_eq!(Sealed::open(&seal, &id), Some(changed.clone()));
        // What the id says already changes nothing.
        assert_eq!(Change::Level(LoggingLevel::Info).apply(&changed), None);
        assert_eq!(
            Change::Subscribe("ev+test://b".into()).apply(&changed),
            None
        );
        assert_eq!(
            Change::Unsubscribe("ev+test://a".into()).apply(&changed),
            None
        );
        // Nor do other requests, or ones that will fail.
        for (method, params) in [
            ("tools/list", json!({})),
            ("logging/setLevel", json!({"level": "loud"})),
            ("resources/subscribe", json!({"url": "x"})),
        ] {
            assert_eq!(Change::of(&request(method, params)), None, "{method}");
        }
    }

    #[test]
    fn a_version_without_sessions_or_unknown_is_refused() {
        let seal = Seal::new(Some(&ClusterKey([2_u8; 32])));
        for version in ["2026-07-28", "1999-01-01"] {
            let plain = json!({"k": ROUTE, "v": version, "c": {}, "i": {}});
            let sealed = seal
                .seal(PURPOSE, &serde_json::to_vec(&plain).unwrap())
                .unwrap();
            let id = format!("{ROUTE}.{sealed}");
            assert_eq!(Sealed::open(&seal, &id), None, "{version}");
        }
    }

    #[test]
    fn a_client_that_says_too_much_gets_no_sealed_id() {
        let seal = Seal::new(Some(&ClusterKey([3_u8; 32])));
        let mut big = sealed();
        big.client_info = json!({"name": "x".repeat(MAX_ID)});
        assert_eq!(big.seal(&seal), None);
        assert_eq!(Sealed::open(&seal, &"x".repeat(MAX_ID + 1)), None);
        // Nor does one subscribed to more than an id holds.
        let mut many = sealed();
        many.subscriptions = (0..200).map(|n| format!("ev+test://{n:040}")).collect();
        assert_eq!(many.seal(&seal), None);
    }

    /// The changes a client can make, drawn for property tests.
    fn change() -> impl proptest::strategy::Strategy<Value = Change> {
        use proptest::prelude::*;
        prop_oneof![
            prop_oneof![
                Just(LoggingLevel::Debug),
                Just(LoggingLevel::Info),
                Just(LoggingLevel::Error)
            ]
            .prop_map(Change::Level),
            (0_u8..6).prop_map(|n| Change::Subscribe(format!("test://{n}"))),
            (0_u8..6).prop_map(|n| Change::Unsubscribe(format!("test://{n}"))),
        ]
    }

    proptest::proptest! {
        /// Whatever a client changes, in any order: each change that
        /// changes something counts once, the id sealed after it opens to
        /// exactly what the changes made, and of two ids the later one
        /// carries more changes.
        #[test]
        fn every_change_is_carried_and_counted(
            changes in proptest::collection::vec(change(), 0..24),
            route in "[0-9a-f]{16}",
        ) {
            let seal = Seal::new(Some(&ClusterKey([6_u8; 32])));
            let mut carried = Sealed { route, ..sealed() };
            let mut level = None;
            let mut subscriptions = BTreeSet::new();
            let mut counted = 0_u64;
            let mut last: Option<u64> = None;
            for change in &changes {
                let differs = match change {
                    Change::Level(new) => level.replace(*new) != Some(*new),
                    Change::Subscribe(uri) => subscriptions.insert(uri.clone()),
                    Change::Unsubscribe(uri) => subscriptions.remove(uri),
                };
                match change.apply(&carried) {
                    Some(changed) => {
                        proptest::prop_assert!(differs);
                        counted += 1;
                        carried = changed;
                        let id = carried.seal(&seal).unwrap();
                        let opened = Sealed::open(&seal, &id).unwrap();
                        proptest::prop_assert_eq!(&opened, &carried);
                        proptest::prop_assert!(last.is_none_or(|last| last < opened.changes));
                        last = Some(opened.changes);
                    }
                    None => proptest::prop_assert!(!differs),
                }
            }
            proptest::prop_assert_eq!(carried.level, level);
            proptest::prop_assert_eq!(&carried.subscriptions, &subscriptions);
            proptest::prop_assert_eq!(carried.changes, counted);
        }
    }
}
