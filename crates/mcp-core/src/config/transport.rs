//! Reading the transport of a server entry: `command`/`args`/`env`/`cwd`
//! for a local process, `url`/`headers` for a remote server, and `type`,
//! which may also name a plugin's server type.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;

use super::expand::expand;
use super::interpolate::Vars;
use super::path::JsonPath;
use super::plugin;
use super::reader::{Field, Object};
use super::report::Report;
use super::server::{FrameSocketConfig, HttpConfig, StdioConfig, TransportConfig};
use super::url::HttpUrl;
use crate::error::ConfigIssue;

/// The `type` (or `transportType`) values that name a transport of this
/// crate; any other non-empty value names a plugin's server type.
pub const BUILTIN_TRANSPORT_TYPES: &[&str] = &[
    "stdio",
    "http",
    "streamable-http",
    "streamableHttp",
    "sse",
    "frame-socket",
];

/// What an entry's `type` (or Cline's `transportType`) declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Declared<'a> {
    /// A built-in transport; `None` when no type is given, so that
    /// `command` or `url` decides.
    Builtin(Option<Builtin>),
    /// The server type of a plugin, as written.
    Plugin(&'a str),
}

/// A transport of this crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Builtin {
    Stdio,
    Http,
    Sse,
    FrameSocket,
}

const STDIO_ONLY: &[&str] = &["args", "env", "cwd"];
const REMOTE_ONLY: &[&str] = &["headers"];

/// Reads the transport of the entry `obj`, whose type is `declared`, or
/// reports why it cannot.
pub(crate) fn parse(
    obj: &Object<'_>,
    declared: Declared<'_>,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<TransportConfig> {
    match declared {
        Declared::Plugin(kind) => {
            plugin::parse(obj, kind, vars, report).map(TransportConfig::Plugin)
        }
        Declared::Builtin(builtin) => builtin_transport(obj, builtin, vars, report),
    }
}

fn builtin_transport(
    obj: &Object<'_>,
    declared: Option<Builtin>,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<TransportConfig> {
    let command = obj.get("command");
    let url = url_field(obj, report);
    let entry = obj.path().as_str();
    match (command, url, declared) {
        (Some(_), Some(_), _) => {
            report.error(
                ConfigIssue::new(entry, "has both `command` and `url`")
                    .with_hint("a server is either a local process (`command`) or a remote server (`url`); split it into two entries"),
            );
            None
        }
        (None, None, _) => {
            report.error(
                ConfigIssue::new(entry, "has neither `command` nor `url`").with_hint(
                    "a server needs either `command` (a local process) or `url` (a remote server)",
                ),
            );
            None
        }
        (Some(command), None, None | Some(Builtin::Stdio)) => {
            stdio(obj, &command, vars, report).map(TransportConfig::Stdio)
        }
        (
            None,
            Some(url),
            declared @ (None | Some(Builtin::Http | Builtin::Sse | Builtin::FrameSocket)),
        ) => remote(obj, &url, declared, vars, report),
        (Some(_), None, Some(Builtin::Http | Builtin::Sse | Builtin::FrameSocket)) => {
            report.error(
                ConfigIssue::new(
                    obj.path().key("type").as_str(),
                    "a remote transport needs `url`, but the server has `command`",
                )
                .with_hint("for a local process leave `type` out or write \"type\": \"stdio\""),
            );
            None
        }
        (None, Some(_), Some(Builtin::Stdio)) => {
            report.error(
                ConfigIssue::new(obj.path().key("type").as_str(), "\"stdio\" needs `command`, but the server has `url`")
                    .with_hint("for a remote server write \"type\": \"http\" (Streamable HTTP) or \"sse\", or leave `type` out"),
            );
            None
        }
    }
}

/// What the entry `obj` declares with `type`, or Cline's `transportType`
/// when `type` is absent; `None` when the value is invalid.
pub(crate) fn declared<'a>(obj: &Object<'a>, report: &mut Report) -> Option<Declared<'a>> {
    let Some(field) = obj.get("type").or_else(|| obj.get("transportType")) else {
        return Some(Declared::Builtin(None));
    };
    let name = field.string(report)?;
    let builtin = match name {
        "stdio" => Builtin::Stdio,
        "http" | "streamable-http" | "streamableHttp" => Builtin::Http,
        "sse" => Builtin::Sse,
        "frame-socket" => Builtin::FrameSocket,
        "" => {
            report.error(
                ConfigIssue::new(field.path.as_str(), "must not be empty").with_hint(
                    "use \"stdio\", \"http\" (Streamable HTTP), \"streamable-http\", \"sse\" or the server type of a plugin, or leave it out",
                ),
            );
            return None;
        }
        kind => return Some(Declared::Plugin(kind)),
    };
    Some(Declared::Builtin(Some(builtin)))
}

/// `url`, or Windsurf's `serverUrl` when there is no `url`.
fn url_field<'a>(obj: &Object<'a>, report: &mut Report) -> Option<Field<'a>> {
    match (obj.get("url"), obj.get("serverUrl")) {
        (Some(url), Some(other)) => {
            report.warn(ConfigIssue::new(
                other.path.as_str(),
                "ignored because `url` is also given",
            ));
            Some(url)
        }
        (url, other) => url.or(other),
    }
}

fn stdio(
    obj: &Object<'_>,
    command: &Field<'_>,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<StdioConfig> {
    let errors = report.error_count();
    let program = command
        .non_empty_string(report)
        .and_then(|raw| process_string(vars, &command.path, raw, report));
    let (args, shown_args) = obj
        .get("args")
        .map(|f| args(&f, vars, report))
        .unwrap_or_default();
    let env = obj
        .get("env")
        .map(|f| env(&f, vars, report))
        .unwrap_or_default();
    let cwd = obj.get("cwd").and_then(|field| {
        let raw = field.non_empty_string(report)?;
        process_string(vars, &field.path, raw, report).map(PathBuf::from)
    });
    warn_inapplicable(obj, REMOTE_ONLY, "remote servers (`url`)", report);
    if let Some(program) = &program {
        warn_spaces_in_command(program, &args, &command.path, report);
    }
    let command = program.filter(|_| report.error_count() == errors)?;
    Some(StdioConfig {
        command,
        args,
        shown_args,
        env,
        cwd,
    })
}

/// The arguments, expanded, and as they may be shown (see [`shown`]).
fn args(field: &Field<'_>, vars: &Vars<'_>, report: &mut Report) -> (Vec<String>, Vec<String>) {
    let items = field.strings(report).unwrap_or_default();
    items
        .into_iter()
        .filter_map(|(path, raw)| {
            let value = process_string(vars, &path, raw, report)?;
            let shown = shown(raw, &value);
            Some((value, shown))
        })
        .unzip()
}

/// A config string as it may be shown: as written when it took a value
/// from a `${...}` reference (which may be a secret), else as it is.
fn shown(raw: &str, expanded: &str) -> String {
    if raw.contains("${") {
        raw.to_owned()
    } else {
        expanded.to_owned()
    }
}

fn env(field: &Field<'_>, vars: &Vars<'_>, report: &mut Report) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (name, value) in string_members(field, report) {
        let Some(raw) = value.string(report) else {
            continue;
        };
        let path = value.path;
        let problem = if name.is_empty() {
            Some("the variable name is empty")
        } else if name.contains('=') || name.contains('\0') {
            Some("variable names cannot contain `=` or NUL")
        } else {
            None
        };
        if let Some(problem) = problem {
            report.error(ConfigIssue::new(path.as_str(), problem));
        } else if let Some(value) = process_string(vars, &path, raw, report) {
            env.insert(name.to_owned(), value);
        }
    }
    env
}

/// A remote server: over HTTP (Streamable, or legacy SSE when `declared`
/// says so), or on a frame socket when its `url` (once expanded) is
/// `unix:PATH`.
fn remote(
    obj: &Object<'_>,
    url: &Field<'_>,
    declared: Option<Builtin>,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<TransportConfig> {
    let errors = report.error_count();
    let raw = url.non_empty_string(report);
    let text = raw.and_then(|raw| expand(vars, &url.path, raw, report));
    let unix = text.as_deref().and_then(|text| {
        text.get(..5)
            .filter(|scheme| scheme.eq_ignore_ascii_case("unix:"))
            .map(|_| text.get(5..).unwrap_or_default())
    });
    match (unix, declared) {
        (Some(path), None | Some(Builtin::FrameSocket)) => {
            frame_socket(obj, url, path, report).map(TransportConfig::FrameSocket)
        }
        (None, Some(Builtin::FrameSocket)) => {
            report.error(
                ConfigIssue::new(
                    url.path.as_str(),
                    "a frame socket's `url` is `unix:` and its path",
                )
                .with_hint("write `unix:/path/to/socket`"),
            );
            None
        }
        (Some(_), Some(declared)) => {
            let name = if declared == Builtin::Sse {
                "sse"
            } else {
                "http"
            };
            report.error(
                ConfigIssue::new(
                    obj.path().key("type").as_str(),
                    format!("a `unix:` URL reaches a frame socket, not an `{name}` server"),
                )
                .with_hint("leave `type` out (or write \"frame-socket\"): the `unix:` scheme says what the server is"),
            );
            None
        }
        (None, _) => {
            let text = text.filter(|_| report.error_count() == errors)?;
            let shown_url = shown(raw.unwrap_or_default(), &text);
            let http = http(obj, url, (&text, shown_url), vars, report)?;
            Some(match declared {
                Some(Builtin::Sse) => TransportConfig::Sse(http),
                _ => TransportConfig::StreamableHttp(http),
            })
        }
    }
}

/// A frame socket at `rest`, the `url` after `unix:`: an absolute path,
/// also written `unix:///path`.
fn frame_socket(
    obj: &Object<'_>,
    url: &Field<'_>,
    rest: &str,
    report: &mut Report,
) -> Option<FrameSocketConfig> {
    let rest = rest
        .strip_prefix("//")
        .filter(|r| r.starts_with('/'))
        .unwrap_or(rest);
    let path = PathBuf::from(rest);
    if !path.is_absolute() {
        report.error(
            ConfigIssue::new(url.path.as_str(), "a frame socket's path must be absolute")
                .with_hint("write `unix:/path/to/socket`"),
        );
        return None;
    }
    warn_inapplicable(obj, STDIO_ONLY, "local servers (`command`)", report);
    warn_inapplicable(obj, REMOTE_ONLY, "HTTP servers", report);
    Some(FrameSocketConfig { path })
}

/// An HTTP server at `text`, the expanded `url` (`shown_url` as it may
/// be shown).
fn http(
    obj: &Object<'_>,
    url: &Field<'_>,
    (text, shown_url): (&str, String),
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<HttpConfig> {
    let errors = report.error_count();
    let url = match HttpUrl::parse(text) {
        Ok(parsed) => Some(parsed),
        Err(problem) => {
            report.error(ConfigIssue::new(url.path.as_str(), problem));
            None
        }
    };
    let headers = obj
        .get("headers")
        .map(|f| headers(&f, vars, report))
        .unwrap_or_default();
    warn_inapplicable(obj, STDIO_ONLY, "local servers (`command`)", report);
    let url = url.filter(|_| report.error_count() == errors)?;
    Some(HttpConfig {
        url,
        shown_url,
        headers,
    })
}

fn headers(field: &Field<'_>, vars: &Vars<'_>, report: &mut Report) -> BTreeMap<String, String> {
    let mut headers = BTreeMap::new();
    let mut lowercase_names = HashSet::new();
    for (name, value) in string_members(field, report) {
        let Some(raw) = value.string(report) else {
            continue;
        };
        let path = value.path;
        let lower = name.to_ascii_lowercase();
        if !is_header_name(name) {
            report.error(
                ConfigIssue::new(
                    path.as_str(),
                    format!("`{name}` is not a valid HTTP header name"),
                )
                .with_hint("header names use letters, digits and `-`, e.g. `Authorization`"),
            );
        } else if lowercase_names.contains(&lower) {
            report.error(
                ConfigIssue::new(path.as_str(), format!("header `{name}` is given twice"))
                    .with_hint("HTTP header names ignore case; keep one of them"),
            );
        } else if let Some(value) = expand(vars, &path, raw, report) {
            if value.contains(['\r', '\n', '\0']) {
                report.error(ConfigIssue::new(
                    path.as_str(),
                    "header values cannot contain line breaks or NUL",
                ));
            }
            headers.insert(name.to_owned(), value);
        }
        lowercase_names.insert(lower);
    }
    headers
}

/// The members of the object `field` (reporting it if it is no object).
fn string_members<'a>(field: &Field<'a>, report: &mut Report) -> Vec<(&'a str, Field<'a>)> {
    field
        .object(report)
        .map(|object| object.members().collect())
        .unwrap_or_default()
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c))
}

/// A string handed to the operating system when launching a process: after
/// expansion it must not contain NUL.
fn process_string(
    vars: &Vars<'_>,
    path: &JsonPath,
    raw: &str,
    report: &mut Report,
) -> Option<String> {
    let value = expand(vars, path, raw, report)?;
    if value.contains('\0') {
        report.error(ConfigIssue::new(
            path.as_str(),
            "contains a NUL character, which a process cannot receive",
        ));
        return None;
    }
    Some(value)
}

fn warn_inapplicable(obj: &Object<'_>, keys: &[&str], applies_to: &str, report: &mut Report) {
    for key in keys {
        if let Some(field) = obj.get(key) {
            report.warn(ConfigIssue::new(
                field.path.as_str(),
                format!("`{key}` only applies to {applies_to}; ignored"),
            ));
        }
    }
}

/// `"command": "npx -y pkg"` runs a program named `npx -y pkg`; say so.
fn warn_spaces_in_command(command: &str, args: &[String], path: &JsonPath, report: &mut Report) {
    let looks_like_path = command.contains(['/', '\\']);
    if !args.is_empty() || looks_like_path || !command.trim().contains(' ') {
        return;
    }
    let mut words = command.split_whitespace();
    let program = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    let rest = serde_json::to_string(&rest).unwrap_or_default();
    report.warn(
        ConfigIssue::new(
            path.as_str(),
            "contains spaces; the whole text is run as one program name",
        )
        .with_hint(format!(
            "put the arguments in `args`: \"command\": \"{program}\", \"args\": {rest}"
        )),
    );
}
