//! `mcp-manager status`: the servers of a running gateway as a table, read
//! from its admin API (`serve --admin`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use crate::cli::launch::UNAVAILABLE;

/// Arguments of `status`.
#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// The gateway's admin address (`serve --admin ADDR`).
    #[arg(long, value_name = "ADDR", default_value = crate::cli::admin::DEFAULT_ADDR)]
    admin: SocketAddr,
    /// The admin API's bearer token (default: the environment variable
    /// `MCP_MANAGER_ADMIN_TOKEN`).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Print the admin API's JSON as it came.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let token = args.token.clone().or_else(|| {
        std::env::var("MCP_MANAGER_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
    });
    let body = match get(args.admin, "/api/servers", token.as_deref()) {
        Ok(body) => body,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.to_string().starts_with("connecting") {
                eprintln!(
                    "(is a gateway running with `mcp-manager serve --admin {}`?)",
                    args.admin
                );
            }
            return Ok(ExitCode::from(UNAVAILABLE));
        }
    };
    if args.json {
        println!("{body}");
        return Ok(ExitCode::SUCCESS);
    }
    let value: Value = serde_json::from_str(&body).context("reading the admin API's answer")?;
    let servers = value
        .get("servers")
        .and_then(Value::as_array)
        .context("the admin API's answer has no `servers`")?;
    print!("{}", table(servers));
    Ok(ExitCode::SUCCESS)
}

/// One GET over HTTP/1.0 on loopback: the body of a 200 answer.
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> anyhow::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = token.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .context("reading the answer")?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .context("the answer is not HTTP")?;
    let status = head.split(' ').nth(1).unwrap_or_default();
    if status != "200" {
        let reason = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| body.to_owned());
        bail!("the admin API answered {status}: {reason}");
    }
    Ok(body.to_owned())
}

/// The servers as an aligned table.
fn table(servers: &[Value]) -> String {
    let header = [
        "NAME",
        "STATE",
        "HEALTH",
        "INSTANCES",
        "IN FLIGHT",
        "BREAKER",
        "REQUESTS",
        "ERRORS",
        "RESTARTS",
        "LAST ERROR",
    ];
    let text = |v: &Value, key: &str| match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Array(a)) => a.len().to_string(),
        _ => "-".to_owned(),
    };
    let mut rows = vec![header.map(str::to_owned).to_vec()];
    for server in servers {
        // Why a server did not start, else its latest error.
        let last_error = server
            .get("error")
            .and_then(Value::as_str)
            .or_else(|| {
                server
                    .get("recentErrors")
                    .and_then(Value::as_array)
                    .and_then(|e| e.last())
                    .and_then(|e| e.get("message"))
                    .and_then(Value::as_str)
            })
            .map_or_else(|| "-".to_owned(), |m| m.chars().take(60).collect());
        rows.push(vec![
            text(server, "name"),
            text(server, "state"),
            text(server, "health"),
            text(server, "instances"),
            text(server, "inFlight"),
            text(server, "breaker"),
            text(server, "requests"),
            text(server, "errors"),
            text(server, "restarts"),
            last_error,
        ]);
    }
    crate::cli::table::aligned(&rows)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_table_with_one_row_per_server() {
        let servers: Value = serde_json::json!([
            {"name": "github", "state": "running", "health": "healthy", "instances": [{}],
             "inFlight": 2, "breaker": "closed", "requests": 10, "errors": 1, "restarts": 0,
             "recentErrors": [{"atMs": 1, "message": "tools/call: no answer within 100 ms"}]},
            {"name": "fs", "state": "failed", "health": "down", "instances": [{}, {}],
             "inFlight": 0, "breaker": null, "requests": 0, "errors": 0, "restarts": 5,
             "recentErrors": []}
        ]);
        let table = table(servers.as_array().unwrap());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("NAME    STATE    HEALTH"), "{table}");
        assert!(
            lines[1].contains("tools/call: no answer within 100 ms"),
            "{table}"
        );
        assert!(
            lines[2].starts_with("fs      failed   down     2"),
            "{table}"
        );
        assert!(lines[2].contains("-"), "{table}");
    }
}
