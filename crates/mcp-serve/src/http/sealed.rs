//! Session ids that carry their session: what a replica needs to take
//! over a session another replica opened (the protocol version, the
//! client's capabilities and info, the subject of its token), sealed with
//! ChaCha20-Poly1305 under a key the replicas share.
//!
//! An id is `v1.` and the URL-safe base64 of a random 96-bit nonce
//! followed by the sealed JSON and its tag. Sealing authenticates it: an
//! id that was changed, truncated, forged or sealed with another key does
//! not open, and is as unknown as any other. Without a shared key, each
//! process seals with a key of its own, made at start: its ids open
//! nowhere else.

use base64::Engine as _;
use mcp_protocol::ProtocolVersion;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde_json::{Value, json};

/// What every sealed id starts with.
const PREFIX: &str = "v1.";
/// The longest id made: a session whose client says more than this gets
/// an id that only this process knows.
pub(super) const MAX_ID: usize = 4096;
/// What the seal is bound to, besides the key.
const CONTEXT: &[u8] = b"mcp-manager session v1";

/// The key the replicas of one gateway share, to seal session ids with
/// (32 bytes). Its `Debug` output leaves it out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SessionKey(pub [u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(…)")
    }
}

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

/// Seals and opens session ids with one key.
pub(super) struct Seal {
    key: LessSafeKey,
    random: SystemRandom,
    shared: bool,
}

impl Seal {
    /// A seal with `key`, or with a key of this process's own when none is
    /// given.
    pub(super) fn new(key: Option<&SessionKey>) -> Self {
        let random = SystemRandom::new();
        let shared = key.is_some();
        let mut own = [0_u8; 32];
        let bytes = match key {
            Some(SessionKey(key)) => key,
            None => {
                // The system's generator does not fail on Linux; if it
                // did, ids would still be sealed, only guessable by whoever
                // can guess the key.
                let _ = random.fill(&mut own);
                &own
            }
        };
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map(LessSafeKey::new)
            .unwrap_or_else(|_| unreachable_key());
        Self {
            key,
            random,
            shared,
        }
    }

    /// Whether the key is shared with other replicas (given, rather than
    /// made here): only then is a session this process does not have one
    /// another opened.
    pub(super) fn shared(&self) -> bool {
        self.shared
    }

    /// A new id for `sealed`; `None` when it would be longer than
    /// [`MAX_ID`] (or the system's generator failed).
    pub(super) fn seal(&self, sealed: &Sealed) -> Option<String> {
        let mut plain = json!({
            "v": sealed.version.as_str(),
            "c": sealed.capabilities,
            "i": sealed.client_info,
        });
        if let (Some(subject), Some(object)) = (&sealed.subject, plain.as_object_mut()) {
            object.insert("s".to_owned(), Value::from(subject.as_str()));
        }
        let mut data = serde_json::to_vec(&plain).ok()?;
        let mut nonce = [0_u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(CONTEXT),
                &mut data,
            )
            .ok()?;
        let mut raw = Vec::with_capacity(NONCE_LEN + data.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&data);
        let id = format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        );
        (id.len() <= MAX_ID).then_some(id)
    }

    /// What `id` says, when it was sealed with this key and names a
    /// version of the protocol spoken here that has sessions.
    pub(super) fn open(&self, id: &str) -> Option<Sealed> {
        if id.len() > MAX_ID {
            return None;
        }
        let encoded = id.strip_prefix(PREFIX)?;
        let mut raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let mut data = raw.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&raw).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(CONTEXT), &mut data)
            .ok()?;
        let value: Value = serde_json::from_slice(plain).ok()?;
        let version = ProtocolVersion::parse(value.get("v")?.as_str()?)?;
        if !version.is_stateful() {
            return None;
        }
        Some(Sealed {
            version,
            capabilities: value.get("c")?.clone(),
            client_info: value.get("i")?.clone(),
            subject: value.get("s").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// ChaCha20-Poly1305 takes any 32 bytes: a key of that size is never
/// refused.
#[allow(clippy::panic)]
fn unreachable_key() -> LessSafeKey {
    panic!("a 32-byte ChaCha20-Poly1305 key was refused")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
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
    fn an_id_opens_with_its_key_only() {
        let key = [7_u8; 32];
        let seal = Seal::new(Some(&SessionKey(key)));
        let id = seal.seal(&sealed()).unwrap();
        assert!(id.starts_with("v1."));
        assert!(id.bytes().all(|b| b.is_ascii_graphic()));
        assert_ne!(id, seal.seal(&sealed()).unwrap(), "each id is new");
        assert_eq!(seal.open(&id), Some(sealed()));
        // Another replica with the same key opens it.
        assert_eq!(Seal::new(Some(&SessionKey(key))).open(&id), Some(sealed()));
        // Another key, or none shared, does not.
        assert_eq!(Seal::new(Some(&SessionKey([8_u8; 32]))).open(&id), None);
        assert_eq!(Seal::new(None).open(&id), None);
        let own = Seal::new(None);
        let private = own.seal(&sealed()).unwrap();
        assert_eq!(own.open(&private), Some(sealed()));
        assert_eq!(Seal::new(None).open(&private), None);
    }

    #[test]
    fn a_changed_truncated_or_forged_id_does_not_open() {
        let seal = Seal::new(Some(&SessionKey([1_u8; 32])));
        let id = seal.seal(&sealed()).unwrap();
        let mut bad = vec![
            id[..id.len() - 1].to_owned(),
            id[..10].to_owned(),
            "v1.".to_owned(),
            "v1.AAAA".to_owned(),
            "v2.".to_owned() + &id[3..],
            id.replace("v1.", ""),
            "v1.!!!!".to_owned(),
            format!("{id}A"),
            "x".repeat(MAX_ID + 1),
        ];
        // Every single character changed.
        for at in 3..id.len() {
            let mut bytes = id.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            bad.push(String::from_utf8(bytes).unwrap());
        }
        for id in bad {
            assert_eq!(seal.open(&id), None, "{id}");
        }
    }

    #[test]
    fn a_version_without_sessions_or_unknown_is_refused() {
        let seal = Seal::new(Some(&SessionKey([2_u8; 32])));
        for version in ["2026-07-28", "1999-01-01"] {
            // Sealed by hand, as a replica of another release could.
            let plain = json!({"v": version, "c": {}, "i": {}});
            let mut data = serde_json::to_vec(&plain).unwrap();
            let nonce = [9_u8; NONCE_LEN];
            seal.key
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(nonce),
                    Aad::from(CONTEXT),
                    &mut data,
                )
                .unwrap();
            let mut raw = nonce.to_vec();
            raw.extend_from_slice(&data);
            let id = format!(
                "v1.{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
            );
            assert_eq!(seal.open(&id), None, "{version}");
        }
    }

    #[test]
    fn a_client_that_says_too_much_gets_no_sealed_id() {
        let seal = Seal::new(Some(&SessionKey([3_u8; 32])));
        let mut big = sealed();
        big.client_info = json!({"name": "x".repeat(MAX_ID)});
        assert_eq!(seal.seal(&big), None);
    }
}
