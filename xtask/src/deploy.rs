//! `cargo xtask ci deploy`: what deploys the gateway is checked, not just
//! kept: every manifest of `deploy/kubernetes/` is validated against the
//! Kubernetes schemas with `kubernetes-validate` (from the peers' venv,
//! strictly: an unknown field fails) for the oldest version the manifests
//! need (1.30: the `sleep` action of `preStop`) and the newest it knows;
//! `kustomization.yaml` must list exactly those manifests; and the
//! `Containerfile` must keep its shape: a build stage and a final stage
//! that copies the binary alone, runs it as a user that is not root, and
//! runs nothing else (a distroless stage has no shell).

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::shell;

/// The oldest Kubernetes the manifests are for.
const OLDEST: &str = "1.30.0";

pub(crate) fn run() -> Result<()> {
    let root = shell::root();
    let dir = root.join("deploy").join("kubernetes");
    let manifests = manifests(&dir)?;
    kustomization(&dir, &manifests)?;
    let validate = root.join(".tools/venv/bin/kubernetes-validate");
    if !validate.exists() {
        bail!("{} is missing: run `cargo xtask peers`", validate.display());
    }
    for version in [Some(OLDEST), None] {
        let mut cmd = shell::command(&validate);
        cmd.arg("--strict").arg("--no-warn");
        if let Some(version) = version {
            cmd.args(["-k", version]);
        }
        cmd.args(manifests.iter().map(|name| dir.join(name)));
        shell::run(&mut cmd).context("a Kubernetes manifest does not validate")?;
    }
    containerfile(&root.join("Containerfile"))?;
    println!(
        "deploy: {} manifests valid for Kubernetes {OLDEST} and the newest schemas; the Containerfile keeps its shape",
        manifests.len()
    );
    Ok(())
}

/// The `.yaml` files of `dir` but `kustomization.yaml`, sorted.
fn manifests(dir: &Path) -> Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    names.sort();
    if names.is_empty() {
        bail!("{} holds no manifests", dir.display());
    }
    Ok(names)
}

/// `kustomization.yaml` lists every manifest of the folder, and nothing
/// else, under `resources:`.
fn kustomization(dir: &Path, manifests: &[String]) -> Result<()> {
    let path = dir.join("kustomization.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut listed = resources(&text);
    listed.sort();
    if listed != manifests {
        bail!(
            "{} lists {listed:?} under `resources:`, the folder holds {manifests:?}",
            path.display()
        );
    }
    Ok(())
}

/// The items of the top-level `resources:` list of a kustomization.
fn resources(text: &str) -> Vec<String> {
    let mut items = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("resources:") {
            inside = true;
            continue;
        }
        if inside {
            match line.trim_start().strip_prefix("- ") {
                Some(item) if line.starts_with(' ') => items.push(item.trim().to_owned()),
                _ if line.trim().is_empty() || line.trim_start().starts_with('#') => {}
                _ => inside = false,
            }
        }
    }
    items
}

/// The shape of the image: two stages or more, the last one copying the
/// binary alone from an earlier one, with a user that is not root and no
/// `RUN`.
fn containerfile(path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let problems = containerfile_problems(&text);
    if !problems.is_empty() {
        bail!("{}: {}", path.display(), problems.join("; "));
    }
    Ok(())
}

fn containerfile_problems(text: &str) -> Vec<String> {
    let instructions: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let stages = instructions
        .iter()
        .filter(|line| line.starts_with("FROM "))
        .count();
    let last = instructions
        .iter()
        .rposition(|line| line.starts_with("FROM "))
        .and_then(|at| instructions.get(at..))
        .unwrap_or_default();
    let mut problems = Vec::new();
    if stages < 2 {
        problems.push("it is not multi-stage (a build stage, then the image)".to_owned());
    }
    let copies: Vec<&&str> = last.iter().filter(|l| l.starts_with("COPY ")).collect();
    let only_binary = copies.len() == 1
        && copies
            .iter()
            .all(|line| line.contains("--from=") && line.ends_with("/mcp-manager"));
    if !only_binary {
        problems.push(
            "its image stage must copy the mcp-manager binary alone, from the build stage"
                .to_owned(),
        );
    }
    let user = last
        .iter()
        .rev()
        .find_map(|line| line.strip_prefix("USER "))
        .map(str::trim);
    match user {
        Some(user) if !user.starts_with("0") && !user.starts_with("root") => {}
        _ => problems.push("its image must run as a user that is not root (USER)".to_owned()),
    }
    if last.iter().any(|line| line.starts_with("RUN ")) {
        problems.push("its image stage runs commands: it has no shell to run them".to_owned());
    }
    if !last
        .iter()
        .any(|line| line.starts_with("ENTRYPOINT [\"/usr/local/bin/mcp-manager\"]"))
    {
        problems.push("its ENTRYPOINT must be the binary, in exec form".to_owned());
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_are_read_from_the_kustomization() {
        let text =
            "kind: Kustomization\nresources:\n  - a.yaml\n  # note\n  - b.yaml\nlabels:\n  - x\n";
        assert_eq!(resources(text), vec!["a.yaml", "b.yaml"]);
    }

    #[test]
    fn the_containerfile_shape_is_checked() {
        let good = "FROM rust AS build\nRUN cargo build\nFROM distroless\nCOPY --from=build /src/target/release/mcp-manager /usr/local/bin/mcp-manager\nUSER 65532:65532\nENTRYPOINT [\"/usr/local/bin/mcp-manager\"]\n";
        assert!(containerfile_problems(good).is_empty());
        let root = good.replace("USER 65532:65532", "USER root");
        assert_eq!(containerfile_problems(&root).len(), 1);
        let single =
            "FROM distroless\nCOPY mcp-manager /usr/local/bin/mcp-manager\nRUN chmod +x x\n";
        assert!(containerfile_problems(single).len() >= 4);
        let shell = good.replace("USER", "RUN rm -rf /tmp\nUSER");
        assert_eq!(containerfile_problems(&shell).len(), 1);
    }

    #[test]
    fn the_committed_files_pass() {
        let root = shell::root();
        let text = std::fs::read_to_string(root.join("Containerfile")).unwrap_or_default();
        assert_eq!(containerfile_problems(&text), Vec::<String>::new());
        let dir = root.join("deploy").join("kubernetes");
        let manifests = manifests(&dir).unwrap_or_default();
        assert!(kustomization(&dir, &manifests).is_ok());
    }
}
