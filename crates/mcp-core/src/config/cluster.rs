//! `mcpManager.cluster`: what the replicas of one gateway share.

use super::expand;
use super::interpolate::Vars;
use super::reader::{Object, Schema};
use super::report::Report;
use crate::error::ConfigIssue;

const CLUSTER_SCHEMA: Schema = Schema {
    known: &["key", "keyFile", "peers"],
    foreign: &[],
    synonyms: &[("secret", "key"), ("key_file", "keyFile")],
};

/// What the replicas of one gateway behind a load balancer share
/// (`mcpManager.cluster`): the key session ids are sealed with, so that
/// any replica can take over a session another one opened, and the
/// other replicas (`peers`), told of what the sessions of this one change
/// and end. Its `Debug` output leaves the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterConfig {
    key: [u8; 32],
    peers: Vec<String>,
}

impl ClusterConfig {
    /// The key: `key` (64 hex digits), or the content of `keyFile`.
    pub fn key(&self) -> &[u8; 32] {
        &self.key
    }

    /// The other replicas' MCP listeners, each `HOST:PORT` (a name that
    /// resolves to several addresses, as a Kubernetes headless Service
    /// does, names them all); empty when not given.
    pub fn peers(&self) -> &[String] {
        &self.peers
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("key", &"…")
            .field("peers", &self.peers)
            .finish()
    }
}

/// The `cluster` of the `mcpManager` object `section`. The key is never
/// shown in a message, even when it is wrong.
pub(crate) fn parse(
    section: &Object<'_>,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<ClusterConfig> {
    let field = section.get("cluster")?;
    let cluster = field.object(report)?;
    cluster.report_unknown(&CLUSTER_SCHEMA, report);
    let hint = "32 random bytes written as 64 hex digits, e.g. from `openssl rand -hex 32`; the same on every replica";
    let (text, path) = match (cluster.get("key"), cluster.get("keyFile")) {
        (Some(_), Some(file)) => {
            report.error(
                ConfigIssue::new(
                    file.path.as_str(),
                    "give either `key` or `keyFile`, not both",
                )
                .with_hint(hint),
            );
            return None;
        }
        (None, None) => {
            report.error(
                ConfigIssue::new(cluster.path().as_str(), "`key` or `keyFile` is missing")
                    .with_hint(hint),
            );
            return None;
        }
        (Some(key), None) => {
            let raw = key.non_empty_string(report)?;
            (expand::expand(vars, &key.path, raw, report)?, key.path)
        }
        (None, Some(file)) => {
            let raw = file.non_empty_string(report)?;
            let reference = format!("${{file:{raw}}}");
            (
                expand::expand(vars, &file.path, &reference, report)?,
                file.path,
            )
        }
    };
    let peers = peers(&cluster, vars, report);
    match decode(text.trim()) {
        Some(key) => Some(ClusterConfig { key, peers }),
        None => {
            report.error(
                ConfigIssue::new(path.as_str(), "the cluster key is not 64 hex digits")
                    .with_hint(hint),
            );
            None
        }
    }
}

/// The `peers`: each `HOST:PORT`, after `${VAR}` expansion; a bad one is
/// reported and left out.
fn peers(cluster: &Object<'_>, vars: &Vars<'_>, report: &mut Report) -> Vec<String> {
    let Some(field) = cluster.get("peers") else {
        return Vec::new();
    };
    let mut peers = Vec::new();
    for (path, raw) in field.strings(report).unwrap_or_default() {
        let Some(peer) = expand::expand(vars, &path, raw, report) else {
            continue;
        };
        let port = peer
            .rsplit_once(':')
            .filter(|(host, _)| !host.is_empty())
            .and_then(|(_, port)| port.parse::<u16>().ok())
            .filter(|port| *port != 0);
        if port.is_none() {
            report.error(
                ConfigIssue::new(path.as_str(), format!("`{peer}` is not HOST:PORT"))
                    .with_hint("another replica's MCP listener, e.g. `mcp-manager-peers:8080` or `10.0.0.7:8080`"),
            );
        } else if !peers.contains(&peer) {
            peers.push(peer);
        }
    }
    peers
}

fn decode(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut key = [0_u8; 32];
    for (byte, pair) in key.iter_mut().zip(text.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::ManagerConfig;

    const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn load(cluster: &str, dir: Option<&std::path::Path>) -> Result<ManagerConfig, String> {
        let text = format!(r#"{{"mcpManager": {{"cluster": {cluster}}}, "mcpServers": {{}}}}"#);
        let file = dir.map(|dir| dir.join("c.json"));
        ManagerConfig::from_json_str(&text, file.as_deref(), &|_: &str| None)
            .map_err(|error| error.to_string())
    }

    #[test]
    fn the_key_is_read_from_the_config_or_a_file_and_never_shown() {
        let config = load(&format!(r#"{{"key": "{KEY}"}}"#), None).unwrap();
        let key = config.gateway().cluster().unwrap().key();
        assert_eq!(key[1], 1);
        assert_eq!(key[31], 0x1f);
        assert!(!format!("{config:?}").contains("0a0b0c"));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key"), format!("{KEY}\n")).unwrap();
        let config = load(r#"{"keyFile": "key"}"#, Some(dir.path())).unwrap();
        assert_eq!(config.gateway().cluster().unwrap().key(), key);
    }

    #[test]
    fn peers_are_host_and_port() {
        let config = load(
            &format!(
                r#"{{"key": "{KEY}", "peers": ["mcp-manager-peers:8080", "10.0.0.7:8080", "[::1]:9", "10.0.0.7:8080"]}}"#
            ),
            None,
        )
        .unwrap();
        assert_eq!(
            config.gateway().cluster().unwrap().peers(),
            ["mcp-manager-peers:8080", "10.0.0.7:8080", "[::1]:9"]
        );
        assert!(format!("{config:?}").contains("mcp-manager-peers:8080"));
        let no_peers = load(&format!(r#"{{"key": "{KEY}"}}"#), None).unwrap();
        assert!(no_peers.gateway().cluster().unwrap().peers().is_empty());
        for (peers, expected) in [
            (r#"["replica-2"]"#, "`replica-2` is not HOST:PORT"),
            (r#"[":8080"]"#, "`:8080` is not HOST:PORT"),
            (r#"["a:0"]"#, "`a:0` is not HOST:PORT"),
            (r#"["a:http"]"#, "`a:http` is not HOST:PORT"),
            (r#"[7]"#, "peers[0]"),
            (r#""a:1""#, "peers"),
        ] {
            let error =
                load(&format!(r#"{{"key": "{KEY}", "peers": {peers}}}"#), None).unwrap_err();
            assert!(error.contains(expected), "{peers}: {error}");
        }
    }

    #[test]
    fn a_key_that_is_not_32_bytes_in_hex_is_refused_without_being_shown() {
        for (cluster, expected) in [
            (r#"{"key": "0011"}"#, "not 64 hex digits"),
            (
                &format!(r#"{{"key": "{}zz"}}"#, &KEY[2..]) as &str,
                "not 64 hex digits",
            ),
            (r#"{}"#, "`key` or `keyFile` is missing"),
            (r#"{"key": "a", "keyFile": "b"}"#, "not both"),
            (r#"{"keyFile": "/no/such/key"}"#, "no such file"),
        ] {
            let error = load(cluster, None).unwrap_err();
            assert!(error.contains(expected), "{cluster}: {error}");
            assert!(!error.contains("0011") && !error.contains("zz"), "{error}");
        }
    }
}
