//! The checks and ids of the endpoint: loopback hosts against DNS
//! rebinding, the bearer token compared in constant time, unguessable
//! session ids.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Whether `host` (`name[:port]`) is a loopback name; the port, when
/// `port` is given, must be absent or equal to it.
pub(super) fn loopback_host(host: &str, port: Option<u16>) -> bool {
    let (name, given) = if let Some(rest) = host.strip_prefix('[') {
        match rest.split_once(']') {
            Some((name, tail)) => (name, tail.strip_prefix(':')),
            None => return false,
        }
    } else {
        match host.split_once(':') {
            Some((name, given)) => (name, Some(given)),
            None => (host, None),
        }
    };
    let name_ok = name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "::1";
    let port_ok = match (given, port) {
        (None, _) => true,
        (Some(given), None) => given.parse::<u16>().is_ok(),
        (Some(given), Some(port)) => given.parse::<u16>() == Ok(port),
    };
    name_ok && port_ok
}

/// Compares two byte strings in time that depends only on their lengths.
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// Unguessable session ids: 128 bits from two randomly keyed hashers over
/// the time and a counter.
#[derive(Default)]
pub(super) struct SessionIds {
    counter: AtomicU64,
}

impl SessionIds {
    pub(super) fn next(&self) -> String {
        let count = self.counter.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let half = |salt: u8| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u8(salt);
            hasher.write_u128(nanos);
            hasher.write_u64(count);
            hasher.finish()
        };
        format!("{:016x}{:016x}", half(0), half(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(loopback_host("localhost", Some(80)));
        assert!(loopback_host("127.0.0.1:8931", Some(8931)));
        assert!(loopback_host("[::1]:8931", Some(8931)));
        assert!(!loopback_host("127.0.0.1:8932", Some(8931)));
        assert!(!loopback_host("evil.example:8931", Some(8931)));
        assert!(!loopback_host("localhost.evil.example", None));
        assert!(loopback_host("localhost:3000", None));
    }

    #[test]
    fn constant_time_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secrets"));
    }

    #[test]
    fn session_ids_differ() {
        let ids = SessionIds::default();
        let (a, b) = (ids.next(), ids.next());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
