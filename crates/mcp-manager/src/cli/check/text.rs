//! The human-readable report of `check`.

use std::error::Error as _;
use std::io::{self, Write};
use std::path::Path;

use std::time::Duration;

use mcp_core::config::{
    PinMode, RestartConfig, SandboxConfig, ServerConfig, SessionMode, Timeouts, TransportConfig,
};
use mcp_core::{ConfigIssue, Error, ManagerConfig};

/// Writes the summary of a valid config to `out`, or every problem of an
/// invalid one to `err`.
pub(super) fn report(
    file: &Path,
    loaded: &Result<ManagerConfig, Error>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> io::Result<()> {
    match loaded {
        Ok(config) => summary(file, config, out),
        Err(error) => problems(file, error, err),
    }
}

fn summary(file: &Path, config: &ManagerConfig, out: &mut dyn Write) -> io::Result<()> {
    let total = config.servers().len();
    let enabled = config.enabled_servers().count();
    writeln!(
        out,
        "{}: {} ({enabled} enabled), tool names joined with \"{}\"",
        file.display(),
        plural(total, "server"),
        config.gateway().separator()
    )?;
    guard_lines(config, out)?;
    for server in config.servers() {
        writeln!(out)?;
        server_block(server, config.gateway().pinning(), out)?;
    }
    if !config.warnings().is_empty() {
        writeln!(out)?;
    }
    for warning in config.warnings() {
        issue(file, "warning", warning, out)?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "ok: the config is valid ({})",
        plural(config.warnings().len(), "warning")
    )
}

/// Who may call the gateway, and what is written down, when the config
/// says.
fn guard_lines(config: &ManagerConfig, out: &mut dyn Write) -> io::Result<()> {
    let gateway = config.gateway();
    if let Some(auth) = gateway.auth() {
        let mut text = format!(
            "access tokens of {} for {}",
            auth.issuer().as_str(),
            auth.audience()
        );
        if !auth.required_scopes().is_empty() {
            text.push_str(&format!(", with {}", auth.required_scopes().join(" ")));
        }
        if auth.introspection().is_some() {
            text.push_str("; opaque tokens introspected");
        }
        field(out, "auth", &text)?;
    }
    if let Some(access) = gateway.access() {
        let default = if access.default_allow {
            "allow"
        } else {
            "deny"
        };
        let text = format!("{}, else {default}", plural(access.rules.len(), "rule"));
        field(out, "access", &text)?;
    }
    if let Some(file) = config.audit_file() {
        field(out, "audit", &file.display().to_string())?;
    }
    if let Some(cluster) = gateway.cluster() {
        let peers = match cluster.peers() {
            [] => "no peers told of session changes".to_owned(),
            peers => format!("session changes and ends told to {}", peers.join(", ")),
        };
        field(
            out,
            "cluster",
            &format!(
                "session ids sealed with the shared key (given, not shown): any replica takes over a session; {peers}"
            ),
        )?;
    }
    Ok(())
}

fn server_block(server: &ServerConfig, pinning: PinMode, out: &mut dyn Write) -> io::Result<()> {
    let state = if server.is_enabled() {
        "enabled"
    } else {
        "disabled"
    };
    writeln!(
        out,
        "{} ({}, {state})",
        server.id(),
        server.transport().name()
    )?;
    transport_lines(server.transport(), out)?;
    let namespace = match server.namespace() {
        "" => "(none)",
        namespace => namespace,
    };
    field(out, "namespace", namespace)?;
    field(out, "instances", &server.instances().to_string())?;
    if server.sessions() == SessionMode::PerClient {
        field(
            out,
            "sessions",
            "per-client: an instance for each client session",
        )?;
    }
    match server.pinning().unwrap_or(pinning) {
        PinMode::Warn => {}
        PinMode::Enforce => field(
            out,
            "pinning",
            "enforce: a tool whose definition changed is held back until approved",
        )?,
        PinMode::Off => field(out, "pinning", "off: tool definitions are not pinned")?,
    }
    if let Some(sandbox) = server.sandbox() {
        field(out, "sandbox", &sandbox_text(sandbox))?;
    }
    if !server.tags().is_empty() {
        field(out, "tags", &server.tags().join(", "))?;
    }
    if let Some(limit) = server.max_concurrency() {
        field(
            out,
            "concurrency",
            &format!("at most {limit} requests at once"),
        )?;
    }
    let tools = server.tools();
    if let Some(allow) = tools.allow() {
        field(out, "allow tools", &join(allow))?;
    }
    if !tools.deny().is_empty() {
        field(out, "deny tools", &join(tools.deny()))?;
    }
    policy_lines(server, out)
}

/// What a sandbox allows, in a line.
fn sandbox_text(sandbox: &SandboxConfig) -> String {
    let mut parts = vec!["no new privileges".to_owned()];
    if let Some(grants) = sandbox.filesystem() {
        parts.push(format!(
            "files: read {}, write {} (and the system's)",
            paths(&grants.read),
            paths(&grants.write)
        ));
    }
    if !sandbox.network() {
        parts.push("no network".to_owned());
    }
    if let Some(bytes) = sandbox.memory_bytes() {
        parts.push(format!("{} MiB of memory", bytes >> 20));
    }
    if let Some(seconds) = sandbox.cpu_seconds() {
        parts.push(format!("{seconds} s of CPU"));
    }
    if let Some(files) = sandbox.open_files() {
        parts.push(format!("{files} open files"));
    }
    if let Some(processes) = sandbox.processes() {
        parts.push(format!("{processes} processes"));
    }
    parts.join("; ")
}

fn paths(list: &[std::path::PathBuf]) -> String {
    if list.is_empty() {
        return "nothing".to_owned();
    }
    list.iter()
        .map(|path| path.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Timeouts and restart settings, when they differ from the defaults.
fn policy_lines(server: &ServerConfig, out: &mut dyn Write) -> io::Result<()> {
    let timeouts = server.timeouts();
    if *timeouts != Timeouts::default() {
        let text = format!(
            "{} per request, {} to start",
            duration(timeouts.request()),
            duration(timeouts.startup())
        );
        field(out, "timeouts", &text)?;
    }
    let restart = server.restart();
    if *restart != RestartConfig::default() {
        let text = format!(
            "{}, at most {} in a row, waiting {} growing to {}",
            restart.policy().name(),
            plural(
                usize::try_from(restart.max_restarts()).unwrap_or(usize::MAX),
                "time"
            ),
            duration(restart.initial_backoff()),
            duration(restart.max_backoff())
        );
        field(out, "restart", &text)?;
    }
    Ok(())
}

fn duration(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis % 1000 == 0 {
        format!("{}s", millis / 1000)
    } else {
        format!("{millis}ms")
    }
}

fn transport_lines(transport: &TransportConfig, out: &mut dyn Write) -> io::Result<()> {
    match transport {
        TransportConfig::Stdio(stdio) => {
            let line: Vec<String> = std::iter::once(stdio.command())
                .chain(stdio.shown_args().iter().map(String::as_str))
                .map(shell_quote)
                .collect();
            field(out, "command", &line.join(" "))?;
            if let Some(cwd) = stdio.cwd() {
                field(out, "cwd", &cwd.display().to_string())?;
            }
            names_field(out, "env", stdio.env().keys())
        }
        TransportConfig::StreamableHttp(http) | TransportConfig::Sse(http) => {
            field(out, "url", http.shown_url())?;
            names_field(out, "headers", http.headers().keys())
        }
        // Transports added later print their name only.
        _ => Ok(()),
    }
}

/// Lists the names of env variables or headers, never their values, which
/// are often secrets.
fn names_field<'a>(
    out: &mut dyn Write,
    label: &str,
    names: impl Iterator<Item = &'a String>,
) -> io::Result<()> {
    let names: Vec<&str> = names.map(String::as_str).collect();
    if names.is_empty() {
        return Ok(());
    }
    field(out, label, &format!("{} (values hidden)", names.join(", ")))
}

fn field(out: &mut dyn Write, label: &str, value: &str) -> io::Result<()> {
    writeln!(out, "  {:<13}{value}", format!("{label}:"))
}

fn join(items: &[impl ToString]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Quotes `word` for a POSIX shell when it needs it, so the printed command
/// line shows where each argument begins and ends.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_@%+=:,./-".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn problems(file: &Path, error: &Error, err: &mut dyn Write) -> io::Result<()> {
    let Some(config) = error.config() else {
        let reason = error
            .source()
            .map_or_else(|| error.to_string(), ToString::to_string);
        return writeln!(
            err,
            "error: {}: cannot read the file: {reason}",
            file.display()
        );
    };
    for problem in config.issues() {
        issue(file, "error", problem, err)?;
    }
    for warning in config.warnings() {
        issue(file, "warning", warning, err)?;
    }
    writeln!(
        err,
        "{}: invalid config: {}, {}",
        file.display(),
        plural(config.issues().len(), "error"),
        plural(config.warnings().len(), "warning")
    )
}

pub(crate) fn issue(
    file: &Path,
    severity: &str,
    issue: &ConfigIssue,
    out: &mut dyn Write,
) -> io::Result<()> {
    writeln!(out, "{severity}: {}", issue.display_in(Some(file)))?;
    if let Some(hint) = issue.hint() {
        writeln!(out, "  hint: {hint}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it() {
        assert_eq!(shell_quote("--stdio"), "--stdio");
        assert_eq!(shell_quote("/a/b.js"), "/a/b.js");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_millis(30_000)), "30s");
        assert_eq!(duration(Duration::from_millis(250)), "250ms");
        assert_eq!(duration(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn plural_forms() {
        assert_eq!(plural(1, "server"), "1 server");
        assert_eq!(plural(0, "warning"), "0 warnings");
    }
}
