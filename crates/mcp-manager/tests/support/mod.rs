//! Helpers for the gateway tests against real MCP peers: where the peers are,
//! a config with three backends, process guards that kill whole process
//! trees, and a small blocking Streamable HTTP client on `std::net`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    dead_code
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

pub(crate) mod http_sink;

/// The environment variable that tags every process a test starts.
pub(crate) const MARKER_VAR: &str = "MCP_GWTEST_MARKER";

/// The user data directory of the gateways tests start (where their tool
/// pins go unless a config says), under the build's own folder: tests
/// leave the home directory alone.
pub(crate) const TEST_DATA_HOME: &str = concat!(env!("CARGO_TARGET_TMPDIR"), "/data");

pub(crate) fn peer(key: &str) -> String {
    let path = format!("{}/../../.tools/peers.env", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!("cannot read {path} ({e}): run `cargo xtask peers` to install the test peers")
    });
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_owned())
        .unwrap_or_else(|| panic!("{path} has no {key}: run `cargo xtask peers` again"))
}

/// A marker unique to this process and call.
pub(crate) fn unique_marker(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "gwtest-{name}-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A config file with three backends: server-everything (`ev`) and the
/// FastMCP peer (`py`) over stdio, and the built-in server (`rs`). Every
/// child gets the marker in its environment, and FastMCP on its command line.
pub(crate) fn write_config(dir: &std::path::Path, marker: &str) -> std::path::PathBuf {
    let config = json!({
        "mcpServers": {
            "everything": {
                "command": peer("MCP_PEER_NODE"),
                "args": [peer("MCP_PEER_EVERYTHING"), "stdio"],
                "namespace": "ev",
                "env": {MARKER_VAR: marker}
            },
            "fastmcp": {
                "command": peer("MCP_PEER_PYTHON"),
                "args": [peer("MCP_PEER_FASTMCP"), format!("--marker={marker}")],
                "namespace": "py",
                "env": {MARKER_VAR: marker}
            },
            "builtin": {"type": "builtin", "server": "everything", "namespace": "rs"}
        }
    });
    let path = dir.join("mcpServers.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path
}

fn stat_fields(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces, so read after `)`.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .collect()
}

/// Whether `pid` runs (exists and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    stat_fields(pid).is_some_and(|(state, _)| state != 'Z')
}

pub(crate) fn parent_of(pid: u32) -> Option<u32> {
    stat_fields(pid).map(|(_, ppid)| ppid)
}

/// `root` and every process below it.
pub(crate) fn tree_of(root: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = all_pids()
        .into_iter()
        .filter_map(|pid| parent_of(pid).map(|ppid| (pid, ppid)))
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, ppid)| *ppid == parent)
                .map(|(pid, _)| *pid),
        );
        i += 1;
    }
    tree
}

fn has_marker(pid: u32, marker: &str) -> bool {
    let needle = |file: &str, text: &[u8]| {
        std::fs::read(format!("/proc/{pid}/{file}"))
            .is_ok_and(|data| data.split(|b| *b == 0).any(|part| part == text))
    };
    let env = format!("{MARKER_VAR}={marker}");
    let arg = format!("--marker={marker}");
    needle("environ", env.as_bytes()) || needle("cmdline", arg.as_bytes())
}

/// The running processes tagged with `marker` (environment or `--marker=`).
pub(crate) fn marked(marker: &str) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|pid| *pid != std::process::id() && alive(*pid) && has_marker(*pid, marker))
        .collect()
}

/// The running processes whose command line holds `--marker=MARKER`.
pub(crate) fn marked_by_arg(marker: &str) -> Vec<u32> {
    let arg = format!("--marker={marker}");
    all_pids()
        .into_iter()
        .filter(|pid| {
            alive(*pid)
                && std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|data| data.split(|b| *b == 0).any(|p| p == arg.as_bytes()))
        })
        .collect()
}

pub(crate) fn kill9(pid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Waits until no process carries `marker`, or panics with the ones left.
pub(crate) fn assert_none_marked(marker: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = marked(marker);
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "processes with marker {marker} left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A started process; on drop, it and everything below it is killed, and so
/// is every process tagged with the marker.
pub(crate) struct Guard {
    pub(crate) child: Child,
    pub(crate) marker: String,
}

impl Guard {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let tree = tree_of(self.child.id());
        // Stop the root first so that it restarts nothing, then the rest.
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in tree.iter().skip(1) {
            kill9(*pid);
        }
        for pid in marked(&self.marker) {
            kill9(pid);
        }
    }
}

/// `mcp-manager serve --http 127.0.0.1:PORT --config FILE`, started and
/// awaited until it prints its `listening` line.
pub(crate) struct HttpGateway {
    pub(crate) guard: Guard,
    pub(crate) addr: String,
    pub(crate) log: mpsc::Receiver<String>,
}

/// `mcp-manager ARGS`, tagged with `marker`, without the auth token of
/// the environment; the lines it writes to stderr come on the receiver.
pub(crate) fn spawn_manager(args: &[&str], marker: &str) -> (Guard, mpsc::Receiver<String>) {
    spawn_manager_with(args, marker, &[])
}

/// [`spawn_manager`] with `env` set for it.
pub(crate) fn spawn_manager_with(
    args: &[&str],
    marker: &str,
    env: &[(&str, &str)],
) -> (Guard, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-manager"))
        .args(args)
        .env("XDG_DATA_HOME", TEST_DATA_HOME)
        .envs(env.iter().copied())
        .env_remove("MCP_MANAGER_AUTH_TOKEN")
        .env(MARKER_VAR, marker)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let guard = Guard {
        child,
        marker: marker.to_owned(),
    };
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    (guard, lines)
}

/// Waits (90 s at most) for the `mcp-manager: listening on URL` line
/// among `lines` (not an error that names the address it could not
/// listen on); the URL, and the lines that come after.
pub(crate) fn wait_for_listening(
    lines: mpsc::Receiver<String>,
) -> (String, mpsc::Receiver<String>) {
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                if let Some(url) = line.strip_prefix("mcp-manager: listening on ") {
                    return (url.to_owned(), lines);
                }
                log.push(line);
            }
            Err(_) => panic!("no `listening on` line:\n{}", log.join("\n")),
        }
    }
}

/// A free loopback address, `127.0.0.1:PORT`.
///
/// The system may give a port it gave a moment ago again once it is free,
/// and a process given one binds it only later: two tests running side by
/// side (each in a process of its own) could be given the same port, and
/// one would talk to the other's gateway. So each port given is claimed
/// with a file under the target's temporary folder, and not given again
/// to any test for ten minutes.
pub(crate) fn free_addr() -> String {
    const CLAIMED_FOR: Duration = Duration::from_secs(600);
    let claims = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("ports");
    std::fs::create_dir_all(&claims).unwrap();
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let claim = claims.join(port.to_string());
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&claim)
        {
            Ok(_) => return format!("127.0.0.1:{port}"),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let age = std::fs::metadata(&claim)
                    .and_then(|meta| meta.modified())
                    .ok()
                    .and_then(|at| at.elapsed().ok());
                if age.is_some_and(|age| age > CLAIMED_FOR) {
                    let _ = std::fs::remove_file(&claim);
                }
            }
            Err(error) => panic!("claiming port {port}: {error}"),
        }
    }
}

impl HttpGateway {
    pub(crate) fn start(config: &std::path::Path, marker: &str) -> Self {
        Self::start_with(config, marker, &[])
    }

    /// Started on `config`, written as `mcpServers.json` into `dir`.
    pub(crate) fn over(config: &Value, dir: &std::path::Path, marker: &str) -> Self {
        let path = dir.join("mcpServers.json");
        std::fs::write(&path, config.to_string()).unwrap();
        Self::start(&path, marker)
    }

    /// Started with `extra` arguments after `serve --http ADDR --config FILE`.
    pub(crate) fn start_with(config: &std::path::Path, marker: &str, extra: &[&str]) -> Self {
        Self::start_at(config, marker, free_addr(), extra)
    }

    /// Started on `config` at `addr`, with `extra` arguments after
    /// `serve --http ADDR --config FILE`.
    pub(crate) fn start_at(
        config: &std::path::Path,
        marker: &str,
        addr: String,
        extra: &[&str],
    ) -> Self {
        let config = config.to_str().expect("a UTF-8 path");
        let args = [&["serve", "--http", &addr, "--config", config][..], extra].concat();
        let (guard, lines) = spawn_manager(&args, marker);
        let (_, lines) = wait_for_listening(lines);
        Self {
            guard,
            addr,
            log: lines,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// What the gateway wrote on stderr since it started listening.
    pub(crate) fn drain_log(&self) -> String {
        self.log.try_iter().collect::<Vec<_>>().join("\n")
    }
}

/// One HTTP response.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The JSON-RPC messages of the body, plain JSON or an SSE stream.
    pub(crate) fn messages(&self) -> Vec<Value> {
        let sse = self
            .header("content-type")
            .is_some_and(|t| t.starts_with("text/event-stream"));
        if !sse {
            if self.body.trim().is_empty() {
                return Vec::new();
            }
            return vec![serde_json::from_str(&self.body).unwrap_or_else(|e| {
                panic!("{e}: not JSON: {self:?}");
            })];
        }
        let mut out = Vec::new();
        for event in self.body.replace("\r\n", "\n").split("\n\n") {
            let data: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(|d| d.strip_prefix(' ').unwrap_or(d))
                .collect();
            if data.is_empty() || data.iter().all(|d| d.is_empty()) {
                continue;
            }
            let joined = data.join("\n");
            out.push(
                serde_json::from_str(&joined)
                    .unwrap_or_else(|e| panic!("{e}: bad SSE data {joined:?}")),
            );
        }
        out
    }
}

fn decode_chunked(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = raw.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&raw[..end]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).unwrap_or(0);
        raw = &raw[end + 2..];
        if size == 0 || raw.len() < size {
            out.extend_from_slice(&raw[..size.min(raw.len())]);
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
}

/// POSTs `body` to `/mcp` on `addr`, reads the whole response.
pub(crate) fn post(addr: &str, session: Option<&str>, body: &Value) -> std::io::Result<Response> {
    post_with(addr, session, body, &[])
}

/// [`post`] with `extra` headers besides those that mirror the body.
pub(crate) fn post_with(
    addr: &str,
    session: Option<&str>,
    body: &Value,
    extra: &[(&str, &str)],
) -> std::io::Result<Response> {
    let payload = serde_json::to_vec(body).unwrap();
    // The headers that mirror the body, as a client of the body's
    // protocol version sends them.
    let version = body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"]
        .as_str()
        .unwrap_or("2025-11-25");
    let method = body["method"].as_str().unwrap_or_default();
    let name = match method {
        "tools/call" | "prompts/get" => body["params"]["name"].as_str(),
        "resources/read" => body["params"]["uri"].as_str(),
        "tasks/get" | "tasks/update" | "tasks/cancel" => body["params"]["taskId"].as_str(),
        _ => None,
    };
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", version),
    ];
    if !method.is_empty() {
        headers.push(("Mcp-Method", method));
    }
    if let Some(name) = name {
        headers.push(("Mcp-Name", name));
    }
    if let Some(id) = session {
        headers.push(("Mcp-Session-Id", id));
    }
    headers.extend_from_slice(extra);
    exchange(addr, "POST", "/mcp", &headers, &payload)
}

/// Sends one HTTP/1.1 request (`Connection: close`) and reads the whole
/// response.
pub(crate) fn exchange(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    payload: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    stream.set_write_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        payload.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(payload)?;
    stream.flush()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if chunked {
        decode_chunked(rest)
    } else {
        rest.to_vec()
    };
    Ok(Response {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// One Streamable HTTP session: initialized, with its own request ids.
pub(crate) struct Session {
    pub(crate) addr: String,
    pub(crate) id: String,
}

impl Session {
    pub(crate) fn open(addr: &str, name: &str) -> Self {
        let init = json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": name, "version": "1"}
            }
        });
        let response = post(addr, None, &init).unwrap();
        assert_eq!(response.status, 200, "initialize: {response:?}");
        let id = response
            .header("mcp-session-id")
            .unwrap_or_else(|| panic!("no Mcp-Session-Id: {response:?}"))
            .to_owned();
        let messages = response.messages();
        assert!(
            messages
                .iter()
                .any(|m| m["id"] == 0 && m["result"].is_object()),
            "initialize result: {messages:?}"
        );
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        let response = post(addr, Some(&id), &initialized).unwrap();
        assert_eq!(response.status, 202, "initialized: {response:?}");
        Self {
            addr: addr.to_owned(),
            id,
        }
    }

    /// Sends request `id` and returns the JSON-RPC response with that id.
    pub(crate) fn request(&self, id: u64, method: &str, params: Value) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let response = post(&self.addr, Some(&self.id), &body).map_err(|e| e.to_string())?;
        if response.status != 200 {
            return Err(format!("HTTP {}: {}", response.status, response.body));
        }
        let messages = response.messages();
        messages
            .iter()
            .find(|m| m.get("id") == Some(&json!(id)) && m.get("method").is_none())
            .cloned()
            .ok_or_else(|| format!("no response with id {id} in {messages:?}"))
    }

    /// Calls `tool`; the text of its first content item, or why it failed.
    pub(crate) fn call_text(
        &self,
        id: u64,
        tool: &str,
        arguments: Value,
    ) -> Result<String, String> {
        let response = self.request(
            id,
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        )?;
        if let Some(error) = response.get("error") {
            return Err(format!("error: {error}"));
        }
        let result = &response["result"];
        if result["isError"] == true {
            return Err(format!("isError: {result}"));
        }
        result["content"][0]["text"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("no text in {response}"))
    }
}

/// A session's standalone event stream (`GET /mcp`), open (its head read)
/// when this returns, then read on a thread: the `data:` lines as they
/// come.
pub(crate) fn event_stream(addr: &str, session: &str) -> mpsc::Receiver<String> {
    use std::io::{BufRead, BufReader, Write};
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /mcp HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n\
         Mcp-Session-Id: {session}\r\nMCP-Protocol-Version: 2025-11-25\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "GET /mcp: {status}");
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 && line.trim_end() != "" {
        line.clear();
    }
    let (lines, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in reader.lines().map_while(Result::ok) {
            if let Some(data) = line.strip_prefix("data: ") {
                if lines.send(data.to_owned()).is_err() {
                    return;
                }
            }
        }
    });
    receiver
}

/// Runs a Python client script of `tests/clients/` with the peers' Python
/// and returns the JSON report it prints and its stderr; fails the test when
/// the client fails.
pub(crate) fn run_python_client(script: &str, args: &[&str]) -> (Value, String) {
    run_client_script(Command::new(peer("MCP_PEER_PYTHON")), script, args)
}

/// Runs a TypeScript SDK client script of `tests/clients/` with the peers'
/// Node.js, as [`run_python_client`] does.
pub(crate) fn run_node_client(script: &str, args: &[&str]) -> (Value, String) {
    let mut node = Command::new(peer("MCP_PEER_NODE"));
    node.env("MCP_PEER_NODE_MODULES", peer("MCP_PEER_NODE_MODULES"));
    run_client_script(node, script, args)
}

fn run_client_script(mut program: Command, script: &str, args: &[&str]) -> (Value, String) {
    let script = format!("{}/tests/clients/{script}", env!("CARGO_MANIFEST_DIR"));
    let out = program
        .env("XDG_DATA_HOME", TEST_DATA_HOME)
        .arg(&script)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "client failed:\n{stderr}");
    let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    (report, stderr)
}
