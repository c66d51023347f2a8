//! A plugin manifest (`plugin.toml`) on arbitrary text: never panics; a
//! manifest that is accepted has a name and at least one server type, and
//! an error names the manifest's path.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mcp_plugin_host::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let dir = Path::new("/nonexistent/plugin");
    match Manifest::parse(text, dir) {
        Ok(manifest) => {
            assert!(!manifest.name.is_empty());
            assert!(!manifest.types.is_empty());
        }
        Err(error) => assert!(error.to_string().contains("/nonexistent/plugin/plugin.toml")),
    }
});
