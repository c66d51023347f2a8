//! `mcpManager.access` (who may use which tools, prompts and resources)
//! and `mcpManager.audit` (where each call is written down).

use std::path::PathBuf;

use super::expand;
use super::interpolate::Vars;
use super::reader::{Field, Object, Schema};
use super::report::Report;
use super::tools::ToolPattern;
use super::tree::Json;
use crate::error::ConfigIssue;

const ACCESS_SCHEMA: Schema = Schema {
    known: &["default", "rules"],
    foreign: &[],
    synonyms: &[("policy", "rules")],
};

const RULE_SCHEMA: Schema = Schema {
    known: &["allow", "deny", "kinds", "subjects", "scopes", "claims"],
    foreign: &[],
    synonyms: &[
        ("permit", "allow"),
        ("forbid", "deny"),
        ("users", "subjects"),
        ("subject", "subjects"),
        ("scope", "scopes"),
        ("kind", "kinds"),
    ],
};

const AUDIT_SCHEMA: Schema = Schema {
    known: &["file", "arguments"],
    foreign: &[],
    synonyms: &[("path", "file"), ("args", "arguments")],
};

/// Who may use what: `mcpManager.access`. Rules are tried in order; the
/// first whose conditions hold for the caller and whose patterns match
/// the item decides; when none does, `default` (`"deny"` unless said).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessConfig {
    /// The rules, in order.
    pub rules: Vec<AccessRule>,
    /// What is decided when no rule matches: allowed or not.
    pub default_allow: bool,
}

/// What a rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    /// A tool (`tools/list`, `tools/call`).
    Tool,
    /// A prompt (`prompts/list`, `prompts/get`, its completions).
    Prompt,
    /// A resource or resource template (lists, reads, subscriptions,
    /// completions), by its URI on its server.
    Resource,
}

impl ItemKind {
    /// The kind as written in configs and the audit log.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tool => "tool",
            Self::Prompt => "prompt",
            Self::Resource => "resource",
        }
    }
}

/// One rule: allow or deny the items its patterns match, to callers its
/// conditions hold for (all of them; a rule without conditions holds for
/// everybody).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRule {
    /// Whether it allows (`allow`) or denies (`deny`).
    pub allow: bool,
    /// `SERVER/NAME` patterns (`*` for any text; `*` alone for
    /// everything), NAME a tool's or prompt's own name or a resource's URI.
    pub patterns: Vec<(ToolPattern, ToolPattern)>,
    /// The kinds it is about (`kinds`); all when `None`.
    pub kinds: Option<Vec<ItemKind>>,
    /// `subjects`: patterns the caller's subject must match (one of them).
    pub subjects: Vec<ToolPattern>,
    /// `scopes`: scopes the caller's token must grant (all of them).
    pub scopes: Vec<String>,
    /// `claims`: claim name and the values one of which the claim must
    /// hold (equal to it, or among its items when it is a list).
    pub claims: Vec<(String, Vec<String>)>,
}

/// Where calls are written down: `mcpManager.audit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    /// `file`: the JSON lines file, appended to (relative to the config
    /// file's folder; see `ManagerConfig::audit_file`).
    pub file: PathBuf,
    /// `arguments`: whether each line holds the call's arguments (default
    /// no: they may be personal data or secrets).
    pub arguments: bool,
}

pub(crate) fn parse_access(section: &Object<'_>, report: &mut Report) -> Option<AccessConfig> {
    let field = section.get("access")?;
    let access = field.object(report)?;
    access.report_unknown(&ACCESS_SCHEMA, report);
    let default_allow = match access.get("default") {
        None => false,
        Some(field) => match field.string(report)? {
            "allow" => true,
            "deny" => false,
            other => {
                report.error(
                    ConfigIssue::new(field.path.as_str(), format!("unknown default \"{other}\""))
                        .with_hint("use \"deny\" (what no rule allows is refused; the default) or \"allow\""),
                );
                false
            }
        },
    };
    let rules = match access.get("rules") {
        None => Vec::new(),
        Some(field) => field
            .array(report)
            .unwrap_or_default()
            .iter()
            .filter_map(|rule| parse_rule(rule, report))
            .collect(),
    };
    Some(AccessConfig {
        rules,
        default_allow,
    })
}

fn parse_rule(field: &Field<'_>, report: &mut Report) -> Option<AccessRule> {
    let rule = field.object(report)?;
    rule.report_unknown(&RULE_SCHEMA, report);
    let (allow, listed) = match (rule.get("allow"), rule.get("deny")) {
        (Some(list), None) => (true, list),
        (None, Some(list)) => (false, list),
        (Some(_), Some(_)) | (None, None) => {
            report.error(
                ConfigIssue::new(field.path.as_str(), "a rule has either `allow` or `deny`")
                    .with_hint(r#"e.g. {"allow": ["github/*"], "scopes": ["mcp:github"]}"#),
            );
            return None;
        }
    };
    let patterns = listed
        .strings(report)?
        .into_iter()
        .filter_map(|(path, text)| {
            // `*` alone: everything.
            let text = if text == "*" { "*/*" } else { text };
            let Some((server, name)) = text.split_once('/') else {
                report.error(
                    ConfigIssue::new(path.as_str(), format!("\"{text}\" does not name a server"))
                        .with_hint("write SERVER/NAME (`*` for any text): \"github/create_*\", \"*/read_file\", \"docs/*\""),
                );
                return None;
            };
            if server.is_empty() || name.is_empty() {
                report.error(ConfigIssue::new(path.as_str(), format!("\"{text}\" has an empty part")).with_hint("use `*` for any server or any name"));
                return None;
            }
            Some((ToolPattern::new(server), ToolPattern::new(name)))
        })
        .collect();
    let kinds = rule.get("kinds").and_then(|field| {
        let kinds = field
            .strings(report)?
            .into_iter()
            .filter_map(|(path, kind)| match kind {
                "tools" | "tool" => Some(ItemKind::Tool),
                "prompts" | "prompt" => Some(ItemKind::Prompt),
                "resources" | "resource" => Some(ItemKind::Resource),
                other => {
                    report.error(
                        ConfigIssue::new(path.as_str(), format!("unknown kind \"{other}\""))
                            .with_hint("use \"tools\", \"prompts\" or \"resources\""),
                    );
                    None
                }
            })
            .collect();
        Some(kinds)
    });
    let words = |key: &str, report: &mut Report| -> Vec<String> {
        rule.get(key)
            .and_then(|field| field.strings(report))
            .unwrap_or_default()
            .into_iter()
            .map(|(_, word)| word.to_owned())
            .collect()
    };
    let subjects = words("subjects", report)
        .iter()
        .map(|subject| ToolPattern::new(subject))
        .collect();
    let scopes = words("scopes", report);
    let claims = rule
        .get("claims")
        .and_then(|field| field.object(report))
        .map(|claims| {
            claims
                .members()
                .filter_map(|(name, value)| {
                    let values = match string_or_strings(&value, report)? {
                        values if values.is_empty() => {
                            report
                                .error(ConfigIssue::new(value.path.as_str(), "no value to match"));
                            return None;
                        }
                        values => values,
                    };
                    Some((name.to_owned(), values))
                })
                .collect()
        })
        .unwrap_or_default();
    Some(AccessRule {
        allow,
        patterns,
        kinds,
        subjects,
        scopes,
        claims,
    })
}

/// A string, or an array of strings, as strings.
fn string_or_strings(field: &Field<'_>, report: &mut Report) -> Option<Vec<String>> {
    if let Json::String(one) = field.value {
        return Some(vec![one.clone()]);
    }
    let many = field.strings(report)?;
    Some(many.into_iter().map(|(_, text)| text.to_owned()).collect())
}

pub(crate) fn parse_audit(
    section: &Object<'_>,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<AuditConfig> {
    let field = section.get("audit")?;
    let audit = field.object(report)?;
    audit.report_unknown(&AUDIT_SCHEMA, report);
    let file = match audit.get("file") {
        Some(field) => {
            let raw = field.non_empty_string(report)?;
            PathBuf::from(expand::expand(vars, &field.path, raw, report)?)
        }
        None => {
            report.error(
                ConfigIssue::new(field.path.as_str(), "`file` is missing")
                    .with_hint(r#"e.g. "audit": {"file": "/var/log/mcp-manager/audit.jsonl"}"#),
            );
            return None;
        }
    };
    let arguments = audit
        .get("arguments")
        .and_then(|field| field.bool(report))
        .unwrap_or(false);
    Some(AuditConfig { file, arguments })
}
