//! `cargo xtask bench [NAME...]`: the benchmarks, by name. They report
//! figures; none of them fails on a slow machine.

use anyhow::{Result, bail};

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
    for arg in args {
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
    for bench in chosen {
        println!("\n==> bench {}: {}", bench.name, bench.about);
        match bench.how {
            How::Cargo(args) => shell::run(&mut shell::cargo(args))?,
            How::Run(run) => run()?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_bench_is_an_error_naming_the_others() {
        let err = run(&["nope".to_owned()]).unwrap_err();
        assert!(err.to_string().contains("gateway"), "{err}");
    }
}
