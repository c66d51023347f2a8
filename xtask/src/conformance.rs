//! `cargo xtask conformance`: the official MCP conformance suite
//! (`@modelcontextprotocol/conformance`, installed by `cargo xtask peers`)
//! against mcp-manager, over Streamable HTTP on 127.0.0.1.
//!
//! Three servers are checked, each a process of the freshly built binary:
//!
//! | target | what runs |
//! | --- | --- |
//! | `builtin` | `mcp-manager builtin everything --http`: the reference server alone |
//! | `gateway-inprocess` | `mcp-manager serve` with the reference server in-process behind the gateway |
//! | `gateway-stdio` | `mcp-manager serve` with the reference server as a stdio child of the gateway |
//! | `gateway-http` | `mcp-manager serve` in front of the `builtin` server over Streamable HTTP |
//!
//! Behind the gateway the reference server is configured with `"protocol":
//! "auto"`, so the gateway keeps a session with it for 2025 clients and
//! passes 2026-07-28 requests on as they are. Against each target, the
//! active server scenarios of protocol versions 2025-11-25 and 2026-07-28
//! run, the frozen 2026-07-28 requirement set (`--requirements`: its
//! scored scenarios, and the Tasks extension and pending ones, which are
//! not scored), and the session-lifecycle scenario of 2025-03-26 and
//! 2025-06-18. Then the client scenarios run against the
//! example client built on the runtime (`examples/conformance_client.rs` of
//! mcp-manager): those of [`CLIENT_SCENARIOS`] and the `auth` suite (the
//! runtime's HTTP link signs in through `mcp_auth::tokens` whenever the
//! server asks). A failure fails the run unless
//! `tools/conformance/expected-failures.yml` lists it (with its reason in a
//! comment); a listed failure that passes fails the run too, so the file
//! only shrinks. Results are kept under `target/conformance/`.

use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{peers, shell};

/// The servers checked: name, what the config (if any) serves, and how
/// `mcp-manager` is started (`CONFIG` stands for the config file).
/// `BACKEND` stands for the URL of a fresh reference server over HTTP
/// ([`BACKEND_ARGS`]) started for the target.
const TARGETS: &[(&str, Option<&str>, &[&str])] = &[
    ("builtin", None, BACKEND_ARGS),
    (
        "gateway-inprocess",
        Some(
            r#"{"mcpServers": {"everything": {"type": "builtin", "server": "everything", "namespace": "", "protocol": "auto"}}}"#,
        ),
        &["serve", "--config", "CONFIG", "--http", "127.0.0.1:0"],
    ),
    (
        "gateway-stdio",
        Some(
            r#"{"mcpServers": {"everything": {"command": "BIN", "args": ["builtin", "everything", "--stdio"], "namespace": "", "protocol": "auto"}}}"#,
        ),
        &["serve", "--config", "CONFIG", "--http", "127.0.0.1:0"],
    ),
    (
        "gateway-http",
        Some(
            r#"{"mcpServers": {"everything": {"url": "BACKEND", "namespace": "", "protocol": "auto"}}}"#,
        ),
        &["serve", "--config", "CONFIG", "--http", "127.0.0.1:0"],
    ),
];

/// The reference server alone, over Streamable HTTP.
const BACKEND_ARGS: &[&str] = &["builtin", "everything", "--http", "127.0.0.1:0"];

/// The runs against each server: name and the suite's arguments.
const RUNS: &[(&str, &[&str])] = &[
    ("2025-11-25", &["--spec-version", "2025-11-25"]),
    ("2026-07-28", &["--spec-version", "2026-07-28"]),
    ("2026-07-28-requirements", &["--requirements", "2026-07-28"]),
    (
        "2025-06-18-lifecycle",
        &[
            "--spec-version",
            "2025-06-18",
            "--scenario",
            "server-session-lifecycle",
        ],
    ),
    (
        "2025-03-26-lifecycle",
        &[
            "--spec-version",
            "2025-03-26",
            "--scenario",
            "server-session-lifecycle",
        ],
    ),
];

/// The client scenarios that are not about authorization.
const CLIENT_SCENARIOS: &[&str] = &[
    "initialize",
    "tools_call",
    "elicitation-sep1034-client-defaults",
    "sse-retry",
    "request-metadata",
];

/// The baseline of known failures, relative to the workspace root.
const EXPECTED_FAILURES: &str = "tools/conformance/expected-failures.yml";

/// Runs the suite against every target; fails on any unexpected result.
pub(crate) fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("`cargo xtask conformance` takes no arguments, got {args:?}");
    }
    let root = shell::root();
    peers::run(&[])?;
    let node = peers::env_value(&root, "MCP_PEER_NODE")?;
    let suite = peers::env_value(&root, "MCP_PEER_CONFORMANCE")?;
    let bin = shell::build_manager(&["--example", "conformance_client"])?;
    let client = root
        .join("target")
        .join("debug")
        .join("examples")
        .join("conformance_client");
    let out = root.join("target").join("conformance");
    std::fs::create_dir_all(&out)?;
    let runner = Runner {
        node,
        script: suite,
        expected: root.join(EXPECTED_FAILURES),
        out: out.clone(),
    };

    let mut table = Vec::new();
    let mut failed = Vec::new();
    for (target, config, args) in TARGETS {
        let config_file = out.join(format!("{target}.json"));
        // A fresh reference server over HTTP, for a target in front of one.
        let mut backend = None;
        if config.is_some_and(|c| c.contains("BACKEND")) {
            let log = out.join(format!("{target}-backend.log"));
            let builtin: Vec<String> = BACKEND_ARGS.iter().map(|a| (*a).to_owned()).collect();
            backend = Some(
                Server::start(&bin, &builtin, &log)
                    .with_context(|| format!("starting the backend of `{target}`"))?,
            );
        }
        if let Some(config) = config {
            let backend_url = backend
                .as_ref()
                .map(|b| format!("http://{}/mcp", b.addr))
                .unwrap_or_default();
            let text = config
                .replace("BIN", &bin.to_string_lossy())
                .replace("BACKEND", &backend_url);
            std::fs::write(&config_file, text)?;
        }
        let args: Vec<String> = args
            .iter()
            .map(|a| {
                if *a == "CONFIG" {
                    config_file.to_string_lossy().into_owned()
                } else {
                    (*a).to_owned()
                }
            })
            .collect();
        let server = Server::start(&bin, &args, &out.join(format!("{target}.log")))
            .with_context(|| format!("starting the `{target}` server"))?;
        let url = format!("http://{}/mcp", server.addr);
        for (name, run_args) in RUNS {
            println!("\n==> conformance: {target}, {name} ({url})");
            let mut args: Vec<OsString> = vec!["server".into(), "--url".into(), url.clone().into()];
            args.extend(run_args.iter().map(OsString::from));
            let (total, ok, secs) = runner.run(&args, &out.join(target).join(name))?;
            if !ok {
                failed.push(format!("{target} {name}"));
            }
            table.push(((*target).to_owned(), (*name).to_owned(), total, ok, secs));
        }
        drop(server);
        drop(backend);
    }
    let client_runs = CLIENT_SCENARIOS
        .iter()
        .map(|scenario| ("--scenario", *scenario))
        .chain([("--suite", "auth")]);
    for (how, which) in client_runs {
        println!("\n==> conformance: client, {which}");
        let args: Vec<OsString> = vec![
            "client".into(),
            "--command".into(),
            client.clone().into(),
            how.into(),
            which.into(),
        ];
        let results = out.join("client").join(which.replace('/', "-"));
        let (total, ok, secs) = runner.run(&args, &results)?;
        if !ok {
            failed.push(format!("client {which}"));
        }
        table.push(("client".to_owned(), which.to_owned(), total, ok, secs));
    }
    println!("\nconformance ({EXPECTED_FAILURES} holds the expected failures):");
    for (target, name, total, ok, secs) in &table {
        let verdict = if *ok { "ok" } else { "FAILED" };
        println!("  {target:<18} {name:<36} {total:<32} {verdict:<6} {secs:>5.1}s");
    }
    if !failed.is_empty() {
        bail!(
            "conformance failed for: {} (see the output above; results in {})",
            failed.join(", "),
            out.display()
        );
    }
    Ok(())
}

/// How the suite is run: Node, its script, the baseline, and the folder
/// its results go under.
struct Runner {
    node: PathBuf,
    script: PathBuf,
    expected: PathBuf,
    out: PathBuf,
}

impl Runner {
    /// Runs the suite with `args` against the baseline, keeping the
    /// results in `results`, showing its output; its count of checks,
    /// whether it passed against the baseline, and how long it took.
    fn run(&self, args: &[OsString], results: &Path) -> Result<(String, bool, f64)> {
        let _ = std::fs::remove_dir_all(results);
        let mut cmd = Command::new(&self.node);
        cmd.arg(&self.script)
            .args(args)
            .arg("--expected-failures")
            .arg(&self.expected)
            .arg("-o")
            .arg(results)
            // It writes results relative to nothing of ours; keep its
            // working directory out of the tree.
            .current_dir(&self.out)
            .stdin(Stdio::null());
        run_suite(&mut cmd, &self.script)
    }
}

/// Runs one invocation of the suite, showing its output; its count of
/// checks, whether it passed against the baseline, and how long it took.
fn run_suite(cmd: &mut Command, suite: &Path) -> Result<(String, bool, f64)> {
    let started = Instant::now();
    let output = cmd
        .output()
        .with_context(|| format!("running {}", suite.display()))?;
    std::io::stdout().write_all(&output.stdout)?;
    std::io::stderr().write_all(&output.stderr)?;
    // A whole suite counts on stdout, a single client scenario on stderr.
    let text = [&output.stdout[..], &output.stderr[..]].concat();
    let total = tally(&String::from_utf8_lossy(&text));
    Ok((
        total,
        output.status.success(),
        started.elapsed().as_secs_f64(),
    ))
}

/// A server process, stopped with SIGTERM (so that it stops its children)
/// and killed if it does not stop within ten seconds, also on an early
/// return.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(bin: &Path, args: &[String], log: &Path) -> Result<Self> {
        let mut child = shell::command(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let mut log = std::fs::File::create(log)?;
        let (found, addr) = mpsc::channel();
        // Copy stderr to the log, and say where the server listens.
        std::thread::spawn(move || {
            let mut found = Some(found);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if let Some((_, rest)) = line.split_once("listening on http://") {
                    if let Some(sender) = found.take() {
                        let _ = sender.send(rest.trim_end_matches("/mcp").to_owned());
                    }
                }
            }
        });
        let mut server = Self {
            child,
            addr: String::new(),
        };
        server.addr = addr
            .recv_timeout(Duration::from_secs(30))
            .context("the server did not say where it listens within 30 s")?;
        Ok(server)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The suite's count of passed and failed checks, from its output: the
/// `Total: N passed, M failed` of a whole suite, or the `Passed: N/T, M
/// failed` of one scenario.
fn tally(output: &str) -> String {
    for line in output.lines().rev() {
        if let Some(total) = line.strip_prefix("Total: ") {
            return total.to_owned();
        }
        if let Some(rest) = line.strip_prefix("Passed: ") {
            let passed = rest.split('/').next().unwrap_or("?");
            let failed = rest
                .split(", ")
                .find_map(|part| part.strip_suffix(" failed"))
                .unwrap_or("?");
            return format!("{passed} passed, {failed} failed");
        }
    }
    "no count found".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_kinds_of_count() {
        assert_eq!(
            tally("x\n\nTotal: 72 passed, 1 failed\n\nBaseline check passed"),
            "72 passed, 1 failed"
        );
        assert_eq!(
            tally("Test Results:\nPassed: 3/3, 0 failed, 0 warnings\n"),
            "3 passed, 0 failed"
        );
        assert_eq!(tally("nothing"), "no count found");
    }
}
