//! Session ids that carry their session: what a replica needs to take
//! over a session another replica opened (the protocol version, the
//! client's capabilities and info, the subject of its token), sealed with
//! [`Seal`] for the purpose `session`.

use mcp_protocol::ProtocolVersion;
use mcp_runtime::seal::Seal;
use serde_json::{Value, json};

/// What sessions ids are sealed for.
const PURPOSE: &str = "mcp-manager session";
/// The longest id made: a session whose client says more than this gets
/// an id that only this process knows.
pub(super) const MAX_ID: usize = 4096;

/// What a sealed id says about its session.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Sealed {
    /// The negotiated protocol version.
    pub(super) version: ProtocolVersion,
    /// The client's `capabilities`, as it sent them.
    pub(super) capabilities: Value,
    /// The client's `clientInfo`, as it sent it.
    pub(super) client_info: Value,
    /// The subject of the token that opened it, if one did.
    pub(super) subject: Option<String>,
}

impl Sealed {
    /// A new id for this session; `None` when it would be longer than
    /// [`MAX_ID`].
    pub(super) fn seal(&self, seal: &Seal) -> Option<String> {
        let mut plain = json!({
            "v": self.version.as_str(),
            "c": self.capabilities,
            "i": self.client_info,
        });
        if let (Some(subject), Some(object)) = (&self.subject, plain.as_object_mut()) {
            object.insert("s".to_owned(), Value::from(subject.as_str()));
        }
        let id = seal.seal(PURPOSE, &serde_json::to_vec(&plain).ok()?)?;
        (id.len() <= MAX_ID).then_some(id)
    }

    /// What `id` says, when it was sealed with `seal`'s key and names a
    /// version of the protocol spoken here that has sessions.
    pub(super) fn open(seal: &Seal, id: &str) -> Option<Self> {
        if id.len() > MAX_ID {
            return None;
        }
        let value: Value = serde_json::from_slice(&seal.open(PURPOSE, id)?).ok()?;
        let version = ProtocolVersion::parse(value.get("v")?.as_str()?)?;
        if !version.is_stateful() {
            return None;
        }
        Some(Self {
            version,
            capabilities: value.get("c")?.clone(),
            client_info: value.get("i")?.clone(),
            subject: value.get("s").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use mcp_runtime::seal::ClusterKey;

    use super::*;

    fn sealed() -> Sealed {
        Sealed {
            version: ProtocolVersion::parse("2025-11-25").unwrap(),
            capabilities: json!({"sampling": {}, "elicitation": {"form": {}}}),
            client_info: json!({"name": "c", "version": "1"}),
            subject: Some("alice".to_owned()),
        }
    }

    #[test]
    fn an_id_opens_on_every_replica_with_the_key() {
        let key = ClusterKey([7_u8; 32]);
        let id = sealed().seal(&Seal::new(Some(&key))).unwrap();
        assert_eq!(Sealed::open(&Seal::new(Some(&key)), &id), Some(sealed()));
        assert_eq!(Sealed::open(&Seal::new(None), &id), None);
        // Sealed for another purpose, it is no session id.
        let other = Seal::new(Some(&key)).seal("state", b"{}").unwrap();
        assert_eq!(Sealed::open(&Seal::new(Some(&key)), &other), None);
    }

    #[test]
    fn a_version_without_sessions_or_unknown_is_refused() {
        let seal = Seal::new(Some(&ClusterKey([2_u8; 32])));
        for version in ["2026-07-28", "1999-01-01"] {
            let plain = json!({"v": version, "c": {}, "i": {}});
            let id = seal
                .seal(PURPOSE, &serde_json::to_vec(&plain).unwrap())
                .unwrap();
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
    }
}
