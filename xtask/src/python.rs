//! `cargo xtask python`: builds the `mcp_manager` wheel with maturin,
//! installs it into the peers' venv (`.tools/venv`, made by
//! `cargo xtask peers`), checks its stubs and types (`mypy.stubtest`, mypy
//! in strict mode for Python 3.10, the oldest it knows), and runs its pytest suite against real
//! servers (`server-everything`, the FastMCP peer, the built-in servers,
//! and a `mcp-manager serve` gateway for the connected mode).
//!
//! `cargo xtask bench python` builds the wheel optimised and runs
//! `crates/mcp-python/bench/calls.py`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{peers, shell};

/// Parses every `.py` and `.pyi` file under `argv[1]` with Python 3.9's
/// grammar.
const PARSES_AS_3_9: &str = "import ast, pathlib, sys\n\
    root = pathlib.Path(sys.argv[1])\n\
    files = [*root.rglob('*.py'), *root.rglob('*.pyi')]\n\
    for p in files: ast.parse(p.read_text(), str(p), feature_version=(3, 9))\n\
    print(f'{len(files)} files parse as Python 3.9')";

/// Runs the examples of every module's docstrings; fails on a failed one,
/// and when there are none to run.
const DOCTESTS: &str = "import doctest, importlib, sys\n\
    names = ['mcp_manager', 'mcp_manager._manager', 'mcp_manager._errors', \
    'mcp_manager._admin', 'mcp_manager._compat']\n\
    results = [doctest.testmod(importlib.import_module(n)) for n in names]\n\
    failed = sum(r.failed for r in results); attempted = sum(r.attempted for r in results)\n\
    print(f'doctests: {attempted} examples, {failed} failed')\n\
    sys.exit(1 if failed or not attempted else 0)";

/// Fails unless `README.md` holds the text of `quickstart` as one of its
/// `python` code blocks, byte for byte.
fn check_quickstart_in_readme(root: &Path, quickstart: &Path) -> Result<()> {
    let readme = std::fs::read_to_string(root.join("README.md")).context("reading README.md")?;
    let example = std::fs::read_to_string(quickstart)
        .with_context(|| format!("reading {}", quickstart.display()))?;
    if !readme.contains(&format!("```python\n{example}```\n")) {
        bail!(
            "README.md does not show {} as written: copy the file into its Python quick start",
            quickstart.display()
        );
    }
    println!("README.md shows {} as written", quickstart.display());
    Ok(())
}

/// Where the package's sources are, under the workspace root.
const CRATE: &str = "crates/mcp-python";

/// Builds the wheel (`release`: optimised) into `target/wheels/` and
/// installs it into the venv; the venv's Python.
fn build_and_install(root: &Path, release: bool) -> Result<PathBuf> {
    peers::run(&[])?;
    let python = peers::env_value(root, "MCP_PEER_PYTHON")?;
    let out = root.join("target").join("wheels");
    if out.exists() {
        std::fs::remove_dir_all(&out).with_context(|| format!("emptying {}", out.display()))?;
    }
    let mut build = shell::command(&python);
    build
        .args(["-m", "maturin", "build", "--locked", "--manifest-path"])
        .arg(root.join(CRATE).join("Cargo.toml"))
        .arg("--out")
        .arg(&out);
    if release {
        build.arg("--release");
    }
    shell::run(&mut build)?;
    let wheels: Vec<PathBuf> = std::fs::read_dir(&out)?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|e| e == "whl"))
        .collect();
    let [wheel] = wheels.as_slice() else {
        bail!("expected one wheel in {}, found {wheels:?}", out.display());
    };
    shell::run(
        shell::command(&python)
            .args(["-m", "pip", "install", "--force-reinstall", "--no-deps"])
            .args([
                "--disable-pip-version-check",
                "--no-input",
                "--require-virtualenv",
            ])
            .arg(wheel),
    )?;
    Ok(python)
}

/// Sets the peers' locations (from `.tools/peers.env`) on `cmd`.
fn peer_env(root: &Path, cmd: &mut std::process::Command) -> Result<()> {
    for key in [
        "MCP_PEER_NODE",
        "MCP_PEER_EVERYTHING",
        "MCP_PEER_PYTHON",
        "MCP_PEER_FASTMCP",
    ] {
        cmd.env(key, peers::env_value(root, key)?);
    }
    Ok(())
}

pub(crate) fn run(args: &[String]) -> Result<()> {
    if !args.is_empty() {
        bail!("`cargo xtask python` takes no arguments, got {args:?}");
    }
    let root = shell::root();
    let python = build_and_install(&root, false)?;
    let package = root.join(CRATE).join("python");
    // The package claims Python 3.9: its grammar must be 3.9's (mypy
    // checks no older than 3.10).
    shell::run(
        shell::command(&python)
            .args(["-c", PARSES_AS_3_9])
            .arg(package.join("mcp_manager")),
    )?;
    // The stubs of the native module against the module itself, then the
    // whole package's types as a Python 3.9 user's mypy would see them.
    shell::run(
        shell::command(&python)
            .args(["-m", "mypy.stubtest", "mcp_manager", "--mypy-config-file"])
            .arg(root.join(CRATE).join("mypy.ini")),
    )?;
    shell::run(
        shell::command(&python)
            .args(["-m", "mypy", "--config-file"])
            .arg(root.join(CRATE).join("mypy.ini"))
            .arg(package.join("mcp_manager"))
            .arg(root.join(CRATE).join("tests")),
    )?;
    // The README's quick start, exactly as written there: typed strictly,
    // and run from the repository's root as a newcomer would.
    let quickstart = root.join(CRATE).join("examples").join("quickstart.py");
    check_quickstart_in_readme(&root, &quickstart)?;
    shell::run(
        shell::command(&python)
            .args(["-m", "mypy", "--strict", "--no-incremental"])
            .arg(&quickstart),
    )?;
    shell::run(shell::command(&python).arg(&quickstart).current_dir(&root))?;
    // The examples in the package's docstrings.
    shell::run(shell::command(&python).args(["-c", DOCTESTS]))?;
    // The gateway the connected-mode tests start.
    let bin = shell::build_manager(&[])?;
    let mut pytest = shell::command(&python);
    pytest
        .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
        .arg(root.join(CRATE).join("tests"))
        .env("MCP_MANAGER_BIN", bin)
        // The tests import the installed wheel, never the source folder.
        .env_remove("PYTHONPATH");
    peer_env(&root, &mut pytest)?;
    shell::run(&mut pytest)
}

/// `cargo xtask bench python`.
pub(crate) fn bench() -> Result<()> {
    let root = shell::root();
    let python = build_and_install(&root, true)?;
    // The connected targets need a gateway, built optimised too.
    shell::run(&mut shell::cargo([
        "build",
        "--release",
        "--locked",
        "-p",
        "mcp-manager",
    ]))?;
    let mut cmd = shell::command(&python);
    cmd.arg(root.join(CRATE).join("bench").join("calls.py"));
    cmd.env("MCP_MANAGER_BIN", root.join("target/release/mcp-manager"));
    peer_env(&root, &mut cmd)?;
    shell::run(&mut cmd)
}
