//! The one WebAssembly engine of the process, and the clock that ends
//! calls that run past their deadline.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the engine's epoch advances: the granularity of deadlines,
/// and how long a plugin may keep a thread before it yields.
pub(crate) const TICK: Duration = Duration::from_millis(10);

/// The engine, set up on first use; its epoch advances every [`TICK`]
/// on a thread of its own for the rest of the process. With `fuel`, the
/// engine that meters fuel: its code counts instructions, which costs
/// time on every call, so only components whose limits name fuel are
/// compiled for it.
pub(crate) fn engine(fuel: bool) -> Result<&'static Engine, String> {
    static METERED: OnceLock<Result<Engine, String>> = OnceLock::new();
    static UNMETERED: OnceLock<Result<Engine, String>> = OnceLock::new();
    let cell = if fuel { &METERED } else { &UNMETERED };
    cell.get_or_init(|| {
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .consume_fuel(fuel)
            .epoch_interruption(true);
        let engine = Engine::new(&config).map_err(|e| e.to_string())?;
        let ticking = engine.clone();
        std::thread::Builder::new()
            .name("wasm-epoch".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(TICK);
                    ticking.increment_epoch();
                }
            })
            .map_err(|e| format!("the engine's clock thread cannot start: {e}"))?;
        Ok(engine)
    })
    .as_ref()
    .map_err(Clone::clone)
}
