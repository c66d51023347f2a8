//! `cargo xtask ci locks`: a request crosses these modules from the HTTP
//! request to the backend's pipe and back, and none of them may take a
//! lock: no `Mutex`, `RwLock` or `Condvar`, no `.lock()`, `.read()` or
//! `.write()` guard, no `lock(...)` helper. Shared state on the way is a
//! snapshot (arc-swap), an atomic, a lock-free map, or an actor's own.
//!
//! Test modules (from `#[cfg(test)]` on) and comments are not looked at.
//! State that a request never waits on for its answer (subscriptions,
//! recent errors, a streamed request's resumption log) lives in modules of
//! its own, outside this list.

use anyhow::{Context, Result, bail};

use crate::shell;

/// The modules on a request's way, from the workspace root.
pub(crate) const REQUEST_PATH: &[&str] = &[
    // The HTTP endpoint: routing, the exchange, sessions and limits.
    "crates/mcp-serve/src/http/mod.rs",
    "crates/mcp-serve/src/http/exchange.rs",
    "crates/mcp-serve/src/http/session.rs",
    "crates/mcp-serve/src/http/body.rs",
    "crates/mcp-serve/src/http/legacy.rs",
    // The gateway: the merged lists and the routing of a call.
    "crates/mcp-gateway/src/lib.rs",
    "crates/mcp-gateway/src/catalog.rs",
    "crates/mcp-gateway/src/route.rs",
    // The runtime: the server's handle, its resilience layers, the
    // connection actor, the stdio transport, and the in-process server's
    // direct path.
    "crates/mcp-runtime/src/server/handle.rs",
    "crates/mcp-runtime/src/server/direct.rs",
    "crates/mcp-runtime/src/resilience/mod.rs",
    "crates/mcp-runtime/src/resilience/retry.rs",
    "crates/mcp-runtime/src/resilience/breaker.rs",
    "crates/mcp-runtime/src/resilience/deadline.rs",
    "crates/mcp-runtime/src/resilience/bulkhead.rs",
    "crates/mcp-runtime/src/connection/mod.rs",
    "crates/mcp-runtime/src/connection/machine.rs",
    "crates/mcp-runtime/src/connection/wire.rs",
    "crates/mcp-runtime/src/connection/driver.rs",
    "crates/mcp-runtime/src/observe.rs",
    "crates/mcp-runtime/src/transport/mod.rs",
    "crates/mcp-runtime/src/transport/stdio.rs",
    "crates/mcp-runtime/src/transport/inprocess.rs",
    // What each request reports.
    "crates/mcp-observability/src/metrics.rs",
];

/// What takes a lock, as text.
const LOCKING: &[&str] = &[
    "Mutex", "RwLock", "Condvar", ".lock()", ".read()", ".write()", "lock(",
];

/// Checks every module of [`REQUEST_PATH`].
pub(crate) fn run() -> Result<()> {
    let root = shell::root();
    let mut found = Vec::new();
    for module in REQUEST_PATH {
        let path = root.join(module);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {module} (named in xtask/src/locks.rs)"))?;
        found.extend(
            locks_in(&text)
                .into_iter()
                .map(|(line, what)| format!("  {module}:{line}: {what}")),
        );
    }
    if !found.is_empty() {
        bail!(
            "a lock on a request's way (move the state to a snapshot, an atomic or an actor, \
             or out of these modules if no request waits on it):\n{}",
            found.join("\n")
        );
    }
    println!(
        "locks: none in the {} modules on a request's way",
        REQUEST_PATH.len()
    );
    Ok(())
}

/// Where `text` (a Rust source file) takes a lock: line number and line,
/// up to its test module, comments left out.
pub(crate) fn locks_in(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            break;
        }
        let code = code.split("//").next().unwrap_or_default();
        if LOCKING.iter().any(|token| takes(code, token)) {
            found.push((number + 1, line.trim().to_owned()));
        }
    }
    found
}

/// Whether `code` holds `token` as a word of its own (`lock(` but not
/// `unlock(` or `block(`).
fn takes(code: &str, token: &str) -> bool {
    code.match_indices(token).any(|(at, _)| {
        let before = code.get(..at).and_then(|head| head.chars().next_back());
        token.starts_with('.') || !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_locks_but_not_comments_tests_or_lookalikes() {
        let text = "\
use std::sync::Mutex;
// a Mutex in a comment
let x = state.lock().unwrap(); // taken
let y = lock(&state);
let z = table.read();
let fine = block(3) + unlock(4) + deadlock(5);
let io = file.read(&mut buf);
#[cfg(test)]
mod tests { use std::sync::RwLock; }
";
        let found: Vec<usize> = locks_in(text).into_iter().map(|(n, _)| n).collect();
        assert_eq!(found, [1, 3, 4, 5]);
    }

    #[test]
    fn the_request_path_is_lock_free() {
        run().unwrap();
    }
}
