//! `cargo xtask ci`: the CI steps, in order.
//!
//! To add a step, add a row to [`STEPS`]. A step is a plain function; most
//! run one cargo command through [`shell::cargo`].

use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use crate::{
    conformance, deploy, deps_guard, docs_check, features, fuzz, locks, peers, plugins, python,
    shell,
};

/// One CI step.
struct Step {
    /// Name shown in the log, and accepted by `cargo xtask ci STEP`.
    name: &'static str,
    /// One line for `cargo xtask ci --list`.
    about: &'static str,
    /// The work; an error fails the run.
    run: fn() -> Result<()>,
}

/// Every CI step, in the order they run.
const STEPS: &[Step] = &[
    Step {
        name: "lockfile",
        about: "on CI, Cargo.lock must equal the committed one",
        run: lockfile,
    },
    Step {
        name: "fmt",
        about: "cargo fmt --check",
        run: || cargo(&["fmt", "--all", "--", "--check"]),
    },
    Step {
        name: "docs-check",
        about: "every lib.rs opens with //! docs",
        run: docs_check::run,
    },
    Step {
        name: "deps-guard",
        about: "forbidden crates are absent from the dependency graph",
        run: deps_guard::run,
    },
    Step {
        name: "locks",
        about: "no lock in the modules a request crosses (xtask/src/locks.rs)",
        run: locks::run,
    },
    Step {
        name: "clippy",
        about: "clippy on all targets and features, warnings denied",
        run: || {
            cargo(&[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--locked",
                "--",
                "-D",
                "warnings",
            ])
        },
    },
    Step {
        name: "features",
        about: "the facade builds with no features, each feature alone, and all of them",
        run: features::run,
    },
    Step {
        name: "peers",
        about: "install the real MCP peers the tests run against (.tools/)",
        run: || peers::run(&[]),
    },
    Step {
        name: "deploy",
        about: "the Containerfile's shape, and every Kubernetes manifest validated (kubernetes-validate)",
        run: deploy::run,
    },
    Step {
        name: "plugins",
        about: "build the example plugins into target/plugins/ (wasm ones from Python and JavaScript)",
        run: plugins::run,
    },
    Step {
        name: "test",
        about: "tests (nextest when installed) and doctests",
        run: test,
    },
    Step {
        name: "python",
        about: "build, install and test the mcp_manager wheel (pytest, mypy, stubtest)",
        run: || python::run(&[]),
    },
    Step {
        name: "conformance",
        about: "the MCP conformance suite against the built-in server and the gateway",
        run: || conformance::run(&[]),
    },
    Step {
        name: "doc",
        about: "rustdoc with warnings denied",
        run: doc,
    },
    Step {
        name: "fuzz-build",
        about: "build the fuzz targets with cargo-fuzz on stable",
        run: fuzz::build,
    },
];

/// Runs the steps named in `args` (all of them when `args` is empty), in
/// table order, stopping at the first failure.
pub(crate) fn run(args: &[String]) -> Result<()> {
    if args.iter().any(|arg| arg == "--list") {
        for step in STEPS {
            println!("{:<12} {}", step.name, step.about);
        }
        return Ok(());
    }
    for arg in args {
        if !STEPS.iter().any(|step| step.name == arg) {
            let names: Vec<&str> = STEPS.iter().map(|step| step.name).collect();
            bail!("no ci step {arg:?}; the steps are: {}", names.join(", "));
        }
    }
    let selected: Vec<&Step> = STEPS
        .iter()
        .filter(|step| args.is_empty() || args.iter().any(|arg| arg == step.name))
        .collect();

    let started = Instant::now();
    let mut timings = Vec::new();
    for (index, step) in selected.iter().enumerate() {
        println!(
            "\n==> ci [{}/{}] {}: {}",
            index + 1,
            selected.len(),
            step.name,
            step.about
        );
        let step_started = Instant::now();
        let outcome = (step.run)();
        let took = step_started.elapsed();
        if let Err(err) = outcome {
            bail!(
                "ci step `{}` failed after {}: {err:#}",
                step.name,
                human(took)
            );
        }
        println!("<== {} ok in {}", step.name, human(took));
        timings.push((step.name, took));
    }
    println!("\nci passed:");
    for (name, took) in &timings {
        println!("  {name:<12} {:>8}", human(*took));
    }
    println!("  {:<12} {:>8}", "total", human(started.elapsed()));
    Ok(())
}

fn cargo(args: &[&str]) -> Result<()> {
    shell::run(&mut shell::cargo(args))
}

/// `cargo xtask` is itself `cargo run`, which quietly rewrites a stale
/// Cargo.lock before any `--locked` step gets to see it. So on CI, where the
/// checkout is fresh, compare the lock with the committed one instead.
fn lockfile() -> Result<()> {
    if !shell::on_ci() {
        println!("skipped: checked only when CI is set");
        return Ok(());
    }
    let git = |args: &[&str]| {
        let mut cmd = shell::command("git");
        cmd.args(args);
        cmd
    };
    if !shell::succeeds(&mut git(&["ls-files", "--error-unmatch", "Cargo.lock"])) {
        println!("skipped: no git checkout with a committed Cargo.lock here");
        return Ok(());
    }
    if !shell::succeeds(&mut git(&["diff", "--quiet", "--", "Cargo.lock"])) {
        bail!(
            "Cargo.lock differs from the committed one (most likely cargo rewrote a \
             stale lock); run any cargo command locally and commit Cargo.lock"
        );
    }
    println!("Cargo.lock matches the committed one");
    Ok(())
}

/// Tests with nextest when it is installed, else with `cargo test`; then the
/// doctests, which nextest cannot run. The fallback names its targets so
/// that it skips the doctests too instead of running them twice.
fn test() -> Result<()> {
    let common = ["--workspace", "--all-features", "--locked"];
    if shell::succeeds(&mut shell::cargo(["nextest", "--version"])) {
        cargo(&[&["nextest", "run"][..], &common].concat())?;
    } else {
        println!("cargo-nextest is not installed; using cargo test");
        cargo(&[&["test"][..], &common, &["--lib", "--bins", "--tests"]].concat())?;
    }
    cargo(&[&["test"][..], &common, &["--doc"]].concat())
}

/// rustdoc for the workspace with warnings denied, on top of any
/// `RUSTDOCFLAGS` the caller set.
fn doc() -> Result<()> {
    let mut flags = std::env::var("RUSTDOCFLAGS").unwrap_or_default();
    if !flags.is_empty() {
        flags.push(' ');
    }
    flags.push_str("-D warnings");
    let mut cmd = shell::cargo([
        "doc",
        "--workspace",
        "--all-features",
        "--no-deps",
        "--locked",
    ]);
    cmd.env("RUSTDOCFLAGS", flags);
    shell::run(&mut cmd)
}

/// `1.2s` under a minute, `3m07s` above.
fn human(took: Duration) -> String {
    let secs = took.as_secs();
    if secs < 60 {
        format!("{:.1}s", took.as_secs_f64())
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_names_are_unique() {
        for (index, step) in STEPS.iter().enumerate() {
            assert!(
                STEPS[index + 1..]
                    .iter()
                    .all(|other| other.name != step.name),
                "{} appears twice",
                step.name
            );
        }
    }

    #[test]
    fn unknown_step_is_an_error() {
        let err = run(&["nope".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("fmt"), "{err}");
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human(Duration::from_millis(1240)), "1.2s");
        assert_eq!(human(Duration::from_secs(187)), "3m07s");
    }
}
