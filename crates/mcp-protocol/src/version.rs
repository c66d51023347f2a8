//! Protocol versions, negotiation and what each version has.
//!
//! Versions up to 2025-11-25 are *stateful*: a connection starts with an
//! `initialize` handshake in which the client proposes a version and the
//! server answers with the one it will speak. 2026-07-28 is *stateless*:
//! there is no handshake, every request names its version (and the client's
//! capabilities) in `_meta`, and `server/discover` tells a client what a
//! server supports.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, ErrorKind};

/// A version of the Model Context Protocol, oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ProtocolVersion {
    /// 2024-11-05: the first version, HTTP+SSE transport.
    V2024_11_05,
    /// 2025-03-26: Streamable HTTP, batches, tool annotations, audio.
    V2025_03_26,
    /// 2025-06-18: no batches, elicitation, structured tool output,
    /// `MCP-Protocol-Version` header.
    V2025_06_18,
    /// 2025-11-25: URL elicitation, tasks, icons, sampling with tools.
    V2025_11_25,
    /// 2026-07-28: stateless requests, `server/discover`, multi-round-trip
    /// results, `subscriptions/listen`.
    V2026_07_28,
}

/// What a protocol version has; the table behind [`ProtocolVersion::features`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)] // A feature table is a set of flags.
pub struct Features {
    /// JSON-RPC batches (arrays of messages) on the wire.
    pub batches: bool,
    /// The `initialize` handshake and a session for the connection's life
    /// (`Mcp-Session-Id` over HTTP).
    pub sessions: bool,
    /// Stateless requests: version and client capabilities in every
    /// request's `_meta`, `server/discover`, no handshake.
    pub stateless_requests: bool,
    /// The Streamable HTTP transport.
    pub streamable_http: bool,
    /// The HTTP+SSE transport (GET `/sse`, POST to the announced endpoint).
    pub http_sse: bool,
    /// The `MCP-Protocol-Version` header on every HTTP request.
    pub version_header: bool,
    /// `Mcp-Method` and `Mcp-Name` headers mirroring the body.
    pub method_headers: bool,
    /// `ping` requests.
    pub ping: bool,
    /// `logging/setLevel` (later versions set the level per request).
    pub set_log_level: bool,
    /// `resources/subscribe` and `resources/unsubscribe`.
    pub resource_subscribe: bool,
    /// `subscriptions/listen`, replacing per-resource subscriptions.
    pub subscriptions_listen: bool,
    /// Server-to-client requests (sampling, elicitation, roots) sent as
    /// JSON-RPC requests while serving a call.
    pub server_requests: bool,
    /// Results with `resultType: "input_required"` that ask the client for
    /// input and are continued by a new request.
    pub input_required_results: bool,
    /// Tool annotations (`readOnlyHint`, `idempotentHint`, ...).
    pub tool_annotations: bool,
    /// Structured tool output (`structuredContent`, `outputSchema`).
    pub structured_output: bool,
    /// Form elicitation (`elicitation/create`).
    pub elicitation: bool,
    /// URL-mode elicitation.
    pub url_elicitation: bool,
    /// Task-augmented requests.
    pub tasks: bool,
}

impl ProtocolVersion {
    /// Every version, oldest first.
    pub const ALL: [Self; 5] = [
        Self::V2024_11_05,
        Self::V2025_03_26,
        Self::V2025_06_18,
        Self::V2025_11_25,
        Self::V2026_07_28,
    ];

    /// The newest version.
    pub const LATEST: Self = Self::V2026_07_28;

    /// The newest version with an `initialize` handshake.
    pub const LATEST_STATEFUL: Self = Self::V2025_11_25;

    /// The version when a Streamable HTTP request carries no
    /// `MCP-Protocol-Version` header and no other way to tell.
    pub const HTTP_DEFAULT: Self = Self::V2025_03_26;

    /// The version's date string, as sent on the wire.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::V2024_11_05 => "2024-11-05",
            Self::V2025_03_26 => "2025-03-26",
            Self::V2025_06_18 => "2025-06-18",
            Self::V2025_11_25 => "2025-11-25",
            Self::V2026_07_28 => "2026-07-28",
        }
    }

    /// Parses a version string; `None` for one this implementation does not
    /// know.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str() == text)
    }

    /// What this version has.
    #[must_use]
    pub const fn features(self) -> Features {
        use ProtocolVersion as V;
        let stateful = !matches!(self, V::V2026_07_28);
        let from_2025_03 = !matches!(self, V::V2024_11_05);
        let from_2025_06 = matches!(self, V::V2025_06_18 | V::V2025_11_25 | V::V2026_07_28);
        let from_2025_11 = matches!(self, V::V2025_11_25 | V::V2026_07_28);
        Features {
            batches: matches!(self, V::V2025_03_26),
            sessions: stateful,
            stateless_requests: !stateful,
            streamable_http: from_2025_03,
            http_sse: matches!(self, V::V2024_11_05),
            version_header: from_2025_06,
            method_headers: !stateful,
            ping: stateful,
            set_log_level: stateful,
            resource_subscribe: stateful,
            subscriptions_listen: !stateful,
            server_requests: stateful,
            input_required_results: !stateful,
            tool_annotations: from_2025_03,
            structured_output: from_2025_06,
            elicitation: from_2025_06,
            url_elicitation: from_2025_11,
            tasks: matches!(self, V::V2025_11_25),
        }
    }

    /// Whether this version starts with an `initialize` handshake.
    #[must_use]
    pub const fn is_stateful(self) -> bool {
        self.features().sessions
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ProtocolVersion {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        Self::parse(text).ok_or_else(|| {
            Error::new(
                ErrorKind::UnsupportedVersion,
                format!("unsupported protocol version {text:?}"),
            )
        })
    }
}

impl Serialize for ProtocolVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ProtocolVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = crate::raw::CowStr::deserialize(deserializer)?;
        text.0.parse().map_err(serde::de::Error::custom)
    }
}

/// The set of versions one side speaks, and the negotiation rules of the
/// specification over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionSet {
    versions: Vec<ProtocolVersion>,
}

impl Default for VersionSet {
    /// Every version this implementation knows.
    fn default() -> Self {
        Self::new(ProtocolVersion::ALL)
    }
}

impl VersionSet {
    /// A set of versions; order and duplicates do not matter.
    pub fn new(versions: impl IntoIterator<Item = ProtocolVersion>) -> Self {
        let mut versions: Vec<_> = versions.into_iter().collect();
        versions.sort_unstable();
        versions.dedup();
        Self { versions }
    }

    /// The versions, oldest first.
    #[must_use]
    pub fn versions(&self) -> &[ProtocolVersion] {
        &self.versions
    }

    /// Whether `version` is in the set.
    #[must_use]
    pub fn contains(&self, version: ProtocolVersion) -> bool {
        self.versions.binary_search(&version).is_ok()
    }

    /// The newest version in the set.
    #[must_use]
    pub fn latest(&self) -> Option<ProtocolVersion> {
        self.versions.last().copied()
    }

    /// The server's answer to an `initialize` that proposes `requested`: the
    /// same version if the server speaks it, otherwise the newest stateful
    /// version it speaks (the client then decides whether to go on). `None`
    /// when the server speaks no stateful version at all.
    #[must_use]
    pub fn answer_initialize(&self, requested: &str) -> Option<ProtocolVersion> {
        match ProtocolVersion::parse(requested) {
            Some(v) if v.is_stateful() && self.contains(v) => Some(v),
            _ => self
                .versions
                .iter()
                .rev()
                .copied()
                .find(|v| v.is_stateful()),
        }
    }

    /// The check a server makes on the version named in a stateless
    /// request's `_meta`.
    ///
    /// # Errors
    ///
    /// [`UnsupportedVersion`] (sent as JSON-RPC error `-32022` with the
    /// supported versions in `data`) when the version is unknown, stateful,
    /// or not in the set.
    pub fn check_stateless(&self, requested: &str) -> Result<ProtocolVersion, UnsupportedVersion> {
        match ProtocolVersion::parse(requested) {
            Some(v) if !v.is_stateful() && self.contains(v) => Ok(v),
            _ => Err(UnsupportedVersion {
                requested: requested.to_owned(),
                supported: self.versions.clone(),
            }),
        }
    }

    /// The version a client picks from a server's `supportedVersions` (from
    /// `server/discover`, or an unsupported-version error): the newest both
    /// sides speak.
    pub fn select<'s>(&self, theirs: impl IntoIterator<Item = &'s str>) -> Option<ProtocolVersion> {
        theirs
            .into_iter()
            .filter_map(ProtocolVersion::parse)
            .filter(|v| self.contains(*v))
            .max()
    }
}

/// The `data` of a `-32022` error: which version was asked for and which are
/// spoken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("unsupported protocol version {requested:?}")]
pub struct UnsupportedVersion {
    /// The version the request named.
    pub requested: String,
    /// The versions the server speaks.
    pub supported: Vec<ProtocolVersion>,
}

impl UnsupportedVersion {
    /// The JSON-RPC error object to send back.
    #[must_use]
    pub fn to_error_object(&self) -> crate::jsonrpc::ErrorObject<'static> {
        let mut error = crate::jsonrpc::ErrorObject::new(
            crate::jsonrpc::error_code::UNSUPPORTED_PROTOCOL_VERSION,
            format!("Unsupported protocol version: {}", self.requested),
        );
        error.data = Some(crate::raw::Raw::from_value(self));
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ProtocolVersion as V;

    #[test]
    fn strings_round_trip() {
        for v in V::ALL {
            assert_eq!(V::parse(v.as_str()), Some(v));
            assert_eq!(v.to_string().parse::<V>().unwrap(), v);
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(serde_json::from_str::<V>(&json).unwrap(), v);
        }
        assert_eq!(V::parse("2025-01-01"), None);
        assert_eq!(
            "1999".parse::<V>().unwrap_err().kind(),
            ErrorKind::UnsupportedVersion
        );
    }

    #[test]
    fn feature_table() {
        let batches: Vec<_> = V::ALL
            .into_iter()
            .filter(|v| v.features().batches)
            .collect();
        assert_eq!(batches, [V::V2025_03_26]);
        assert!(V::V2025_11_25.features().sessions);
        assert!(!V::V2026_07_28.features().sessions);
        assert!(V::V2026_07_28.features().stateless_requests);
        assert!(V::V2026_07_28.features().input_required_results);
        assert!(!V::V2026_07_28.features().ping);
        assert!(!V::V2025_03_26.features().version_header);
        assert!(V::V2025_06_18.features().version_header);
        assert!(V::V2024_11_05.features().http_sse);
        assert!(!V::V2024_11_05.features().streamable_http);
        assert!(V::V2025_11_25.features().url_elicitation);
        assert!(!V::V2025_06_18.features().url_elicitation);
        assert_eq!(V::LATEST, *V::ALL.last().unwrap());
        assert!(V::LATEST_STATEFUL.is_stateful());
    }

    #[test]
    fn initialize_answers() {
        let all = VersionSet::default();
        assert_eq!(all.answer_initialize("2025-06-18"), Some(V::V2025_06_18));
        assert_eq!(all.answer_initialize("2099-01-01"), Some(V::V2025_11_25));
        // A stateless version cannot be negotiated by a handshake.
        assert_eq!(all.answer_initialize("2026-07-28"), Some(V::V2025_11_25));
        let old = VersionSet::new([V::V2025_03_26, V::V2024_11_05]);
        assert_eq!(old.answer_initialize("2025-11-25"), Some(V::V2025_03_26));
        let stateless = VersionSet::new([V::V2026_07_28]);
        assert_eq!(stateless.answer_initialize("2025-11-25"), None);
    }

    #[test]
    fn stateless_checks() {
        let all = VersionSet::default();
        assert_eq!(all.check_stateless("2026-07-28"), Ok(V::V2026_07_28));
        let err = all.check_stateless("2025-06-18").unwrap_err();
        assert_eq!(err.requested, "2025-06-18");
        let object = err.to_error_object();
        assert_eq!(object.code, -32022);
        let data: serde_json::Value = serde_json::from_str(object.data.unwrap().get()).unwrap();
        assert_eq!(data["requested"], "2025-06-18");
        assert_eq!(data["supported"][4], "2026-07-28");
    }

    #[test]
    fn client_selection() {
        let ours = VersionSet::new([V::V2025_06_18, V::V2025_11_25]);
        assert_eq!(
            ours.select(["2026-07-28", "2025-11-25", "2025-06-18"]),
            Some(V::V2025_11_25)
        );
        assert_eq!(ours.select(["2030-01-01"]), None);
        assert_eq!(ours.latest(), Some(V::V2025_11_25));
        assert!(!ours.contains(V::V2026_07_28));
    }
}
