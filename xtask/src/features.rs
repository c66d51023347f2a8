//! `cargo xtask ci features`: the facade builds with any one of its features,
//! with none, and with all of them, so each layer and each optional part
//! really stands on what it declares.
//!
//! The features are read from the facade's own manifest, so a feature added
//! there is checked without touching this file.

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::shell;

/// The facade crate whose features are checked.
const FACADE: &str = "mcp-manager";

/// Checks the facade with no default features, with each feature alone, and
/// with all features.
pub(crate) fn run() -> Result<()> {
    let features = facade_features()?;
    let mut sets: Vec<Vec<String>> = vec![Vec::new()];
    sets.extend(features.iter().map(|feature| vec![feature.clone()]));
    for set in &sets {
        let label = if set.is_empty() {
            "no features".to_owned()
        } else {
            format!("--features {}", set.join(","))
        };
        println!("features: {FACADE} with {label}");
        let mut args = vec![
            "check",
            "-p",
            FACADE,
            "--lib",
            "--locked",
            "--no-default-features",
        ];
        let joined = set.join(",");
        if !set.is_empty() {
            args.extend(["--features", joined.as_str()]);
        }
        shell::run(&mut shell::cargo(&args)).with_context(|| format!("{FACADE} with {label}"))?;
    }
    println!("features: {FACADE} with all features");
    shell::run(&mut shell::cargo([
        "check",
        "-p",
        FACADE,
        "--all-targets",
        "--locked",
        "--all-features",
    ]))?;
    // The optional parts' absence is behaviour too: their crates' own
    // tests run without them.
    for crate_name in OPTIONAL_PARTS {
        println!("features: {crate_name}'s unit tests without its default features");
        shell::run(&mut shell::cargo([
            "test",
            "-p",
            crate_name,
            "--lib",
            "--locked",
            "--no-default-features",
        ]))?;
    }
    println!(
        "features: {FACADE} builds with none, each of {} alone, and all; {} tested without their optional parts",
        features.len(),
        OPTIONAL_PARTS.join(", ")
    );
    Ok(())
}

/// The crates whose default features are optional parts (resilience,
/// OpenTelemetry, wasm plugins).
const OPTIONAL_PARTS: [&str; 3] = ["mcp-runtime", "mcp-observability", "mcp-plugin-host"];

/// The facade's features, sorted, from `cargo metadata`.
fn facade_features() -> Result<Vec<String>> {
    let metadata = shell::cargo_metadata(&[])?;
    features_of(&metadata, FACADE)
}

/// The features `package` declares in `metadata`, sorted (`default`
/// excluded: it is a set, not a part).
fn features_of(metadata: &Value, package: &str) -> Result<Vec<String>> {
    let Some(found) = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == package)
    else {
        bail!("no package {package} in the workspace");
    };
    let Some(features) = found["features"].as_object() else {
        bail!("package {package} lists no features");
    };
    let mut names: Vec<String> = features
        .keys()
        .filter(|name| name.as_str() != "default")
        .cloned()
        .collect();
    names.sort();
    Ok(names)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn features_are_read_from_the_manifest_without_default() {
        let metadata = json!({"packages": [
            {"name": "other", "features": {"x": []}},
            {"name": "mcp-manager", "features": {"default": ["cli"], "cli": ["core"], "core": []}},
        ]});
        assert_eq!(
            features_of(&metadata, "mcp-manager").unwrap(),
            ["cli", "core"]
        );
        assert!(features_of(&metadata, "missing").is_err());
    }
}
