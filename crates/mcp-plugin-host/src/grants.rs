//! A wasm server's grants: what its plugin's manifest grants, narrowed by
//! the server's config entry.
//!
//! An entry may hold a `grants` member of the manifest's `[grants]` form;
//! each thing it names must be within what the manifest grants (a folder
//! inside a granted one, written only where the manifest lets it, a
//! variable the manifest names, less memory), so a config entry can take
//! access away from a plugin but never give it more. Without the member
//! the server gets the manifest's grants.

use std::path::Component;

use mcp_core::ConfigIssue;
use mcp_core::config::JsonPath;
use serde_json::Value;

use crate::manifest::{FsGrant, Grants};

/// The member of a wasm server's entry that narrows its grants; it is not
/// one of the plugin's settings.
pub(crate) const MEMBER: &str = "grants";

/// The memory an instance gets when nothing says otherwise, in MiB.
pub(crate) const DEFAULT_MEMORY_MIB: u32 = 128;

/// The grants of the server whose entry is at `at` and holds `entry`
/// (its `grants` member, if any), within `granted`.
///
/// # Errors
///
/// Each thing the entry asks for beyond `granted`, at its JSON path.
pub(crate) fn narrow(
    granted: &Grants,
    entry: Option<&Value>,
    at: &JsonPath,
) -> Result<Grants, Vec<ConfigIssue>> {
    let Some(entry) = entry else {
        return Ok(granted.clone());
    };
    let at = at.key(MEMBER);
    let asked: Grants = serde_json::from_value(entry.clone()).map_err(|e| {
        vec![
            ConfigIssue::new(at.as_str(), format!("not a grants object: {e}")).with_hint(
                "write {\"fs\": [{\"path\": \"/a/folder\", \"write\": false}], \"env\": [\"NAME\"], \"memory_mib\": 64}",
            ),
        ]
    })?;
    let mut issues = Vec::new();
    for (i, fs) in asked.fs.iter().enumerate() {
        let here = at.key("fs").index(i);
        if let Some(problem) = fs_problem(fs, &granted.fs) {
            issues.push(ConfigIssue::new(here.key("path").as_str(), problem));
        }
    }
    for (i, name) in asked.env.iter().enumerate() {
        if !granted.env.contains(name) {
            issues.push(
                ConfigIssue::new(
                    at.key("env").index(i).as_str(),
                    format!("the plugin is not granted the environment variable `{name}`"),
                )
                .with_hint(names("it is granted", &granted.env)),
            );
        }
    }
    if !asked.http.is_empty() {
        issues.push(ConfigIssue::new(
            at.key("http").as_str(),
            "outgoing HTTP is not offered to wasm plugins: they get no network",
        ));
    }
    let most = granted.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB);
    if let Some(mib) = asked.memory_mib {
        if mib > most || mib == 0 {
            issues.push(ConfigIssue::new(
                at.key("memory_mib").as_str(),
                format!(
                    "{mib} MiB: a server may have from 1 to {most} MiB, what its plugin is granted"
                ),
            ));
        }
    }
    if issues.is_empty() {
        Ok(asked)
    } else {
        Err(issues)
    }
}

/// Why `fs` is not within `granted`, if it is not.
fn fs_problem(fs: &FsGrant, granted: &[FsGrant]) -> Option<String> {
    if !fs.path.is_absolute() {
        return Some(format!("`{}` is not an absolute path", fs.path.display()));
    }
    if fs
        .path
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Some(format!(
            "`{}`: write the folder without `.` or `..`",
            fs.path.display()
        ));
    }
    let within: Vec<&FsGrant> = granted
        .iter()
        .filter(|g| fs.path.starts_with(&g.path))
        .collect();
    if within.is_empty() {
        let folders: Vec<String> = granted
            .iter()
            .map(|g| g.path.display().to_string())
            .collect();
        return Some(format!(
            "{} is not inside a folder the plugin is granted ({})",
            fs.path.display(),
            if folders.is_empty() {
                "it is granted none".to_owned()
            } else {
                folders.join(", ")
            }
        ));
    }
    if fs.write && !within.iter().any(|g| g.write) {
        return Some(format!(
            "{}: the plugin may only read it; its manifest does not grant writing there",
            fs.path.display()
        ));
    }
    None
}

fn names(what: &str, names: &[String]) -> String {
    if names.is_empty() {
        format!("{what} none")
    } else {
        format!("{what} {}", names.join(", "))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// Whether `path` is inside (or is) one of `granted`'s folders.
    fn inside(path: &std::path::Path, granted: &[FsGrant]) -> bool {
        granted.iter().any(|g| path.starts_with(&g.path))
    }

    fn granted() -> Grants {
        Grants {
            fs: vec![
                FsGrant {
                    path: "/srv/data".into(),
                    write: false,
                },
                FsGrant {
                    path: "/tmp/scratch".into(),
                    write: true,
                },
            ],
            env: vec!["HOME".to_owned(), "LANG".to_owned()],
            http: Vec::new(),
            memory_mib: Some(64),
        }
    }

    fn at() -> JsonPath {
        JsonPath::from("mcpServers.notes")
    }

    #[test]
    fn without_the_member_the_manifest_grants_all() {
        assert_eq!(narrow(&granted(), None, &at()).unwrap(), granted());
    }

    #[test]
    fn an_entry_narrows() {
        let entry = json!({"fs": [{"path": "/srv/data/notes"}, {"path": "/tmp/scratch/a", "write": true}], "env": ["LANG"], "memory_mib": 32});
        let narrowed = narrow(&granted(), Some(&entry), &at()).unwrap();
        assert_eq!(narrowed.fs.len(), 2);
        assert_eq!(narrowed.env, ["LANG"]);
        assert_eq!(narrowed.memory_mib, Some(32));
        let nothing = narrow(&granted(), Some(&json!({})), &at()).unwrap();
        assert_eq!(nothing, Grants::default());
    }

    #[test]
    fn an_entry_cannot_widen_and_each_attempt_is_named_where_it_is() {
        let entry = json!({
            "fs": [{"path": "/etc"}, {"path": "/srv/data/x", "write": true}, {"path": "/srv/data/../../etc"}, {"path": "rel"}],
            "env": ["LANG", "AWS_SECRET_ACCESS_KEY"],
            "http": ["example.com"],
            "memory_mib": 4096
        });
        let issues = narrow(&granted(), Some(&entry), &at()).unwrap_err();
        let paths: Vec<&str> = issues.iter().map(ConfigIssue::path).collect();
        assert_eq!(
            paths,
            [
                "mcpServers.notes.grants.fs[0].path",
                "mcpServers.notes.grants.fs[1].path",
                "mcpServers.notes.grants.fs[2].path",
                "mcpServers.notes.grants.fs[3].path",
                "mcpServers.notes.grants.env[1]",
                "mcpServers.notes.grants.http",
                "mcpServers.notes.grants.memory_mib",
            ]
        );
        assert!(
            issues[0].message().contains("not inside a folder"),
            "{}",
            issues[0].message()
        );
        assert!(
            issues[1].message().contains("may only read"),
            "{}",
            issues[1].message()
        );
        assert!(
            issues[2].message().contains("`..`"),
            "{}",
            issues[2].message()
        );
        assert!(issues[4].message().contains("AWS_SECRET_ACCESS_KEY"));
        assert!(issues[6].message().contains("from 1 to 64 MiB"));
        let bad = narrow(&granted(), Some(&json!({"disk": true})), &at()).unwrap_err();
        assert_eq!(bad[0].path(), "mcpServers.notes.grants");
        assert!(
            bad[0].message().contains("unknown field `disk`"),
            "{}",
            bad[0].message()
        );
    }

    proptest! {
        /// Whatever an entry asks for, what comes out is within the grant.
        #[test]
        fn what_is_granted_never_exceeds_the_manifest(
            paths in proptest::collection::vec("(/srv/data|/tmp/scratch|/etc|/srv)(/[a-z.]{1,3}){0,3}", 0..4),
            write in any::<bool>(),
            env in proptest::collection::vec("HOME|LANG|PATH|SECRET", 0..3),
            memory in proptest::option::of(0u32..300),
        ) {
            let fs: Vec<Value> = paths.iter().map(|p| json!({"path": p, "write": write})).collect();
            let entry = json!({"fs": fs, "env": env, "memory_mib": memory});
            if let Ok(got) = narrow(&granted(), Some(&entry), &at()) {
                let manifest = granted();
                for fs in &got.fs {
                    prop_assert!(inside(&fs.path, &manifest.fs));
                    prop_assert!(!fs.path.components().any(|c| c == Component::ParentDir));
                    prop_assert!(!fs.write || fs.path.starts_with("/tmp/scratch"));
                }
                for name in &got.env {
                    prop_assert!(manifest.env.contains(name));
                }
                prop_assert!(got.memory_mib.unwrap_or(1) <= 64);
            }
        }
    }
}
