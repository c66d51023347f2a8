//! The process's one tokio runtime, and the rules for its threads calling
//! into Python.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;

/// The process's one tokio runtime, started on first use, and the process
/// it was started in.
pub(crate) fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<Result<(tokio::runtime::Runtime, u32), String>> = OnceLock::new();
    let (runtime, pid) = RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("mcp-manager")
                .enable_all()
                .build()
                .map(|runtime| (runtime, std::process::id()))
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start the async runtime: {e}")))?;
    // A forked child has the runtime's memory but none of its threads.
    if *pid != std::process::id() {
        return Err(PyRuntimeError::new_err(
            "mcp_manager cannot be used in a process forked after it was first used: \
             the runtime's threads do not survive fork(); use managers in the parent, \
             or start the child with multiprocessing's 'spawn' method",
        ));
    }
    Ok(runtime)
}

/// Set once the interpreter is exiting (`shutdown`, from the package's
/// `atexit` hook): runtime threads no longer call into Python.
pub(crate) static EXITING: AtomicBool = AtomicBool::new(false);
/// Runtime threads inside Python right now.
pub(crate) static ATTACHED: AtomicUsize = AtomicUsize::new(0);

/// Runs `f` with the GIL on a runtime thread, unless the interpreter is
/// exiting: a thread that attaches while Python finalizes brings the
/// process down.
pub(crate) fn with_python(f: impl for<'py> FnOnce(Python<'py>)) {
    ATTACHED.fetch_add(1, Ordering::SeqCst);
    if !EXITING.load(Ordering::SeqCst) {
        Python::attach(f);
    }
    ATTACHED.fetch_sub(1, Ordering::SeqCst);
}

/// Reports what a callback called from a runtime thread raised, as Python
/// does for errors nobody can catch.
pub(crate) fn unraisable(py: Python<'_>, called: PyResult<Py<PyAny>>) {
    if let Err(error) = called {
        error.write_unraisable(py, None);
    }
}

/// Called at interpreter exit, after the managers are closed: no runtime
/// thread calls into Python from now on, and those inside it have left
/// (waiting up to a second, with the GIL released so that they can).
#[pyfunction]
pub(crate) fn shutdown(py: Python<'_>) {
    EXITING.store(true, Ordering::SeqCst);
    py.detach(|| {
        let deadline = Instant::now() + Duration::from_secs(1);
        while ATTACHED.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}
