//! A server entry's `sandbox`: what a local server's process may reach.

use std::path::PathBuf;

use super::expand;
use super::interpolate::Vars;
use super::reader::{Object, Schema};
use super::report::Report;
use crate::error::ConfigIssue;

const SANDBOX_SCHEMA: Schema = Schema {
    known: &[
        "memoryMb",
        "cpuSeconds",
        "openFiles",
        "processes",
        "read",
        "write",
        "network",
    ],
    foreign: &[],
    synonyms: &[
        ("memory", "memoryMb"),
        ("cpu", "cpuSeconds"),
        ("files", "openFiles"),
        ("readOnly", "read"),
        ("readWrite", "write"),
        ("net", "network"),
    ],
};

/// What a sandboxed server's process may reach (Linux): its entry's
/// `sandbox` object. Any sandbox sets `no_new_privs` (nothing it runs
/// gains privileges, setuid programs included); the rest applies when
/// given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SandboxConfig {
    pub(crate) memory_bytes: Option<u64>,
    pub(crate) cpu_seconds: Option<u64>,
    pub(crate) open_files: Option<u64>,
    pub(crate) processes: Option<u64>,
    pub(crate) filesystem: Option<FilesystemGrants>,
    pub(crate) network: bool,
}

/// The paths a sandboxed server may use; everything else is refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FilesystemGrants {
    /// Read (and run) only: `read`.
    pub read: Vec<PathBuf>,
    /// Read and write: `write`.
    pub write: Vec<PathBuf>,
}

impl SandboxConfig {
    /// `memoryMb`, in bytes: the most memory its processes may each
    /// allocate (their data: heap and private writable mappings;
    /// `RLIMIT_DATA`).
    pub fn memory_bytes(&self) -> Option<u64> {
        self.memory_bytes
    }

    /// `cpuSeconds`: the CPU time each of its processes may use, after
    /// which it is killed (`RLIMIT_CPU`).
    pub fn cpu_seconds(&self) -> Option<u64> {
        self.cpu_seconds
    }

    /// `openFiles`: the file descriptors each of its processes may hold
    /// (`RLIMIT_NOFILE`).
    pub fn open_files(&self) -> Option<u64> {
        self.open_files
    }

    /// `processes`: the processes and threads its user may have
    /// (`RLIMIT_NPROC`; the kernel counts every process of that user, and
    /// does not apply it to root).
    pub fn processes(&self) -> Option<u64> {
        self.processes
    }

    /// The filesystem allow-list (`read`, `write`), when either is given:
    /// then the server reaches only those paths and the system's own
    /// (programs, libraries, `/etc`, a few devices).
    pub fn filesystem(&self) -> Option<&FilesystemGrants> {
        self.filesystem.as_ref()
    }

    /// Whether it may use the network (`network`, default `true`); without,
    /// it runs in a network namespace of its own, with no interface up.
    pub fn network(&self) -> bool {
        self.network
    }
}

/// The largest limit accepted: 2^40 (a terabyte of memory, or 35 000 years
/// of CPU).
const MAX_LIMIT: i64 = 1 << 40;

/// The `sandbox` of the entry `obj`; `remote` when the entry's server is
/// reached over a network or socket rather than run.
pub(crate) fn parse(
    obj: &Object<'_>,
    remote: bool,
    vars: &Vars<'_>,
    report: &mut Report,
) -> Option<SandboxConfig> {
    let field = obj.get("sandbox")?;
    let section = field.object(report)?;
    section.report_unknown(&SANDBOX_SCHEMA, report);
    if remote {
        report.error(
            ConfigIssue::new(
                field.path.as_str(),
                "a sandbox applies only to servers run as local processes (`command`)",
            )
            .with_hint("remove `sandbox`, or run the server locally"),
        );
    }
    let limit = |key: &str, min: i64, report: &mut Report| {
        section
            .get(key)
            .and_then(|field| field.integer(min, MAX_LIMIT, report))
            .and_then(|n| u64::try_from(n).ok())
    };
    let memory_bytes = limit("memoryMb", 1, report).map(|mb| mb.saturating_mul(1 << 20));
    let cpu_seconds = limit("cpuSeconds", 1, report);
    let open_files = limit("openFiles", 3, report);
    let processes = limit("processes", 1, report);
    let paths = |key: &str, report: &mut Report| {
        let field = section.get(key)?;
        let items = field.strings(report)?;
        Some(
            items
                .into_iter()
                .filter_map(|(path, raw)| {
                    let expanded = expand::expand(vars, &path, raw, report)?;
                    let dir = PathBuf::from(&expanded);
                    if dir.is_absolute() {
                        return Some(dir);
                    }
                    report.error(
                        ConfigIssue::new(
                            path.as_str(),
                            format!("\"{expanded}\" is not an absolute path"),
                        )
                        .with_hint(
                            "write the whole path, e.g. \"/home/me/notes\" or \"${HOME}/notes\"",
                        ),
                    );
                    None
                })
                .collect::<Vec<_>>(),
        )
    };
    let read = paths("read", report);
    let write = paths("write", report);
    let filesystem = (read.is_some() || write.is_some()).then(|| FilesystemGrants {
        read: read.unwrap_or_default(),
        write: write.unwrap_or_default(),
    });
    let network = section
        .get("network")
        .and_then(|field| field.bool(report))
        .unwrap_or(true);
    Some(SandboxConfig {
        memory_bytes,
        cpu_seconds,
        open_files,
        processes,
        filesystem,
        network,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::path::PathBuf;

    use super::super::tests::load_entry as load;

    #[test]
    fn every_grant_and_limit_is_read() {
        let config = load(
            r#"{"command": "x", "sandbox": {"memoryMb": 256, "cpuSeconds": 30, "openFiles": 64, "processes": 16,
                "read": ["/opt/tool", "${HOME}/notes"], "write": ["/tmp/work"], "network": false}}"#,
        )
        .unwrap();
        let sandbox = config.server("s").unwrap().sandbox().unwrap();
        assert_eq!(sandbox.memory_bytes(), Some(256 << 20));
        assert_eq!(sandbox.cpu_seconds(), Some(30));
        assert_eq!(sandbox.open_files(), Some(64));
        assert_eq!(sandbox.processes(), Some(16));
        let grants = sandbox.filesystem().unwrap();
        assert_eq!(
            grants.read,
            [PathBuf::from("/opt/tool"), PathBuf::from("/home/me/notes")]
        );
        assert_eq!(grants.write, [PathBuf::from("/tmp/work")]);
        assert!(!sandbox.network());
        // Nothing but the sandbox itself: no filesystem list, network on.
        let config = load(r#"{"command": "x", "sandbox": {}}"#).unwrap();
        let sandbox = config.server("s").unwrap().sandbox().unwrap();
        assert!(sandbox.filesystem().is_none());
        assert!(sandbox.network());
        assert_eq!(sandbox.memory_bytes(), None);
        // An empty list is a grant of nothing but the system's paths.
        let config = load(r#"{"command": "x", "sandbox": {"write": []}}"#).unwrap();
        let grants = config
            .server("s")
            .unwrap()
            .sandbox()
            .unwrap()
            .filesystem()
            .unwrap();
        assert!(grants.read.is_empty() && grants.write.is_empty());
        assert!(
            load(r#"{"command": "x"}"#)
                .unwrap()
                .server("s")
                .unwrap()
                .sandbox()
                .is_none()
        );
    }

    #[test]
    fn bad_sandboxes_are_refused_with_where_and_why() {
        let error = load(r#"{"url": "http://h/mcp", "sandbox": {}}"#).unwrap_err();
        assert!(
            error.contains(
                "mcpServers.s.sandbox: a sandbox applies only to servers run as local processes"
            ),
            "{error}"
        );
        let error = load(r#"{"command": "x", "sandbox": {"read": ["notes"]}}"#).unwrap_err();
        assert!(
            error.contains("mcpServers.s.sandbox.read[0]: \"notes\" is not an absolute path"),
            "{error}"
        );
        let error = load(r#"{"command": "x", "sandbox": {"memoryMb": 0}}"#).unwrap_err();
        assert!(error.contains("mcpServers.s.sandbox.memoryMb"), "{error}");
        let error = load(r#"{"command": "x", "sandbox": {"network": "no"}}"#).unwrap_err();
        assert!(
            error.contains("mcpServers.s.sandbox.network: expected true or false"),
            "{error}"
        );
        let error = load(r#"{"command": "x", "sandbox": true}"#).unwrap_err();
        assert!(
            error.contains("mcpServers.s.sandbox: expected an object"),
            "{error}"
        );
    }
}
