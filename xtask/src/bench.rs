//! `cargo xtask bench [NAME...]`: the benchmarks, by name. They report
//! figures; none of them fails on a slow machine.
//!
//! `cargo xtask bench report` runs the ones behind the project's targets
//! (the runtime in-process, the gateway against direct HTTP and its
//! monitoring overhead, the frame socket against HTTP, the heap of idle
//! sessions, a wasm plugin against a stdio child) and writes their
//! figures side by side, from one run, to `target/bench-report.md`; any run
//! that prints report lines (`report: WHAT | VALUE | TARGET | VERDICT`)
//! writes that file.

use anyhow::{Context, Result, bail};

use crate::shell;

/// One benchmark: its name, what it measures, and how it runs.
struct Bench {
    name: &'static str,
    about: &'static str,
    how: How,
}

/// How a benchmark runs.
enum How {
    /// A cargo command with these arguments.
    Cargo(&'static [&'static str]),
    /// This preparation, then a cargo command with these arguments.
    Prepared(fn() -> Result<()>, &'static [&'static str]),
    /// This function.
    Run(fn() -> Result<()>),
}

const BENCHES: &[Bench] = &[
    Bench {
        name: "envelope",
        about: "parsing and re-emitting JSON-RPC envelopes (criterion)",
        how: How::Cargo(&["bench", "-p", "benches", "--bench", "envelope"]),
    },
    Bench {
        name: "runtime",
        about: "one request through the runtime to an in-process server (criterion)",
        how: How::Cargo(&["bench", "-p", "benches", "--bench", "runtime"]),
    },
    Bench {
        name: "runtime-load",
        about: "latency percentiles and throughput of the runtime on one core",
        how: How::Cargo(&["bench", "-p", "benches", "--bench", "runtime_load"]),
    },
    Bench {
        name: "gateway",
        about: "the gateway over a stdio echo backend against that backend over HTTP directly",
        how: How::Cargo(&["bench", "-p", "mcp-manager", "--bench", "gateway_load"]),
    },
    Bench {
        name: "replicas",
        about: "three gateway replicas against one, behind HAProxy, side by side",
        how: How::Cargo(&["bench", "-p", "mcp-manager", "--bench", "replicas_load"]),
    },
    Bench {
        name: "frame-socket",
        about: "the frame socket against Streamable HTTP through one gateway: calls, 1 and 64 MiB reads",
        how: How::Cargo(&["bench", "-p", "benches", "--bench", "frame_socket"]),
    },
    Bench {
        name: "idle-sessions",
        about: "heap per idle Streamable HTTP session, 10,000 sessions, counting allocator",
        how: How::Cargo(&["bench", "-p", "benches", "--bench", "idle_sessions"]),
    },
    Bench {
        name: "wasm-plugin",
        about: "a wasm plugin against the same Python server as a stdio child: calls, start, memory",
        how: How::Prepared(
            crate::plugins::run,
            &["bench", "-p", "benches", "--bench", "wasm_plugin"],
        ),
    },
    Bench {
        name: "python",
        about: "calls per second from Python: the embedded manager against the mcp SDK to FastMCP",
        how: How::Run(crate::python::bench),
    },
];

/// Runs the benchmarks named in `args` (all of them when empty); `--list`
/// lists them.
pub(crate) fn run(args: &[String]) -> Result<()> {
    if args.iter().any(|arg| arg == "--list") {
        for bench in BENCHES {
            println!("{:<13} {}", bench.name, bench.about);
        }
        return Ok(());
    }
    let mut chosen = Vec::new();
    let report_set = [
        "runtime-load",
        "gateway",
        "frame-socket",
        "idle-sessions",
        "wasm-plugin",
    ];
    let expanded: Vec<String> = args
        .iter()
        .flat_map(|arg| {
            if arg == "report" {
                report_set.iter().map(|&name| name.to_owned()).collect()
            } else {
                vec![arg.clone()]
            }
        })
        .collect();
    for arg in &expanded {
        match BENCHES.iter().find(|bench| bench.name == arg) {
            Some(bench) => chosen.push(bench),
            None => {
                let names: Vec<&str> = BENCHES.iter().map(|b| b.name).collect();
                bail!(
                    "no benchmark {arg:?}; the benchmarks are: {}",
                    names.join(", ")
                );
            }
        }
    }
    if chosen.is_empty() {
        chosen = BENCHES.iter().collect();
    }
    let mut rows = Vec::new();
    for bench in chosen {
        println!("\n==> bench {}: {}", bench.name, bench.about);
        match bench.how {
            How::Cargo(args) => {
                let out = shell::tee(&mut shell::cargo(args))?;
                rows.extend(report_rows(&out));
            }
            How::Prepared(prepare, args) => {
                prepare()?;
                let out = shell::tee(&mut shell::cargo(args))?;
                rows.extend(report_rows(&out));
            }
            How::Run(run) => run()?,
        }
    }
    if !rows.is_empty() {
        let path = shell::root().join("target").join("bench-report.md");
        std::fs::write(&path, report(&rows))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\nbench report: {}", path.display());
    }
    Ok(())
}

/// The report lines of a benchmark's output: `report: ` and four cells.
fn report_rows(out: &str) -> Vec<[String; 4]> {
    out.lines()
        .filter_map(|line| line.strip_prefix("report: "))
        .filter_map(|row| {
            let cells: Vec<String> = row.split(" | ").map(|c| c.trim().to_owned()).collect();
            <[String; 4]>::try_from(cells).ok()
        })
        .collect()
}

/// The report as Markdown: where and when it was measured, then a table.
fn report(rows: &[[String; 4]]) -> String {
    let commit = shell::capture(shell::command("git").args(["rev-parse", "--short", "HEAD"]))
        .map(|c| c.trim().to_owned())
        .unwrap_or_else(|_| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mut text = format!(
        "# Benchmark report\n\nOne run of `cargo xtask bench report` at commit {commit}, on {cores} \
         cores; each figure is measured side by side with what it is compared to, in the same run.\n\n\
         | measure | value | target | |\n| --- | --- | --- | --- |\n"
    );
    for [what, value, target, verdict] in rows {
        text.push_str(&format!("| {what} | {value} | {target} | {verdict} |\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_become_rows() {
        let out = "noise\nreport: a | 1 µs | < 2 µs | met\nreport: broken | 1\n";
        let rows = report_rows(out);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0][0], "a");
        assert!(report(&rows).contains("| a | 1 µs | < 2 µs | met |"));
    }

    #[test]
    fn unknown_bench_is_an_error_naming_the_others() {
        let err = run(&["nope".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("gateway"), "{err}");
    }
}
