//! Fuzzing with cargo-fuzz on the stable toolchain.
//!
//! cargo-fuzz is installed from crates.io into `.tools/` at a pinned version,
//! so neither CI nor a laptop needs it preinstalled. The fuzz crate lives in
//! `fuzz/`, outside the main workspace, with its own Cargo.lock; its targets
//! are the `[[bin]]` tables of `fuzz/Cargo.toml`.
//!
//! What stable needs: only `-s none` (`--sanitizer none`). cargo-fuzz's
//! default is AddressSanitizer, which it requests with `-Zsanitizer=address`,
//! a flag stable rustc refuses. Everything else it passes is stable: the
//! coverage instrumentation (`-Cpasses=sancov-module` and
//! `-Cllvm-args=-sanitizer-coverage-*`), `--cfg fuzzing`, and
//! `-Cdebug-assertions` on a release build. libFuzzer itself is C++ compiled
//! by the build script of `libfuzzer-sys`, so a C++ compiler must be present.
//! Without a sanitizer, memory errors are not caught as they happen, but our
//! crates forbid `unsafe`, and panics, overflows (debug assertions are on),
//! hangs and out-of-memory are still found.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::shell;

/// How long `cargo xtask fuzz TARGET` runs when no time is given, in seconds.
pub(crate) const DEFAULT_SECONDS: u64 = 60;

/// The cargo-fuzz release installed into `.tools/`.
const CARGO_FUZZ_VERSION: &str = "0.13.2";

/// Builds every fuzz target listed in `fuzz/Cargo.toml`.
pub(crate) fn build() -> Result<()> {
    let cargo_fuzz = prepare()?;
    let mut cmd = fuzz_command(&cargo_fuzz);
    cmd.args(["build", "--sanitizer", "none"]);
    shell::run(&mut cmd)
}

/// Runs one fuzz target for at most `seconds`.
pub(crate) fn run(target: &str, seconds: u64) -> Result<()> {
    let cargo_fuzz = prepare()?;
    let mut cmd = fuzz_command(&cargo_fuzz);
    cmd.args(["run", "--sanitizer", "none", target, "--"])
        .arg(format!("-max_total_time={seconds}"));
    shell::run(&mut cmd)
}

/// Checks the fuzz crate, verifies its lock file when there is one, and
/// returns the path of cargo-fuzz, installing it first if needed.
fn prepare() -> Result<PathBuf> {
    let fuzz_dir = fuzz_dir();
    let manifest = fuzz_dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("could not read {}", manifest.display()))?;
    if count_bin_tables(&text) == 0 {
        bail!(
            "fuzz/Cargo.toml lists no fuzz targets: add a `[[bin]]` table for each \
             file in fuzz/fuzz_targets/"
        );
    }
    let cargo_fuzz = install_cargo_fuzz()?;
    // cargo-fuzz has no `--locked`. Checking the lock first has the same
    // effect: the build that follows finds it up to date and leaves it alone.
    if fuzz_dir.join("Cargo.lock").exists() {
        let mut check = shell::cargo(["metadata", "--format-version", "1", "--locked"]);
        check.arg("--manifest-path").arg(&manifest);
        shell::capture(&mut check).context(
            "fuzz/Cargo.lock is out of date: run \
             `cargo update --workspace --manifest-path fuzz/Cargo.toml` and commit it",
        )?;
    } else {
        println!("note: fuzz/Cargo.lock does not exist yet; this build creates it, commit it");
    }
    Ok(cargo_fuzz)
}

/// Installs cargo-fuzz into `.tools/` unless the pinned version is there.
fn install_cargo_fuzz() -> Result<PathBuf> {
    shell::install_pinned(
        "cargo-fuzz",
        CARGO_FUZZ_VERSION,
        "cargo-fuzz",
        &["--version"],
    )
}

/// A cargo-fuzz command run inside `fuzz/`.
///
/// cargo-fuzz starts `cargo` from `PATH`. With rustup that is a proxy that
/// may pick another toolchain than the one running us (a different default,
/// an override), so the directory of the running cargo goes first in `PATH`:
/// the fuzz build uses the same toolchain as every other step.
fn fuzz_command(cargo_fuzz: &Path) -> Command {
    let mut cmd = shell::command(cargo_fuzz);
    cmd.current_dir(fuzz_dir());
    if let Some(path) = path_with_cargo_first() {
        cmd.env("PATH", path);
    }
    cmd
}

fn path_with_cargo_first() -> Option<OsString> {
    let cargo = shell::cargo_program();
    let dir = cargo.parent().filter(|dir| dir.is_absolute())?;
    let rest = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&rest));
    std::env::join_paths(dirs).ok()
}

fn fuzz_dir() -> PathBuf {
    shell::root().join("fuzz")
}

/// The number of `[[bin]]` tables in a Cargo.toml, without a TOML parser:
/// header lines, possibly indented or followed by a comment.
fn count_bin_tables(manifest: &str) -> usize {
    manifest
        .lines()
        .filter(|line| {
            let code = line.split('#').next().unwrap_or_default();
            code.trim() == "[[bin]]"
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bin_tables() {
        let none = "[package]\nname = \"f\"\n\n[dependencies]\nlibfuzzer-sys = \"0.4\"\n";
        assert_eq!(count_bin_tables(none), 0);
        assert_eq!(count_bin_tables("# [[bin]]\nx = \"[[bin]]\"\n"), 0);
        let two = "[package]\n\n[[bin]]\nname = \"a\"\n\n  [[bin]] # second\nname = \"b\"\n";
        assert_eq!(count_bin_tables(two), 2);
    }
}
