//! Real processes in real sandboxes: `/bin/sh` and the tools of the
//! system, run by `std::process::Command`.

use std::process::{Command, Output};

use mcp_core::ManagerConfig;
use mcp_core::config::SandboxConfig;

use super::*;

/// The sandbox of a config entry `{"command": "sh", "sandbox": SANDBOX}`.
fn config(sandbox: &str) -> SandboxConfig {
    let text = format!(r#"{{"mcpServers": {{"s": {{"command": "sh", "sandbox": {sandbox}}}}}}}"#);
    let config = ManagerConfig::from_json_str(&text, None, &|_: &str| None).unwrap();
    config.server("s").unwrap().sandbox().unwrap().clone()
}

/// `sh -c SCRIPT` in the sandbox `config` describes.
fn run(sandbox: &str, script: &str) -> Output {
    let mut command = Command::new("/bin/sh");
    command.args(["-c", script]);
    Sandbox::prepare(&config(sandbox))
        .unwrap()
        .confine(&mut command);
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn no_new_privs_and_the_limits_are_set() {
    let out = run(
        r#"{"memoryMb": 64, "cpuSeconds": 7, "openFiles": 40}"#,
        "grep NoNewPrivs /proc/self/status; ulimit -d; ulimit -t; ulimit -n",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "NoNewPrivs:\t1\n65536\n7\n40\n");
    // Without a sandbox, none of it.
    let out = Command::new("/bin/sh")
        .args(["-c", "grep NoNewPrivs /proc/self/status"])
        .output()
        .unwrap();
    assert_eq!(text(&out.stdout), "NoNewPrivs:\t0\n");
}

#[test]
fn too_many_open_files_is_an_error_for_the_child_only() {
    // Descriptors 0 to 2 are taken; the tenth file cannot be opened.
    let out = run(
        r#"{"openFiles": 10}"#,
        "exec 3</dev/null 4</dev/null 5</dev/null 6</dev/null 7</dev/null 8</dev/null 9</dev/null && echo nine; exec 10</dev/null && echo ten",
    );
    assert_eq!(text(&out.stdout), "nine\n");
    assert!(!text(&out.stderr).is_empty());
}

#[test]
fn without_network_only_a_loopback_interface_is_there() {
    let out = run(r#"{"network": false}"#, "cat /proc/self/net/dev");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let interfaces: Vec<String> = text(&out.stdout)
        .lines()
        .skip(2)
        .filter_map(|line| line.split(':').next())
        .map(|name| name.trim().to_owned())
        .collect();
    assert_eq!(interfaces, ["lo"]);
    // With it, the manager's own interfaces.
    let out = run(r#"{}"#, "cat /proc/self/net/dev");
    assert!(text(&out.stdout).lines().count() >= 3);
}

#[test]
fn the_filesystem_is_what_was_granted() {
    if landlock_abi().is_err() {
        eprintln!("skipped: this kernel has no Landlock");
        return;
    }
    let granted = tempfile::tempdir().unwrap();
    let readable = tempfile::tempdir().unwrap();
    let secret = tempfile::tempdir().unwrap();
    std::fs::write(readable.path().join("notes"), "readable").unwrap();
    std::fs::write(secret.path().join("key"), "secret").unwrap();
    let sandbox = format!(
        r#"{{"read": ["{}"], "write": ["{}"]}}"#,
        readable.path().display(),
        granted.path().display()
    );
    let script = format!(
        "cat {readable}/notes; echo; \
         echo made > {granted}/new && cat {granted}/new; \
         cat {secret}/key || echo refused-read; \
         echo no > {readable}/other || echo refused-write; \
         rm {readable}/notes || echo refused-remove; \
         ls /usr/bin >/dev/null && echo system",
        readable = readable.path().display(),
        granted = granted.path().display(),
        secret = secret.path().display(),
    );
    let out = run(&sandbox, &script);
    assert_eq!(
        text(&out.stdout),
        "readable\nmade\nrefused-read\nrefused-write\nrefused-remove\nsystem\n",
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stderr).contains("Permission denied"),
        "{}",
        text(&out.stderr)
    );
    assert!(secret.path().join("key").exists());
    assert!(readable.path().join("notes").exists());
}

#[test]
fn a_grant_that_does_not_exist_is_an_error() {
    if landlock_abi().is_err() {
        return;
    }
    let error = Sandbox::prepare(&config(r#"{"read": ["/nonexistent/mcp-sandbox"]}"#)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot grant /nonexistent/mcp-sandbox: No such file or directory (os error 2)"
    );
}

/// A user that may not make a network namespace gets one inside a user
/// namespace of its own: the test above, run again as `nobody` (when this
/// runs as root, with util-linux's `setpriv`).
#[test]
fn without_network_as_a_user_without_privileges() {
    if !nix::unistd::geteuid().is_root() || Command::new("setpriv").arg("--help").output().is_err()
    {
        eprintln!("skipped: needs root and setpriv to become nobody");
        return;
    }
    let me = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&me)
        .args([
            "--exact",
            "tests::without_network_only_a_loopback_interface_is_there",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// Without network, no Unix socket either: those with a path cross network
/// namespaces. A socket pair, which reaches nothing outside, still works.
#[test]
fn without_network_no_unix_socket_can_be_made() {
    let Ok(python) = which("python3") else {
        eprintln!("skipped: no python3");
        return;
    };
    let script = "import socket\n\
        a, b = socket.socketpair(); print('pair')\n\
        try:\n    socket.socket(socket.AF_UNIX); print('unix')\n\
        except PermissionError as e:\n    print('refused', e.errno)\n\
        socket.socket(socket.AF_INET); print('inet')\n";
    let mut command = Command::new(&python);
    command.args(["-c", script]);
    Sandbox::prepare(&config(r#"{"network": false}"#))
        .unwrap()
        .confine(&mut command);
    let out = command.output().unwrap();
    assert_eq!(
        text(&out.stdout),
        "pair\nrefused 13\ninet\n",
        "{}",
        text(&out.stderr)
    );
    // With the network, Unix sockets are the manager's business.
    let mut command = Command::new(&python);
    command.args(["-c", script]);
    Sandbox::prepare(&config("{}"))
        .unwrap()
        .confine(&mut command);
    let out = command.output().unwrap();
    assert_eq!(
        text(&out.stdout),
        "pair\nunix\ninet\n",
        "{}",
        text(&out.stderr)
    );
}

/// The first `name` on `PATH`.
fn which(name: &str) -> Result<PathBuf, ()> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
        .ok_or(())
}
