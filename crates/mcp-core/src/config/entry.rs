//! Reading one server entry of `mcpServers` into a [`ServerConfig`].

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::Duration;

use super::interpolate::Vars;
use super::path::JsonPath;
use super::plugin::COMMON_OPTIONS;
use super::reader::{Field, Object, Schema};
use super::report::Report;
use super::server::{
    BreakerConfig, PinMode, ProtocolMode, Resilience, RestartConfig, RestartPolicy, RetryConfig,
    ServerConfig, SessionMode, Timeouts, TransportConfig,
};
use super::suggest;
use super::tools::{ToolFilter, ToolPattern};
use super::transport::{self, Declared};
use super::tree::Json;
use super::{oauth, sandbox};
use crate::error::ConfigIssue;
use crate::id::{self, ServerId};

/// The longest timeout or backoff accepted, in milliseconds: one day.
pub(crate) const MAX_MILLIS: i64 = 86_400_000;

/// The keys of the built-in transports.
const TRANSPORT_KEYS: &[&str] = &[
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "serverUrl",
    "headers",
    "oauth",
];

const SERVER_KEYS: [&str; TRANSPORT_KEYS.len() + COMMON_OPTIONS.len()] =
    concat(TRANSPORT_KEYS, COMMON_OPTIONS);

/// `first` followed by `second`; `N` must be the sum of their lengths.
/// Used in constants only, where a wrong `N` stops the build.
#[allow(clippy::indexing_slicing)]
const fn concat<const N: usize>(
    first: &[&'static str],
    second: &[&'static str],
) -> [&'static str; N] {
    assert!(N == first.len() + second.len());
    let mut out = [""; N];
    let mut i = 0;
    while i < first.len() {
        out[i] = first[i];
        i += 1;
    }
    let mut j = 0;
    while j < second.len() {
        out[i + j] = second[j];
        j += 1;
    }
    out
}

const SERVER_SCHEMA: Schema = Schema {
    known: &SERVER_KEYS,
    foreign: &[
        (
            "autoApprove",
            "to limit what the gateway exposes, use \"tools\": {\"allow\": [...], \"deny\": [...]}",
        ),
        (
            "alwaysAllow",
            "to limit what the gateway exposes, use \"tools\": {\"allow\": [...], \"deny\": [...]}",
        ),
        ("description", "use `tags` to label servers"),
        (
            "envFile",
            "put the variables in `env`, or set them in the environment and write `${NAME}`",
        ),
        (
            "timeout",
            "use `timeoutMs` (milliseconds) for the request timeout",
        ),
        (
            "networkTimeout",
            "use `timeoutMs` (milliseconds) for the request timeout",
        ),
        ("dev", "VS Code's development mode has no equivalent here"),
        ("gallery", "gallery metadata is not needed"),
        ("version", "the server reports its version itself"),
        (
            "watchPaths",
            "restart the gateway or the server after changing its files",
        ),
    ],
    synonyms: &[
        ("arguments", "args"),
        ("argv", "args"),
        ("environment", "env"),
        ("envVars", "env"),
        ("cmd", "command"),
        ("executable", "command"),
        ("program", "command"),
        ("workingDirectory", "cwd"),
        ("workdir", "cwd"),
        ("uri", "url"),
        ("endpoint", "url"),
        ("header", "headers"),
        ("transport", "type"),
        ("requestTimeoutMs", "timeoutMs"),
        ("startupTimeout", "startupTimeoutMs"),
        ("concurrency", "maxConcurrency"),
        ("prefix", "namespace"),
        ("labels", "tags"),
        ("replicas", "instances"),
    ],
};

const RESTART_SCHEMA: Schema = Schema {
    known: &["policy", "maxRestarts", "initialBackoffMs", "maxBackoffMs"],
    foreign: &[],
    synonyms: &[
        ("mode", "policy"),
        ("maxRetries", "maxRestarts"),
        ("backoffMs", "initialBackoffMs"),
    ],
};

const RESILIENCE_SCHEMA: Schema = Schema {
    known: &["maxQueued", "totalTimeoutMs", "circuitBreaker", "retries"],
    foreign: &[],
    synonyms: &[
        ("queue", "maxQueued"),
        ("maxQueue", "maxQueued"),
        ("breaker", "circuitBreaker"),
        ("retry", "retries"),
        ("deadlineMs", "totalTimeoutMs"),
    ],
};

const BREAKER_SCHEMA: Schema = Schema {
    known: &["failures", "openMs", "halfOpenRequests"],
    foreign: &[],
    synonyms: &[
        ("threshold", "failures"),
        ("failureThreshold", "failures"),
        ("resetMs", "openMs"),
        ("cooldownMs", "openMs"),
    ],
};

const RETRIES_SCHEMA: Schema = Schema {
    known: &["attempts", "backoffMs"],
    foreign: &[],
    synonyms: &[("max", "attempts"), ("maxAttempts", "attempts")],
};

const TOOLS_SCHEMA: Schema = Schema {
    known: &["allow", "deny"],
    foreign: &[],
    synonyms: &[("include", "allow"), ("exclude", "deny"), ("block", "deny")],
};

const POLICY_NAMES: &[(&str, &str)] = &[
    ("never", "never"),
    ("onFailure", "onFailure"),
    ("always", "always"),
];

/// Reads the entry `name` of `mcpServers`. Every problem is reported;
/// `None` when there was any error.
pub(crate) fn parse(
    name: &str,
    field: &Field<'_>,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<ServerConfig> {
    let errors = report.error_count();
    let id = server_id(name, &field.path, report);
    if !matches!(field.value, Json::Object(_)) {
        report.error(
            ConfigIssue::new(field.path.as_str(), format!("expected an object with the server's settings, found {}", field.value.kind()))
                .with_hint(r#"e.g. {"command": "npx", "args": ["-y", "some-mcp-server"]} or {"url": "https://example.com/mcp"}"#),
        );
        return None;
    }
    let obj = field.object(report)?;
    let declared = transport::declared(&obj, report);
    let transport = declared.and_then(|declared| transport::parse(&obj, declared, vars, report));
    // The keys of a plugin entry other than the common options belong to
    // the plugin, which checks them itself.
    if !matches!(declared, Some(Declared::Plugin(_))) {
        obj.report_unknown(&SERVER_SCHEMA, report);
    }
    let config = ServerConfig {
        enabled: enabled(&obj, report),
        required: obj
            .get("required")
            .and_then(|f| f.bool(report))
            .unwrap_or(true),
        namespace: namespace(&obj, name, report),
        tags: tags(&obj, report),
        priority: integer(
            &obj,
            "priority",
            i64::from(i32::MIN),
            i64::from(i32::MAX),
            report,
        )
        .and_then(|p| i32::try_from(p).ok())
        .unwrap_or(0),
        instances: instances(&obj, transport.as_ref(), report),
        timeouts: timeouts(&obj, report),
        restart: restart(&obj, report),
        max_concurrency: integer(&obj, "maxConcurrency", 1, i64::from(u32::MAX), report)
            .and_then(|n| u32::try_from(n).ok())
            .and_then(NonZeroU32::new),
        resilience: resilience(&obj, report),
        tools: tools(&obj, report),
        protocol: obj
            .get("protocol")
            .and_then(|f| protocol(&f, report))
            .unwrap_or_default(),
        sessions: obj
            .get("sessions")
            .and_then(|f| sessions(&f, report))
            .unwrap_or_default(),
        pinning: obj.get("pinning").and_then(|f| pin_mode(&f, report)),
        sandbox: sandbox::parse(&obj, is_remote(transport.as_ref()), vars, report),
        oauth: oauth::parse(
            &obj,
            is_http(transport.as_ref()),
            sends_authorization(transport.as_ref()),
            vars,
            report,
        ),
        path: field.path.as_str().to_owned(),
        id: id?,
        transport: transport?,
    };
    (report.error_count() == errors).then_some(config)
}

fn server_id(name: &str, path: &JsonPath, report: &mut Report) -> Option<ServerId> {
    if let Err(reason) = id::check(name) {
        report.error(
            ConfigIssue::new(path.as_str(), format!("invalid server name: {reason}"))
                .with_hint("use a short name of letters, digits, `-` and `_`, e.g. \"github\""),
        );
        return None;
    }
    ServerId::new(name).ok()
}

fn integer(obj: &Object<'_>, key: &str, min: i64, max: i64, report: &mut Report) -> Option<i64> {
    obj.get(key)
        .and_then(|field| field.integer(min, max, report))
}

/// A duration in milliseconds from 1 ms to one day.
fn millis(obj: &Object<'_>, key: &str, default: Duration, report: &mut Report) -> Duration {
    integer(obj, key, 1, MAX_MILLIS, report)
        .and_then(|ms| u64::try_from(ms).ok())
        .map_or(default, Duration::from_millis)
}

fn enabled(obj: &Object<'_>, report: &mut Report) -> bool {
    let enabled = obj.get("enabled").and_then(|f| f.bool(report));
    let disabled = obj.get("disabled").and_then(|f| f.bool(report));
    match (enabled, disabled) {
        (Some(enabled), Some(disabled)) if enabled == disabled => {
            let path = obj.path().key("disabled");
            report.error(
                ConfigIssue::new(
                    path.as_str(),
                    format!("\"disabled\": {disabled} contradicts \"enabled\": {enabled}"),
                )
                .with_hint("keep only one of `enabled` and `disabled`"),
            );
            enabled
        }
        (Some(enabled), _) => enabled,
        (None, Some(disabled)) => !disabled,
        (None, None) => true,
    }
}

/// Whether `s` may prefix tool names (and so be a namespace or separator).
pub(crate) fn is_tool_name_text(s: &str) -> bool {
    s.chars().all(is_tool_name_char)
}

fn is_tool_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn namespace(obj: &Object<'_>, name: &str, report: &mut Report) -> String {
    if let Some(field) = obj.get("namespace") {
        let namespace = field.string(report).unwrap_or_default();
        if !is_tool_name_text(namespace) {
            report.error(
                ConfigIssue::new(field.path.as_str(), format!("\"{namespace}\" is not a valid namespace"))
                    .with_hint("a namespace prefixes tool names, so it uses only letters, digits, `_`, `.` and `-`; \"\" means no prefix"),
            );
        }
        return namespace.to_owned();
    }
    if is_tool_name_text(name) {
        return name.to_owned();
    }
    let sanitized: String = name
        .chars()
        .map(|c| if is_tool_name_char(c) { c } else { '_' })
        .collect();
    report.warn(
        ConfigIssue::new(
            obj.path().as_str(),
            format!("the server name cannot prefix tool names, so its namespace is \"{sanitized}\""),
        )
        .with_hint("set \"namespace\" to choose the prefix (letters, digits, `_`, `.`, `-`), or \"\" for none"),
    );
    sanitized
}

fn tags(obj: &Object<'_>, report: &mut Report) -> Vec<String> {
    let Some(field) = obj.get("tags") else {
        return Vec::new();
    };
    let items = field.array(report).unwrap_or_default();
    items
        .iter()
        .filter_map(|item| item.non_empty_string(report).map(str::to_owned))
        .collect()
}

/// Whether a server is reached (over HTTP, SSE or a frame socket) rather
/// than run here; a plugin's transport is not known to be either.
fn is_remote(transport: Option<&TransportConfig>) -> bool {
    transport.is_some_and(|t| {
        matches!(
            t,
            TransportConfig::StreamableHttp(_)
                | TransportConfig::Sse(_)
                | TransportConfig::FrameSocket(_)
        )
    })
}

/// Whether a server is reached over HTTP (Streamable or HTTP+SSE).
fn is_http(transport: Option<&TransportConfig>) -> bool {
    matches!(
        transport,
        Some(TransportConfig::StreamableHttp(_) | TransportConfig::Sse(_))
    )
}

/// Whether a remote server's configured headers hold an `Authorization`.
fn sends_authorization(transport: Option<&TransportConfig>) -> bool {
    match transport {
        Some(TransportConfig::StreamableHttp(http) | TransportConfig::Sse(http)) => http
            .headers()
            .keys()
            .any(|name| name.eq_ignore_ascii_case("authorization")),
        _ => false,
    }
}

fn instances(
    obj: &Object<'_>,
    transport: Option<&TransportConfig>,
    report: &mut Report,
) -> NonZeroU32 {
    let count = integer(obj, "instances", 1, i64::from(u32::MAX), report)
        .and_then(|n| u32::try_from(n).ok())
        .and_then(NonZeroU32::new)
        .unwrap_or(NonZeroU32::MIN);
    // A plugin's server may run several copies; its plugin decides.
    if is_remote(transport) && count.get() > 1 {
        let path = obj.path().key("instances");
        report.warn(
            ConfigIssue::new(
                path.as_str(),
                "only local (`command`) servers run several instances; a remote server gets one",
            )
            .with_hint("use `maxConcurrency` to bound the requests in flight to a remote server"),
        );
        return NonZeroU32::MIN;
    }
    count
}

fn timeouts(obj: &Object<'_>, report: &mut Report) -> Timeouts {
    let default = Timeouts::default();
    Timeouts {
        request: millis(obj, "timeoutMs", default.request, report),
        startup: millis(obj, "startupTimeoutMs", default.startup, report),
    }
}

fn restart(obj: &Object<'_>, report: &mut Report) -> RestartConfig {
    let default = RestartConfig::default();
    let Some(field) = obj.get("restart") else {
        return default;
    };
    // `"restart": "always"` is short for `{"policy": "always"}`.
    if let Json::String(_) = field.value {
        let policy = policy(&field, report).unwrap_or_default();
        return RestartConfig { policy, ..default };
    }
    let Some(restart) = field.object(report) else {
        return default;
    };
    restart.report_unknown(&RESTART_SCHEMA, report);
    let config = RestartConfig {
        policy: restart
            .get("policy")
            .and_then(|f| policy(&f, report))
            .unwrap_or_default(),
        max_restarts: integer(&restart, "maxRestarts", 0, i64::from(u32::MAX), report)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(default.max_restarts),
        initial_backoff: millis(
            &restart,
            "initialBackoffMs",
            default.initial_backoff,
            report,
        ),
        max_backoff: millis(&restart, "maxBackoffMs", default.max_backoff, report),
    };
    if config.max_backoff < config.initial_backoff {
        let (key, message) = if restart.has("maxBackoffMs") {
            ("maxBackoffMs", "must be at least `initialBackoffMs`")
        } else {
            (
                "initialBackoffMs",
                "must not exceed `maxBackoffMs` (30000 unless set)",
            )
        };
        report.error(
            ConfigIssue::new(restart.path().key(key).as_str(), message).with_hint(format!(
                "the backoff grows from initialBackoffMs ({}) up to maxBackoffMs ({})",
                config.initial_backoff.as_millis(),
                config.max_backoff.as_millis()
            )),
        );
    }
    config
}

fn resilience(obj: &Object<'_>, report: &mut Report) -> Resilience {
    let default = Resilience::default();
    let Some(section) = obj.get("resilience").and_then(|f| f.object(report)) else {
        return default;
    };
    section.report_unknown(&RESILIENCE_SCHEMA, report);
    let max_queued = integer(&section, "maxQueued", 0, 1 << 20, report)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(default.max_queued);
    let total_timeout = integer(&section, "totalTimeoutMs", 1, MAX_MILLIS, report)
        .and_then(|ms| u64::try_from(ms).ok())
        .map(Duration::from_millis);
    Resilience {
        max_queued,
        total_timeout,
        breaker: breaker(&section, report),
        retries: retries(&section, report),
    }
}

/// `"circuitBreaker"`: `false` for none, `true` or an object for one.
fn breaker(section: &Object<'_>, report: &mut Report) -> Option<BreakerConfig> {
    let default = BreakerConfig::default();
    let Some(field) = section.get("circuitBreaker") else {
        return Some(default);
    };
    if let Json::Bool(on) = field.value {
        return on.then_some(default);
    }
    let Some(breaker) = field.object(report) else {
        return Some(default);
    };
    breaker.report_unknown(&BREAKER_SCHEMA, report);
    let count = |key: &str, fallback: u32, report: &mut Report| {
        integer(&breaker, key, 1, i64::from(u32::MAX), report)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(fallback)
    };
    Some(BreakerConfig {
        failures: count("failures", default.failures, report),
        open_for: millis(&breaker, "openMs", default.open_for, report),
        half_open_requests: count("halfOpenRequests", default.half_open_requests, report),
    })
}

/// `"retries"`: a number of attempts, or an object.
fn retries(section: &Object<'_>, report: &mut Report) -> RetryConfig {
    let default = RetryConfig::default();
    let Some(field) = section.get("retries") else {
        return default;
    };
    let attempts = |field: &Field<'_>, report: &mut Report| {
        field
            .integer(0, 10, report)
            .and_then(|n| u32::try_from(n).ok())
    };
    if let Json::Number(_) = field.value {
        return RetryConfig {
            attempts: attempts(&field, report).unwrap_or(default.attempts),
            ..default
        };
    }
    let Some(retries) = field.object(report) else {
        return default;
    };
    retries.report_unknown(&RETRIES_SCHEMA, report);
    RetryConfig {
        attempts: retries
            .get("attempts")
            .and_then(|f| attempts(&f, report))
            .unwrap_or(default.attempts),
        backoff: millis(&retries, "backoffMs", default.backoff, report),
    }
}

fn policy(field: &Field<'_>, report: &mut Report) -> Option<RestartPolicy> {
    let name = field.string(report)?;
    match name {
        "never" => Some(RestartPolicy::Never),
        "onFailure" => Some(RestartPolicy::OnFailure),
        "always" => Some(RestartPolicy::Always),
        _ => {
            let hint = suggest::closest(name, POLICY_NAMES).map_or_else(
                || "use \"never\", \"onFailure\" or \"always\"".to_owned(),
                |known| format!("did you mean \"{known}\"?"),
            );
            report.error(
                ConfigIssue::new(
                    field.path.as_str(),
                    format!("unknown restart policy \"{name}\""),
                )
                .with_hint(hint),
            );
            None
        }
    }
}

fn protocol(field: &Field<'_>, report: &mut Report) -> Option<ProtocolMode> {
    let name = field.string(report)?;
    match name {
        "stateful" => Some(ProtocolMode::Stateful),
        "stateless" => Some(ProtocolMode::Stateless),
        "auto" => Some(ProtocolMode::Auto),
        _ => {
            report.error(
                ConfigIssue::new(field.path.as_str(), format!("unknown protocol \"{name}\""))
                    .with_hint("use \"stateful\" (initialize, the default), \"stateless\" (2026-07-28) or \"auto\""),
            );
            None
        }
    }
}

fn sessions(field: &Field<'_>, report: &mut Report) -> Option<SessionMode> {
    let name = field.string(report)?;
    match name {
        "shared" => Some(SessionMode::Shared),
        "per-client" => Some(SessionMode::PerClient),
        _ => {
            report.error(
                ConfigIssue::new(field.path.as_str(), format!("unknown session mode \"{name}\""))
                    .with_hint("use \"shared\" (one connection for every client, the default) or \"per-client\" (an instance for each client session)"),
            );
            None
        }
    }
}

/// A pinning mode: `"off"`, `"warn"` or `"enforce"`.
pub(crate) fn pin_mode(field: &Field<'_>, report: &mut Report) -> Option<PinMode> {
    let name = field.string(report)?;
    match name {
        "off" => Some(PinMode::Off),
        "warn" => Some(PinMode::Warn),
        "enforce" => Some(PinMode::Enforce),
        _ => {
            report.error(
                ConfigIssue::new(field.path.as_str(), format!("unknown pinning mode \"{name}\""))
                    .with_hint("use \"warn\" (serve a tool whose definition changed, and say so; the default), \"enforce\" (hold it back until `mcp-manager pins approve`) or \"off\""),
            );
            None
        }
    }
}

type Patterns = Vec<(JsonPath, ToolPattern)>;

fn tools(obj: &Object<'_>, report: &mut Report) -> ToolFilter {
    let section = obj.get("tools").and_then(|f| f.object(report));
    if let Some(section) = &section {
        section.report_unknown(&TOOLS_SCHEMA, report);
    }
    let list = |key: &str, report: &mut Report| {
        let field = section.as_ref().and_then(|s| s.get(key))?;
        Some(patterns(&field, report))
    };
    let allow = list("allow", report);
    let mut deny = list("deny", report).unwrap_or_default();
    // Roo Code's `disabledTools` lists tool names to hide: the same as deny.
    if let Some(field) = obj.get("disabledTools") {
        deny.extend(patterns(&field, report));
    }
    if let Some(allow) = &allow {
        warn_about_overlap(allow, &deny, report);
        if allow.is_empty() {
            let path = obj.path().key("tools").key("allow");
            report.warn(ConfigIssue::new(
                path.as_str(),
                "the allow list is empty, so none of the server's tools is exposed",
            ));
        }
    }
    let strip = |list: Patterns| list.into_iter().map(|(_, pattern)| pattern).collect();
    ToolFilter::new(allow.map(strip), strip(deny))
}

fn patterns(field: &Field<'_>, report: &mut Report) -> Patterns {
    let items = field.array(report).unwrap_or_default();
    items
        .into_iter()
        .filter_map(|item| {
            let text = item.non_empty_string(report)?;
            Some((item.path, ToolPattern::new(text)))
        })
        .collect()
}

fn warn_about_overlap(allow: &Patterns, deny: &Patterns, report: &mut Report) {
    let exact_allowed: HashSet<&str> = allow
        .iter()
        .filter(|(_, pattern)| pattern.is_exact())
        .map(|(_, pattern)| pattern.as_str())
        .collect();
    for (path, denied) in deny {
        let in_both = denied.is_exact() && exact_allowed.contains(denied.as_str());
        if in_both {
            report.warn(ConfigIssue::new(
                path.as_str(),
                format!("`{denied}` is both allowed and denied; deny wins, so it is hidden"),
            ));
        }
    }
}
