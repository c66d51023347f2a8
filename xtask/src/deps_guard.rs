//! The dependency-graph guard: crates that must stay *absent* from parts of
//! the workspace.
//!
//! The graph is cargo's resolved graph (`cargo metadata --all-features`),
//! following normal and build dependencies for every target platform, and
//! ignoring dev-dependencies (they never reach users). That graph unifies
//! features across the whole workspace and includes every platform, so it
//! can only over-report: a clean result here is a clean result for any
//! feature set on any target.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::shell;

/// Which workspace members a rule constrains.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Members {
    /// Exactly these members.
    Only(&'static [&'static str]),
    /// Every member except these.
    AllExcept(&'static [&'static str]),
}

/// One rule: the constrained members must not reach any `forbidden` crate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rule {
    /// The members the rule applies to.
    pub(crate) members: Members,
    /// Package names that must not be reachable from those members.
    pub(crate) forbidden: &'static [&'static str],
    /// Why, printed next to a violation.
    pub(crate) reason: &'static str,
}

/// The rules of this workspace.
pub(crate) const RULES: &[Rule] = &[
    Rule {
        members: Members::Only(&["mcp-protocol"]),
        forbidden: &["tokio", "mio", "hyper", "reqwest"],
        reason: "mcp-protocol is sans-IO: it never reaches tokio or any I/O",
    },
    Rule {
        // Refine here if another member gets pyo3 behind an optional feature.
        members: Members::AllExcept(&["mcp-python"]),
        forbidden: &["pyo3"],
        reason: "only mcp-python knows Python",
    },
    Rule {
        members: Members::Only(&["mcp-core"]),
        forbidden: &["pyo3", "hyper", "reqwest", "axum"],
        reason: "mcp-core holds domain types, no transports and no Python",
    },
    Rule {
        members: Members::Only(&["mcp-core"]),
        forbidden: &["tokio"],
        reason: "mcp-core names no async runtime: its futures are plain boxed futures",
    },
    Rule {
        members: Members::Only(&["mcp-sandbox"]),
        forbidden: &["tokio", "mio", "mcp-runtime", "hyper", "reqwest"],
        reason: "a sandbox is made of system calls between fork and exec: no async runtime, \
                 nothing of the runtime that spawns the process",
    },
    Rule {
        members: Members::Only(&["mcp-auth"]),
        forbidden: &["mcp-runtime", "mcp-gateway", "mcp-serve", "pyo3"],
        reason: "access tokens answer who is calling, and are what a client sends: it knows no \
                 server, no gateway and no endpoint, only Authorization headers and challenges",
    },
    Rule {
        members: Members::Only(&["mcp-runtime"]),
        forbidden: &[
            "mcp-plugin-api",
            "mcp-plugins",
            "mcp-gateway",
            "mcp-serve",
            "mcp-control",
        ],
        reason: "the runtime is the actor core and the client transports: it knows server types \
                 only through Connector, and nothing of the layers above it",
    },
    Rule {
        members: Members::Only(&["mcp-gateway"]),
        forbidden: &["mcp-serve", "mcp-plugin-api", "mcp-plugins", "mcp-control"],
        reason: "the gateway sees servers as runtime handles and clients as RequestContexts: \
                 no downstream transport, no plugin",
    },
    Rule {
        members: Members::Only(&["mcp-serve"]),
        forbidden: &[
            "mcp-gateway",
            "mcp-plugin-api",
            "mcp-plugins",
            "mcp-control",
        ],
        reason: "the downstream servers serve any McpServer, not the gateway's internals",
    },
    Rule {
        members: Members::Only(&["mcp-plugin-api"]),
        forbidden: &[
            "mcp-plugins",
            "mcp-runtime",
            "tokio",
            "hyper",
            "reqwest",
            "rustls",
        ],
        reason: "the plugin API stands on its own: a plugin author compiles mcp-core and serde, \
                 not the runtime, an async runtime or an HTTP or TLS stack",
    },
    Rule {
        members: Members::Only(&["mcp-plugin-host"]),
        forbidden: &["mcp-plugins", "mcp-runtime", "hyper", "reqwest", "rustls"],
        reason: "loading plugins reads files and describes launches: the runtime starts them",
    },
    Rule {
        members: Members::Only(&["mcp-plugin-wasm"]),
        forbidden: &[
            "mcp-plugin-api",
            "mcp-plugin-host",
            "mcp-plugins",
            "mcp-runtime",
            "hyper",
            "reqwest",
            "rustls",
            "wasmtime-wasi-http",
        ],
        reason: "a wasm server is an McpServer over a sandbox: it knows no manifests or registries, \
                 not the runtime, and offers no network (no HTTP or TLS stack, no WASI HTTP)",
    },
    Rule {
        members: Members::Only(&["mcp-plugins"]),
        forbidden: &["mcp-runtime", "hyper", "reqwest"],
        reason: "the built-in plugins go through the plugin API like any other plugin",
    },
    Rule {
        members: Members::AllExcept(&["mcp-manager"]),
        forbidden: &["mcp-manager"],
        reason: "mcp-manager holds the binary: nothing below it (Python included) depends on it",
    },
];

/// A forbidden crate reached from a constrained member.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Violation {
    /// Package names from the member to the forbidden crate, both included.
    pub(crate) path: Vec<String>,
    /// The reason of the rule that was broken.
    pub(crate) reason: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  ({})", self.path.join(" -> "), self.reason)
    }
}

/// Runs the guard over this workspace.
pub(crate) fn run() -> Result<()> {
    let metadata = shell::cargo_metadata(&["--all-features"])?;
    let violations = check(&metadata, RULES)?;
    if !violations.is_empty() {
        let lines: Vec<String> = violations.iter().map(|v| format!("  {v}")).collect();
        bail!(
            "forbidden dependencies found (edit the graph, or the rules in xtask/src/deps_guard.rs):\n{}",
            lines.join("\n")
        );
    }
    println!("deps-guard: {} rules hold", RULES.len());
    Ok(())
}

/// Checks `rules` against `cargo metadata` output and returns every
/// violation: for each constrained member and each forbidden crate it
/// reaches, one shortest path. Errors on malformed metadata and on rules
/// naming members the workspace does not have.
pub(crate) fn check(metadata: &Value, rules: &[Rule]) -> Result<Vec<Violation>> {
    let graph = Graph::parse(metadata)?;
    let mut violations = Vec::new();
    for rule in rules {
        let named = match rule.members {
            Members::Only(names) | Members::AllExcept(names) => names,
        };
        for name in named {
            if !graph.members.contains_key(*name) {
                bail!("a deps-guard rule names {name:?}, which is not a workspace member");
            }
        }
        let roots = graph.members.iter().filter(|(name, _)| match rule.members {
            Members::Only(names) => names.contains(&name.as_str()),
            Members::AllExcept(names) => !names.contains(&name.as_str()),
        });
        for (_, root) in roots {
            for path in graph.paths_to(root, rule.forbidden) {
                violations.push(Violation {
                    path,
                    reason: rule.reason,
                });
            }
        }
    }
    Ok(violations)
}

/// The resolved graph, keyed by package id, with dev-only edges dropped.
struct Graph<'a> {
    /// Package id to package name.
    names: HashMap<&'a str, &'a str>,
    /// Package id to the ids it depends on (normal or build), in cargo's order.
    edges: HashMap<&'a str, Vec<&'a str>>,
    /// Workspace member name to package id, sorted by name.
    members: BTreeMap<String, &'a str>,
}

impl<'a> Graph<'a> {
    fn parse(metadata: &'a Value) -> Result<Self> {
        let mut names = HashMap::new();
        for package in array(&metadata["packages"], "packages")? {
            let id = string(&package["id"], "package id")?;
            let name = string(&package["name"], "package name")?;
            names.insert(id, name);
        }
        let mut members = BTreeMap::new();
        for id in array(&metadata["workspace_members"], "workspace_members")? {
            let id = string(id, "workspace member id")?;
            let name = names
                .get(id)
                .with_context(|| format!("workspace member {id} is not among the packages"))?;
            members.insert((*name).to_owned(), id);
        }
        let resolve = &metadata["resolve"];
        if resolve.is_null() {
            bail!("cargo metadata has no resolved graph (was it run with --no-deps?)");
        }
        let mut edges = HashMap::new();
        for node in array(&resolve["nodes"], "resolve.nodes")? {
            let id = string(&node["id"], "node id")?;
            let mut deps = Vec::new();
            for dep in array(&node["deps"], "node deps")? {
                if reaches_users(dep) {
                    deps.push(string(&dep["pkg"], "dependency pkg")?);
                }
            }
            edges.insert(id, deps);
        }
        Ok(Self {
            names,
            edges,
            members,
        })
    }

    /// One shortest path from `root` to each reachable package named in
    /// `forbidden`, ordered by distance, then by cargo's order of deps.
    fn paths_to(&self, root: &'a str, forbidden: &[&str]) -> Vec<Vec<String>> {
        let mut parent: HashMap<&str, &str> = HashMap::new();
        let mut seen = HashSet::from([root]);
        let mut queue = VecDeque::from([root]);
        let mut reported = HashSet::new();
        let mut paths = Vec::new();
        while let Some(id) = queue.pop_front() {
            let name = self.name(id);
            if id != root && forbidden.contains(&name) {
                if reported.insert(name) {
                    paths.push(self.path(root, id, &parent));
                }
                // Whatever lies behind a forbidden crate is its business.
                continue;
            }
            for &dep in self.edges.get(id).map(Vec::as_slice).unwrap_or_default() {
                if seen.insert(dep) {
                    parent.insert(dep, id);
                    queue.push_back(dep);
                }
            }
        }
        paths
    }

    fn path(&self, root: &str, mut id: &'a str, parent: &HashMap<&str, &'a str>) -> Vec<String> {
        let mut path = vec![self.name(id).to_owned()];
        while id != root {
            match parent.get(id) {
                Some(&up) => id = up,
                None => break,
            }
            path.push(self.name(id).to_owned());
        }
        path.reverse();
        path
    }

    fn name(&self, id: &'a str) -> &'a str {
        self.names.get(id).copied().unwrap_or(id)
    }
}

/// Whether a `resolve.nodes[].deps[]` entry is a normal or build dependency
/// (on any platform) rather than only a dev-dependency. An entry without
/// `dep_kinds` (very old cargo) counts as normal.
fn reaches_users(dep: &Value) -> bool {
    match dep["dep_kinds"].as_array() {
        Some(kinds) if !kinds.is_empty() => kinds
            .iter()
            .any(|kind| kind["kind"].as_str() != Some("dev")),
        _ => true,
    }
}

fn array<'a>(value: &'a Value, what: &str) -> Result<&'a Vec<Value>> {
    value
        .as_array()
        .with_context(|| format!("cargo metadata: `{what}` is not a list"))
}

fn string<'a>(value: &'a Value, what: &str) -> Result<&'a str> {
    value
        .as_str()
        .with_context(|| format!("cargo metadata: `{what}` is not a string"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A dependency edge for the synthetic documents: `(to, kinds)` where a
    /// kind is `None` (normal), `Some("build")` or `Some("dev")`.
    type Dep = (&'static str, &'static [Option<&'static str>]);

    const NORMAL: &[Option<&str>] = &[None];
    const DEV: &[Option<&str>] = &[Some("dev")];
    const BUILD: &[Option<&str>] = &[Some("build")];

    fn id(name: &str) -> String {
        format!("registry+https://example.invalid#{name}@1.0.0")
    }

    /// A small `cargo metadata` document: `members` are workspace members,
    /// every name in `nodes` is a package.
    fn metadata(members: &[&str], nodes: &[(&str, &[Dep])]) -> Value {
        let packages: Vec<Value> = nodes
            .iter()
            .map(|(name, _)| json!({"id": id(name), "name": name}))
            .collect();
        let resolved: Vec<Value> = nodes
            .iter()
            .map(|(name, deps)| {
                let deps: Vec<Value> = deps
                    .iter()
                    .map(|(to, kinds)| {
                        let kinds: Vec<Value> = kinds
                            .iter()
                            .map(|kind| json!({"kind": kind, "target": null}))
                            .collect();
                        json!({"name": to.replace('-', "_"), "pkg": id(to), "dep_kinds": kinds})
                    })
                    .collect();
                json!({"id": id(name), "deps": deps, "features": []})
            })
            .collect();
        let members: Vec<String> = members.iter().map(|name| id(name)).collect();
        json!({
            "packages": packages,
            "workspace_members": members,
            "resolve": {"nodes": resolved, "root": null},
            "version": 1
        })
    }

    const PROTOCOL_RULE: &[Rule] = &[Rule {
        members: Members::Only(&["mcp-protocol"]),
        forbidden: &["tokio", "mio"],
        reason: "sans-IO",
    }];

    fn paths(metadata: &Value, rules: &[Rule]) -> Vec<String> {
        check(metadata, rules)
            .unwrap()
            .iter()
            .map(|v| v.path.join(" -> "))
            .collect()
    }

    #[test]
    fn clean_graph_passes() {
        let doc = metadata(
            &["mcp-protocol", "mcp-runtime"],
            &[
                ("mcp-protocol", &[("serde", NORMAL), ("bytes", NORMAL)]),
                (
                    "mcp-runtime",
                    &[("mcp-protocol", NORMAL), ("tokio", NORMAL)],
                ),
                ("serde", &[]),
                ("bytes", &[]),
                ("tokio", &[("mio", NORMAL)]),
                ("mio", &[]),
            ],
        );
        assert_eq!(paths(&doc, PROTOCOL_RULE), Vec::<String>::new());
    }

    #[test]
    fn direct_dependency_fails_with_path() {
        let doc = metadata(
            &["mcp-protocol"],
            &[("mcp-protocol", &[("tokio", NORMAL)]), ("tokio", &[])],
        );
        let violations = check(&doc, PROTOCOL_RULE).unwrap();
        assert_eq!(
            violations
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["mcp-protocol -> tokio  (sans-IO)"]
        );
    }

    #[test]
    fn transitive_dependency_fails_with_shortest_path() {
        let doc = metadata(
            &["mcp-protocol"],
            &[
                ("mcp-protocol", &[("serde", NORMAL), ("foo", NORMAL)]),
                ("serde", &[]),
                ("foo", &[("bar", NORMAL), ("tokio", NORMAL)]),
                ("bar", &[("tokio", NORMAL)]),
                ("tokio", &[("mio", NORMAL)]),
                ("mio", &[]),
            ],
        );
        // mio is only reachable through tokio, which is already reported.
        assert_eq!(paths(&doc, PROTOCOL_RULE), ["mcp-protocol -> foo -> tokio"]);
    }

    #[test]
    fn build_dependency_counts() {
        let doc = metadata(
            &["mcp-protocol"],
            &[
                ("mcp-protocol", &[("codegen", BUILD)]),
                ("codegen", &[("mio", NORMAL)]),
                ("mio", &[]),
            ],
        );
        assert_eq!(
            paths(&doc, PROTOCOL_RULE),
            ["mcp-protocol -> codegen -> mio"]
        );
    }

    #[test]
    fn dev_dependency_is_allowed() {
        let doc = metadata(
            &["mcp-protocol", "mcp-core"],
            &[
                ("mcp-protocol", &[("tokio", DEV), ("mcp-core", NORMAL)]),
                // A dev-dependency of a dependency is not built either.
                ("mcp-core", &[("tokio", DEV)]),
                ("tokio", &[]),
            ],
        );
        assert_eq!(paths(&doc, PROTOCOL_RULE), Vec::<String>::new());
    }

    #[test]
    fn dependency_that_is_both_dev_and_normal_counts() {
        let doc = metadata(
            &["mcp-protocol"],
            &[
                ("mcp-protocol", &[("tokio", &[Some("dev"), None])]),
                ("tokio", &[]),
            ],
        );
        assert_eq!(paths(&doc, PROTOCOL_RULE), ["mcp-protocol -> tokio"]);
    }

    #[test]
    fn all_except_rule_checks_every_other_member() {
        let rules = &[Rule {
            members: Members::AllExcept(&["mcp-python"]),
            forbidden: &["pyo3"],
            reason: "python",
        }];
        let doc = metadata(
            &["mcp-core", "mcp-manager", "mcp-python"],
            &[
                ("mcp-core", &[]),
                (
                    "mcp-manager",
                    &[("mcp-core", NORMAL), ("mcp-python", NORMAL)],
                ),
                ("mcp-python", &[("mcp-core", NORMAL), ("pyo3", NORMAL)]),
                ("pyo3", &[]),
            ],
        );
        assert_eq!(paths(&doc, rules), ["mcp-manager -> mcp-python -> pyo3"]);
    }

    #[test]
    fn renamed_dependency_is_found_by_package_name() {
        let mut doc = metadata(
            &["mcp-protocol"],
            &[("mcp-protocol", &[("tokio", NORMAL)]), ("tokio", &[])],
        );
        doc["resolve"]["nodes"][0]["deps"][0]["name"] = json!("runtime");
        assert_eq!(paths(&doc, PROTOCOL_RULE), ["mcp-protocol -> tokio"]);
    }

    #[test]
    fn unknown_member_in_rule_is_an_error() {
        let doc = metadata(&["mcp-core"], &[("mcp-core", &[])]);
        let err = check(&doc, PROTOCOL_RULE).unwrap_err();
        assert!(err.to_string().contains("\"mcp-protocol\""), "{err}");
    }

    #[test]
    fn metadata_without_resolve_is_an_error() {
        let mut doc = metadata(&["mcp-protocol"], &[("mcp-protocol", &[])]);
        doc["resolve"] = Value::Null;
        assert!(check(&doc, PROTOCOL_RULE).is_err());
    }
}
