//! [`ServerId`], the name a server is known by.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// The name of a configured server: the key of its entry in `mcpServers`.
///
/// Valid ids are non-empty, at most [`ServerId::MAX_LEN`] characters long,
/// and contain no control characters and no `/` (tools are addressed as
/// `SERVER/TOOL`). Ordering, equality and hashing are those of the string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerId(String);

impl ServerId {
    /// The longest valid id, in characters.
    pub const MAX_LEN: usize = 128;

    /// Validates `id`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidServerId`](crate::ErrorKind::InvalidServerId)
    /// when `id` breaks one of the rules above.
    pub fn new(id: impl Into<String>) -> Result<Self, Error> {
        let id = id.into();
        match check(&id) {
            Ok(()) => Ok(Self(id)),
            Err(reason) => Err(Error::invalid_server_id(&id, reason)),
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why `id` is not a valid [`ServerId`], if it is not.
pub(crate) fn check(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        Err("it is empty")
    } else if id.chars().count() > ServerId::MAX_LEN {
        Err("it is longer than 128 characters")
    } else if id.contains('/') {
        Err("it contains `/`, which separates server and tool in `SERVER/TOOL`")
    } else if id.chars().any(char::is_control) {
        Err("it contains a control character")
    } else {
        Ok(())
    }
}

impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ServerId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl TryFrom<String> for ServerId {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        Self::new(s)
    }
}

impl From<ServerId> for String {
    fn from(id: ServerId) -> Self {
        id.0
    }
}

impl AsRef<str> for ServerId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for ServerId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use std::collections::BTreeSet;

    #[test]
    fn accepts_ordinary_names() {
        for name in ["github", "my server", "a.b-c_d", "файлы", &"x".repeat(128)] {
            let id: ServerId = name.parse().unwrap();
            assert_eq!(id.as_str(), name);
            assert_eq!(id.to_string(), name);
        }
    }

    #[test]
    fn rejects_invalid_names() {
        for (name, reason) in [
            ("", "empty"),
            ("a/b", "`/`"),
            ("tab\there", "control"),
            ("nl\n", "control"),
        ] {
            let err = ServerId::new(name).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidServerId);
            assert!(err.to_string().contains(reason), "{err}");
        }
        let long = "é".repeat(129);
        assert!(ServerId::new(long).unwrap_err().to_string().contains("128"));
    }

    #[test]
    fn orders_and_borrows_as_str() {
        let set: BTreeSet<ServerId> = ["b", "a", "c"].iter().map(|s| s.parse().unwrap()).collect();
        let names: Vec<&str> = set.iter().map(ServerId::as_str).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert!(set.contains("b"));
    }

    #[test]
    fn serde_round_trip_validates() {
        let id: ServerId = serde_json::from_str("\"github\"").unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"github\"");
        let bad: Result<ServerId, _> = serde_json::from_str("\"a/b\"");
        assert!(bad.unwrap_err().to_string().contains("`/`"));
    }
}
