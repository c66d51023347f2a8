//! The process's WebAssembly engines (one of them metering fuel), the
//! cache of what they compile, and the clock that ends calls that run past
//! their deadline.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::{Cache, CacheConfig, Config, Engine};

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
            .epoch_interruption(true)
            .cache(cache());
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

/// Where compiled components are kept between runs: `MCP_MANAGER_WASM_CACHE`
/// (an absolute path; `off` for nowhere), else `$XDG_CACHE_HOME/mcp-manager/wasm`, else
/// `~/.cache/mcp-manager/wasm`; `None` without a home.
#[must_use]
pub fn cache_dir() -> Option<PathBuf> {
    match std::env::var_os("MCP_MANAGER_WASM_CACHE") {
        Some(value) if value.is_empty() || value == "off" => return None,
        Some(value) => return Some(PathBuf::from(value)).filter(|dir| dir.is_absolute()),
        None => {}
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".cache"))
        })?;
    Some(base.join("mcp-manager").join("wasm"))
}

/// The cache of compiled components, in a folder made for this user alone
/// (a compiled component is machine code the engine will run, so a folder
/// others may write to is not used); none when there is no such folder,
/// which only costs compiling again.
fn cache() -> Option<Cache> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = cache_dir()?;
    let usable = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .and_then(|()| std::fs::metadata(&dir))
        .map_err(|e| format!("it cannot be made: {e}"))
        .and_then(|meta| {
            if meta.permissions().mode() & 0o022 == 0 {
                Ok(())
            } else {
                Err("others may write to it".to_owned())
            }
        });
    if let Err(why) = usable {
        tracing::warn!(
            "wasm plugins are compiled anew at every start: the cache folder {} is not used: {why}",
            dir.display()
        );
        return None;
    }
    let mut config = CacheConfig::new();
    config.with_directory(&dir);
    Cache::new(config)
        .map_err(|e| {
            tracing::warn!(
                "wasm plugins are compiled anew at every start: the cache in {} cannot be used: {e:#}",
                dir.display()
            );
        })
        .ok()
}
