//! Spawning cargo and other programs from the workspace root.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// The cargo that runs us (`cargo run` sets `CARGO`), or `cargo` from `PATH`.
pub(crate) fn cargo_program() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

/// A `cargo` command with the workspace root as working directory.
pub(crate) fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = command(cargo_program());
    cmd.args(args);
    cmd
}

/// Builds the `mcp-manager` binary in the dev profile, with whatever more
/// `extra` cargo arguments name (`--example X`); the binary's path.
pub(crate) fn build_manager(extra: &[&str]) -> Result<PathBuf> {
    let base = [
        "build",
        "-p",
        "mcp-manager",
        "--bin",
        "mcp-manager",
        "--locked",
    ];
    run(&mut cargo(base.iter().chain(extra)))?;
    Ok(root().join("target").join("debug").join("mcp-manager"))
}

/// A command for `program` with the workspace root as working directory.
///
/// Colour: an explicit `CARGO_TERM_COLOR` from the caller wins. Otherwise the
/// children share our stderr, so they get colour exactly when it is a
/// terminal; saying so explicitly keeps cargo, rustc, rustdoc and nextest in
/// agreement. `CI` and everything else in the environment pass through as is.
pub(crate) fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(root());
    if std::env::var_os("CARGO_TERM_COLOR").is_none() {
        let color = if std::io::stderr().is_terminal() {
            "always"
        } else {
            "never"
        };
        cmd.env("CARGO_TERM_COLOR", color);
    }
    // Compiled wasm plugins are cached inside target/, not in the user's
    // cache folder: tests and benchmarks stay within the workspace.
    if std::env::var_os("MCP_MANAGER_WASM_CACHE").is_none() {
        cmd.env(
            "MCP_MANAGER_WASM_CACHE",
            root().join("target").join("wasm-cache"),
        );
    }
    // The gateways that tests, the conformance run and the Python checks
    // start keep their tool pins (and look for plugins) in a data folder
    // inside target/, never in the user's own.
    cmd.env("XDG_DATA_HOME", root().join("target").join("test-data"));
    // A CI run builds once from scratch: incremental data would only fill
    // its disk (it is a third of a test build's target/).
    if on_ci() && std::env::var_os("CARGO_INCREMENTAL").is_none() {
        cmd.env("CARGO_INCREMENTAL", "0");
    }
    cmd
}

/// Runs `cmd` with inherited stdio and fails unless it exits successfully.
pub(crate) fn run(cmd: &mut Command) -> Result<()> {
    let shown = show(cmd);
    println!("$ {shown}");
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(())
}

/// Runs `cmd`, returning its stdout; stderr is passed through.
pub(crate) fn capture(cmd: &mut Command) -> Result<String> {
    let shown = show(cmd);
    let output = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("could not start `{shown}`"))?;
    if !output.status.success() {
        bail!("`{shown}` failed ({})", output.status);
    }
    String::from_utf8(output.stdout).with_context(|| format!("`{shown}` printed non-UTF-8 output"))
}

/// Runs `cmd`, printing its stdout as it comes and returning it too;
/// stderr is passed through. Fails unless it exits successfully.
pub(crate) fn tee(cmd: &mut Command) -> Result<String> {
    use std::io::{BufRead, BufReader};
    let shown = show(cmd);
    println!("$ {shown}");
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    let mut out = String::new();
    if let Some(stdout) = child.stdout.take() {
        for line in BufReader::new(stdout).lines() {
            let line = line.with_context(|| format!("reading the output of `{shown}`"))?;
            println!("{line}");
            out.push_str(&line);
            out.push('\n');
        }
    }
    let status = child
        .wait()
        .with_context(|| format!("waiting for `{shown}`"))?;
    if !status.success() {
        bail!("`{shown}` failed ({status})");
    }
    Ok(out)
}

/// Installs `krate` at `version` from crates.io into `.tools/` unless its
/// binary `bin` is there and says that version when run with
/// `version_args`; the binary's path.
pub(crate) fn install_pinned(
    krate: &str,
    version: &str,
    bin: &str,
    version_args: &[&str],
) -> Result<PathBuf> {
    let binary = root()
        .join(".tools")
        .join("bin")
        .join(format!("{bin}{}", std::env::consts::EXE_SUFFIX));
    let installed = binary.exists()
        && capture(Command::new(&binary).args(version_args))
            .is_ok_and(|out| out.split_whitespace().any(|word| word == version));
    if !installed {
        run(&mut cargo([
            "install",
            "--locked",
            "--root",
            ".tools",
            "--version",
            version,
            krate,
        ]))?;
    }
    Ok(binary)
}

/// Whether `cmd` can be started and exits successfully, all output discarded.
pub(crate) fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Parses the JSON printed by `cargo metadata ARGS`.
pub(crate) fn cargo_metadata(args: &[&str]) -> Result<serde_json::Value> {
    let mut cmd = cargo(["metadata", "--format-version", "1"]);
    cmd.args(args);
    let text = capture(&mut cmd)?;
    serde_json::from_str(&text).context("`cargo metadata` printed invalid JSON")
}

/// The command line of `cmd`, for messages: program name without its
/// directory, then the arguments, plus any variables we set for it (except
/// the colour choice and `PATH`, which are noise).
fn show(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    let mut parts: Vec<String> = cmd
        .get_envs()
        .filter(|(key, _)| !matches!(key.to_str(), Some("CARGO_TERM_COLOR" | "PATH")))
        .filter_map(|(key, value)| {
            Some(format!(
                "{}={}",
                key.to_string_lossy(),
                value?.to_string_lossy()
            ))
        })
        .collect();
    parts.push(
        program
            .file_name()
            .unwrap_or(program.as_os_str())
            .to_string_lossy()
            .into_owned(),
    );
    parts.extend(cmd.get_args().map(|arg| arg.to_string_lossy().into_owned()));
    parts.join(" ")
}

/// Whether the `CI` variable says we run on a CI machine.
pub(crate) fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| !matches!(value.as_str(), "" | "0" | "false"))
}
