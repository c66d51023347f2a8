//! The config loader on arbitrary text: never panics, and either yields a
//! config or an error with at least one issue.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcp_core::ManagerConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let env = |name: &str| (name == "SET").then(|| "value".to_owned());
    if let Err(error) = ManagerConfig::from_json_str(text, None, &env) {
        if let Some(config) = error.config() {
            assert!(!config.issues().is_empty());
        }
    }
});
