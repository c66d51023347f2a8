//! [`Seal`]: what the replicas of one gateway hand their clients sealed
//! so that any of them can read it back (a session id, a `requestState`),
//! with ChaCha20-Poly1305 under a key they share ([`ClusterKey`]).
//!
//! A sealed text is `v1.` and the URL-safe base64 of a random 96-bit
//! nonce followed by the sealed bytes and their tag, bound to a purpose
//! (a session id does not open as a `requestState`). Sealing
//! authenticates: a text that was changed, truncated, forged or sealed
//! with another key or for another purpose does not open. Without a
//! shared key, a process seals with a key of its own, made at start: its
//! texts open nowhere else.

use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// What every sealed text starts with.
const PREFIX: &str = "v1.";

/// The key the replicas of one gateway share (32 bytes). Its `Debug`
/// output leaves it out.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ClusterKey(pub [u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(…)")
    }
}

/// Seals and opens texts with one key.
pub struct Seal {
    key: LessSafeKey,
    random: SystemRandom,
    shared: bool,
}

impl std::fmt::Debug for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seal")
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

impl Seal {
    /// A seal with `key`, or with a key of this process's own when none is
    /// given.
    #[must_use]
    pub fn new(key: Option<&ClusterKey>) -> Self {
        let random = SystemRandom::new();
        let shared = key.is_some();
        let mut own = [0_u8; 32];
        let bytes = match key {
            Some(ClusterKey(key)) => key,
            None => {
                // The system's generator does not fail on Linux; if it
                // did, texts would still be sealed, only with a key that
                // could be guessed.
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
    /// made here).
    #[must_use]
    pub fn shared(&self) -> bool {
        self.shared
    }

    /// `plain`, sealed for `purpose`; `None` only when the system's
    /// generator failed.
    #[must_use]
    pub fn seal(&self, purpose: &str, plain: &[u8]) -> Option<String> {
        let mut data = plain.to_vec();
        let mut nonce = [0_u8; NONCE_LEN];
        self.random.fill(&mut nonce).ok()?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut data,
            )
            .ok()?;
        let mut raw = Vec::with_capacity(NONCE_LEN + data.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&data);
        Some(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
        ))
    }

    /// What `text` holds, when it was sealed with this key for `purpose`.
    #[must_use]
    pub fn open(&self, purpose: &str, text: &str) -> Option<Vec<u8>> {
        let encoded = text.strip_prefix(PREFIX)?;
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
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut data)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// ChaCha20-Poly1305 takes any 32 bytes: a key of that size is never
/// refused.
#[allow(clippy::panic)]
fn unreachable_key() -> LessSafeKey {
    panic!("a 32-byte ChaCha20-Poly1305 key was refused")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn a_text_opens_with_its_key_and_purpose_only() {
        let key = ClusterKey([7_u8; 32]);
        let seal = Seal::new(Some(&key));
        assert!(seal.shared());
        let text = seal.seal("session", b"hello").unwrap();
        assert!(text.starts_with("v1.") && text.bytes().all(|b| b.is_ascii_graphic()));
        assert_ne!(text, seal.seal("session", b"hello").unwrap(), "each is new");
        assert_eq!(seal.open("session", &text).unwrap(), b"hello");
        assert_eq!(
            Seal::new(Some(&key)).open("session", &text).unwrap(),
            b"hello"
        );
        assert_eq!(seal.open("state", &text), None);
        assert_eq!(
            Seal::new(Some(&ClusterKey([8_u8; 32]))).open("session", &text),
            None
        );
        let own = Seal::new(None);
        assert!(!own.shared());
        assert_eq!(own.open("session", &text), None);
        let private = own.seal("session", b"x").unwrap();
        assert_eq!(own.open("session", &private).unwrap(), b"x");
        assert_eq!(Seal::new(None).open("session", &private), None);
        assert!(!format!("{key:?} {seal:?}").contains('7'));
    }

    #[test]
    fn a_changed_truncated_or_forged_text_does_not_open() {
        let seal = Seal::new(Some(&ClusterKey([1_u8; 32])));
        let text = seal.seal("p", b"some bytes to seal").unwrap();
        let mut bad = vec![
            text[..text.len() - 1].to_owned(),
            text[..10].to_owned(),
            "v1.".to_owned(),
            "v1.AAAA".to_owned(),
            "v2.".to_owned() + &text[3..],
            text.replace("v1.", ""),
            "v1.!!!!".to_owned(),
            format!("{text}A"),
        ];
        for at in 3..text.len() {
            let mut bytes = text.clone().into_bytes();
            bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
            bad.push(String::from_utf8(bytes).unwrap());
        }
        for text in bad {
            assert_eq!(seal.open("p", &text), None, "{text}");
        }
    }
}
