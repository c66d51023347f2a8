//! Who may use what ([`Access`], from `mcpManager.access`), and where each
//! call is written down ([`Audit`], from `mcpManager.audit`).
//!
//! What a caller may not use is left out of every list it receives and,
//! called by name, answered as if it did not exist. The rules are data
//! compiled at load (patterns with `*`), tried in order per item; nothing
//! here waits or locks.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use mcp_core::auth::Principal;
use mcp_core::config::{AccessConfig, AccessRule, ItemKind};
use mcp_protocol::raw::Raw;
use serde_json::{Value, json};

use crate::error::Error;

/// The rules of `mcpManager.access`.
#[derive(Debug)]
pub struct Access {
    config: AccessConfig,
}

impl Access {
    /// The policy `config` describes.
    #[must_use]
    pub fn new(config: AccessConfig) -> Self {
        Self { config }
    }

    /// Whether `caller` (none without access tokens) may use the item of
    /// `kind` that `server` calls `name` (a resource by its URI): what the
    /// first rule that holds for the caller and matches the item says,
    /// else the default.
    #[must_use]
    pub fn allows(
        &self,
        caller: Option<&Principal>,
        kind: ItemKind,
        server: &str,
        name: &str,
    ) -> bool {
        // A URI that climbs out of a folder (`/public/../secret`, or its
        // percent-encoded dots) could match a rule about another one.
        if kind == ItemKind::Resource && climbs(name) {
            return false;
        }
        self.config
            .rules
            .iter()
            .find(|rule| about(rule, kind, server, name) && holds_for(rule, caller))
            .map_or(self.config.default_allow, |rule| rule.allow)
    }
}

/// Whether a URI has a `.` or `..` path segment, written out or
/// percent-encoded.
fn climbs(uri: &str) -> bool {
    let path = uri.split(['?', '#']).next().unwrap_or_default();
    let lowered = path
        .to_ascii_lowercase()
        .replace("%2e", ".")
        .replace("%2f", "/")
        .replace("%5c", "/");
    lowered
        .split(['/', '\\'])
        .any(|segment| segment == "." || segment == "..")
}

fn about(rule: &AccessRule, kind: ItemKind, server: &str, name: &str) -> bool {
    rule.kinds
        .as_ref()
        .is_none_or(|kinds| kinds.contains(&kind))
        && rule
            .patterns
            .iter()
            .any(|(servers, names)| servers.matches(server) && names.matches(name))
}

fn holds_for(rule: &AccessRule, caller: Option<&Principal>) -> bool {
    if rule.subjects.is_empty() && rule.scopes.is_empty() && rule.claims.is_empty() {
        return true;
    }
    let Some(caller) = caller else {
        return false;
    };
    (rule.subjects.is_empty() || rule.subjects.iter().any(|s| s.matches(&caller.subject)))
        && rule.scopes.iter().all(|scope| caller.has_scope(scope))
        && rule.claims.iter().all(|(name, wanted)| {
            let holds = |value: &Value| match value {
                Value::String(text) => wanted.iter().any(|w| w == text),
                Value::Bool(_) | Value::Number(_) => wanted.contains(&value.to_string()),
                _ => false,
            };
            match caller.claims.get(name) {
                Some(Value::Array(items)) => items.iter().any(holds),
                Some(value) => holds(value),
                None => false,
            }
        })
}

/// Lines waiting to be written, at most; past that, lines are counted as
/// lost rather than making a request wait.
const QUEUED: usize = 4096;

/// The largest arguments written to the log (16 KiB): larger ones are
/// noted by their size, so that the queue stays within 64 MiB.
const MAX_ARGUMENTS: usize = 16 << 10;

/// The audit log: one JSON line per call allowed or denied, appended to a
/// file by a thread of its own.
#[derive(Debug)]
pub struct Audit {
    lines: mpsc::SyncSender<String>,
    arguments: bool,
    lost: AtomicU64,
}

impl Audit {
    /// Appends to `file` (made, readable by its owner only, when missing),
    /// with each call's arguments when `arguments`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be opened for appending.
    pub fn open(file: &Path, arguments: bool) -> Result<Self, Error> {
        let mut out = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(file)
            .map_err(|error| Error::io("open the audit log", file, error))?;
        let (lines, queued) = mpsc::sync_channel::<String>(QUEUED);
        let path: PathBuf = file.to_owned();
        std::thread::Builder::new()
            .name("mcp-audit".to_owned())
            .spawn(move || {
                let mut failed = false;
                // Ends when the audit is dropped.
                while let Ok(line) = queued.recv() {
                    let mut batch = line;
                    batch.push('\n');
                    while let Ok(more) = queued.try_recv() {
                        batch.push_str(&more);
                        batch.push('\n');
                    }
                    match out.write_all(batch.as_bytes()) {
                        Ok(()) => failed = false,
                        Err(error) if !failed => {
                            failed = true;
                            tracing::error!(
                                "cannot write the audit log {}: {error}",
                                path.display()
                            );
                        }
                        Err(_) => {}
                    }
                }
            })
            .map_err(|error| Error::io("start the writer of the audit log", file, error))?;
        Ok(Self {
            lines,
            arguments,
            lost: AtomicU64::new(0),
        })
    }

    /// Writes down that `caller` was `allowed` (or not) to use `name` of
    /// `server`, with `arguments` when the log keeps them.
    pub(crate) fn record(
        &self,
        caller: Option<&Principal>,
        kind: ItemKind,
        server: &str,
        name: &str,
        allowed: bool,
        arguments: Option<&Raw<'_>>,
    ) {
        let mut line = json!({
            "time": crate::pins::now(),
            "subject": caller.map(|c| c.subject.as_str()),
            "server": server,
            kind.name(): name,
            "outcome": if allowed { "allowed" } else { "denied" },
        });
        if self.arguments {
            if let (Some(arguments), Some(members)) = (arguments, line.as_object_mut()) {
                let text = arguments.get();
                let value = if text.len() > MAX_ARGUMENTS {
                    json!({"omitted": format!("{} bytes", text.len())})
                } else {
                    serde_json::from_str::<Value>(text).unwrap_or(Value::Null)
                };
                members.insert("arguments".to_owned(), value);
            }
        }
        if self.lines.try_send(line.to_string()).is_err() {
            let lost = self.lost.fetch_add(1, Ordering::Relaxed) + 1;
            if lost.is_power_of_two() {
                tracing::warn!("the audit log falls behind: {lost} line(s) lost so far");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use mcp_core::ManagerConfig;

    fn access(rules: Value) -> Access {
        let text = json!({"mcpServers": {}, "mcpManager": {"access": rules}}).to_string();
        let config = ManagerConfig::from_json_str(&text, None, &|_: &str| None).unwrap();
        Access::new(config.gateway().access().unwrap().clone())
    }

    fn caller(subject: &str, scopes: &[&str], claims: Value) -> Principal {
        Principal {
            subject: subject.to_owned(),
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            claims: claims.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn the_first_rule_that_holds_decides() {
        let policy = access(json!({"rules": [
            {"deny": ["*/delete_*"]},
            {"allow": ["github/*"], "subjects": ["alice", "team-*"]},
            {"allow": ["*"], "scopes": ["mcp:admin"]},
            {"allow": ["docs/*"], "kinds": ["resources"], "claims": {"groups": ["eng", "ops"]}},
            {"allow": ["ev/echo"]},
        ]}));
        let alice = caller("alice", &[], json!({}));
        let admin = caller("root", &["mcp:admin"], json!({}));
        let eng = caller("carol", &[], json!({"groups": ["sales", "eng"]}));
        let team = caller("team-7", &[], json!({}));
        let tool = ItemKind::Tool;
        assert!(policy.allows(Some(&alice), tool, "github", "create_issue"));
        assert!(policy.allows(Some(&team), tool, "github", "create_issue"));
        assert!(
            !policy.allows(Some(&alice), tool, "github", "delete_repo"),
            "deny comes first"
        );
        assert!(!policy.allows(Some(&admin), tool, "github", "delete_repo"));
        assert!(policy.allows(Some(&admin), tool, "db", "query"));
        assert!(
            !policy.allows(Some(&alice), tool, "db", "query"),
            "the default denies"
        );
        assert!(policy.allows(Some(&eng), ItemKind::Resource, "docs", "file:///a.md"));
        for climbing in [
            "file:///a/../secret",
            "file:///a/%2E%2e/secret",
            "file:///./x",
            "file:///a/..%2fb",
        ] {
            assert!(
                !policy.allows(Some(&eng), ItemKind::Resource, "docs", climbing),
                "{climbing}"
            );
        }
        assert!(
            !policy.allows(Some(&eng), tool, "docs", "search"),
            "the rule is about resources"
        );
        assert!(!policy.allows(Some(&alice), ItemKind::Resource, "docs", "file:///a.md"));
        // Without a token only rules without conditions hold.
        assert!(policy.allows(None, tool, "ev", "echo"));
        assert!(!policy.allows(None, tool, "github", "create_issue"));
        let open = access(
            json!({"default": "allow", "rules": [{"deny": ["*/*"], "subjects": ["mallory"]}]}),
        );
        assert!(open.allows(None, tool, "any", "thing"));
        assert!(!open.allows(
            Some(&caller("mallory", &[], json!({}))),
            tool,
            "any",
            "thing"
        ));
    }

    #[test]
    fn bad_rules_are_config_errors() {
        let error = |rules: Value| {
            let text =
                json!({"mcpServers": {}, "mcpManager": {"access": {"rules": rules}}}).to_string();
            ManagerConfig::from_json_str(&text, None, &|_: &str| None)
                .unwrap_err()
                .to_string()
        };
        assert!(error(json!([{"allow": ["echo"]}])).contains("\"echo\" does not name a server"));
        assert!(
            error(json!([{"allow": ["a/b"], "deny": ["c/d"]}]))
                .contains("either `allow` or `deny`")
        );
        assert!(
            error(json!([{"allow": ["a/b"], "kinds": ["tool", "widgets"]}]))
                .contains("unknown kind \"widgets\"")
        );
    }

    #[test]
    fn calls_are_written_down_one_line_each() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("audit.jsonl");
        let alice = caller("alice", &["mcp:tools"], json!({}));
        let arguments = Raw::from_value(&json!({"text": "hi"}));
        {
            let audit = Audit::open(&file, true).unwrap();
            audit.record(
                Some(&alice),
                ItemKind::Tool,
                "ev",
                "echo",
                true,
                Some(&arguments),
            );
            audit.record(None, ItemKind::Prompt, "ev", "greet", false, None);
            let huge = Raw::from_value(&json!({"text": "x".repeat(MAX_ARGUMENTS)}));
            audit.record(
                Some(&alice),
                ItemKind::Tool,
                "ev",
                "echo",
                true,
                Some(&huge),
            );
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let lines: Vec<Value> = loop {
            let text = std::fs::read_to_string(&file).unwrap();
            if text.lines().count() == 3 || std::time::Instant::now() > deadline {
                break text
                    .lines()
                    .map(|l| serde_json::from_str(l).unwrap())
                    .collect();
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2]["arguments"], json!({"omitted": "16395 bytes"}));
        assert_eq!(lines[0]["subject"], "alice");
        assert_eq!(lines[0]["tool"], "echo");
        assert_eq!(lines[0]["outcome"], "allowed");
        assert_eq!(lines[0]["arguments"], json!({"text": "hi"}));
        assert!(lines[0]["time"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["subject"], Value::Null);
        assert_eq!(lines[1]["prompt"], "greet");
        assert_eq!(lines[1]["outcome"], "denied");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
