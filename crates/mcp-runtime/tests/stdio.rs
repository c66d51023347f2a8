//! The runtime against stdio child processes: calls, progress, timeouts,
//! cancellation, crashes, garbage, floods, crash loops, instances, and no
//! process left behind.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod common;

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use common::{Marker, call_text, eventually, fault_spec, params};
use mcp_runtime::{CallOptions, ErrorKind, McpRuntime, ServerState};
use serde_json::{Value, json};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_and_lists() {
    let marker = Marker::new("basic");
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, fault_spec("basic", &marker, &[]))
        .await
        .unwrap();
    let session = handle.session().unwrap();
    assert_eq!(session.server_info.name, "fault-server");
    assert_eq!(session.protocol_version.as_str(), "2025-11-25");

    let text = call_text(
        &handle,
        "echo",
        json!({"text": "hi"}),
        CallOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(text, "hi");
    let tools = handle
        .request("tools/list", None, CallOptions::default())
        .await
        .unwrap();
    let tools: Value = serde_json::from_str(tools.get()).unwrap();
    assert_eq!(tools["tools"].as_array().unwrap().len(), 10);

    // A JSON-RPC error from the server comes back as itself.
    let error = handle
        .request(
            "tools/call",
            params(json!({"name": "nope"})),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::Rpc);
    assert_eq!(error.rpc_error().unwrap().code, -32602);

    let status = runtime.list().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].instances, vec![ServerState::Running]);
    let metrics = runtime.metrics().await.unwrap();
    assert_eq!(metrics.servers[0].requests, 3);
    assert_eq!(metrics.servers[0].errors, 1);

    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_routed_and_resets_the_timeout() {
    let marker = Marker::new("progress");
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, fault_spec("progress", &marker, &[]))
        .await
        .unwrap();
    let (sink, mut progress) = mpsc::channel(16);
    let options = CallOptions {
        // Shorter than the whole call, longer than the gaps between progress.
        timeout: Some(Duration::from_millis(600)),
        progress: Some(sink),
        ..CallOptions::default()
    };
    let call = handle.request(
        "tools/call",
        params(json!({"name": "progress", "arguments": {"steps": 6, "interval": 0.2}, "_meta": {"progressToken": "mine"}})),
        options,
    );
    let result = call.await.unwrap();
    assert!(result.get().contains("progressed"));
    let mut seen = Vec::new();
    while let Ok(notification) = progress.try_recv() {
        let value: Value = serde_json::from_str(notification.params.unwrap().get()).unwrap();
        seen.push((
            value["progressToken"].clone(),
            value["progress"].as_f64().unwrap(),
        ));
    }
    assert_eq!(seen.len(), 6);
    assert!(seen.iter().all(|(token, _)| token == "mine"));
    assert_eq!(seen.last().unwrap().1, 6.0);
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_and_cancellation_reach_the_server() {
    let marker = Marker::new("cancel");
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, fault_spec("cancel", &marker, &[]))
        .await
        .unwrap();

    let started = Instant::now();
    let options = CallOptions {
        timeout: Some(Duration::from_millis(300)),
        ..CallOptions::default()
    };
    let error = call_text(&handle, "hang", json!({}), options)
        .await
        .unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::Timeout);
    assert!(started.elapsed() < Duration::from_secs(3));

    // Dropping a call in flight cancels it upstream.
    let slow = call_text(
        &handle,
        "slow",
        json!({"seconds": 5}),
        CallOptions::default(),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), slow)
            .await
            .is_err()
    );

    let mut count = String::new();
    for _ in 0..100 {
        count = call_text(&handle, "cancelled", json!({}), CallOptions::default())
            .await
            .unwrap();
        if count == "2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count, "2", "the server did not see both cancellations");
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_its_calls_and_comes_back() {
    let marker = Marker::new("kill");
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, fault_spec("kill", &marker, &[]))
        .await
        .unwrap();
    let pid: i32 = call_text(&handle, "pid", json!({}), CallOptions::default())
        .await
        .unwrap()
        .parse()
        .unwrap();

    let slow = tokio::spawn({
        let handle = handle.clone();
        async move {
            call_text(
                &handle,
                "slow",
                json!({"seconds": 30}),
                CallOptions::default(),
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed_at = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let error = slow.await.unwrap().unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::Disconnected, "{error}");
    assert!(error.message().contains("lost"), "{error}");
    assert!(killed_at.elapsed() < Duration::from_secs(5));

    eventually("the server is running again", || {
        handle.states() == [ServerState::Running]
    })
    .await;
    let new_pid: i32 = call_text(&handle, "pid", json!({}), CallOptions::default())
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(runtime.metrics().await.unwrap().servers[0].restarts, 1);
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_stderr_floods_do_not_stop_the_server() {
    let marker = Marker::new("garbage");
    let runtime = McpRuntime::start();
    let handle = common::deploy(
        &runtime,
        fault_spec("garbage", &marker, &["--garbage", "--flood-stderr"]),
    )
    .await
    .unwrap();
    for i in 0..20 {
        let text = call_text(
            &handle,
            "echo",
            json!({"text": i.to_string()}),
            CallOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(text, i.to_string());
    }
    assert_eq!(handle.states(), [ServerState::Running]);
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_ends_in_failed() {
    let marker = Marker::new("loop");
    let runtime = McpRuntime::start();
    // The first start succeeds (deploy returns), then every run dies at once.
    let handle = common::deploy(
        &runtime,
        fault_spec("loop", &marker, &["--exit-after-init"]),
    )
    .await
    .unwrap();
    eventually("the server is given up on", || {
        matches!(handle.states()[..], [ServerState::Failed { .. }])
    })
    .await;
    let ServerState::Failed { reason } = &handle.states()[0] else {
        unreachable!()
    };
    assert!(reason.contains("failed 4 times in a row"), "{reason}");
    // The reason says how the process ended and what it last wrote to stderr.
    assert!(reason.contains("exit status: 1"), "{reason}");
    assert!(
        reason.contains("its last stderr lines: fault server started"),
        "{reason}"
    );
    let error = call_text(&handle, "echo", json!({}), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::Unavailable);
    assert!(error.message().contains("has failed"), "{error}");
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_initializes_fails_to_deploy() {
    let marker = Marker::new("noinit");
    let runtime = McpRuntime::start();
    let mut spec = fault_spec("noinit", &marker, &["--no-init"]);
    spec.timeouts =
        mcp_core::config::Timeouts::new(Duration::from_secs(5), Duration::from_millis(500));
    let server = mcp_runtime::Server::new(runtime.clone(), spec);
    let failed = server.deploy().await.unwrap_err();
    assert_eq!(*failed.error().kind(), ErrorKind::Start);
    assert!(
        failed
            .error()
            .message()
            .contains("did not answer `initialize` within 500 ms"),
        "{}",
        failed.error()
    );
    marker.assert_none_left().await;
    // It can be inspected and retried; it fails the same way.
    let failed = failed.retry().await.unwrap_err();
    assert!(failed.error().message().contains("initialize"));
    assert!(runtime.list().await.unwrap().is_empty());
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_hangs_at_start_is_not_given_the_stop_grace() {
    // A child that neither answers nor reads its stdin (so closing it does
    // not end it): given up after the start-up timeout and terminated at
    // once, not after the grace a server that was serving gets to finish.
    let marker = Marker::new("hang");
    let runtime = McpRuntime::start();
    let args = vec!["-c".to_owned(), format!("sleep 600; : {}", marker.0)];
    let mut spec = common::command_spec("hang", "sh", args);
    spec.timeouts =
        mcp_core::config::Timeouts::new(Duration::from_secs(5), Duration::from_millis(300));
    spec.stop_grace = Duration::from_secs(600);
    let server = mcp_runtime::Server::new(runtime.clone(), spec);
    let failed = tokio::time::timeout(Duration::from_secs(120), server.deploy())
        .await
        .expect("the start failed without waiting out the stop grace")
        .unwrap_err();
    assert!(
        failed.error().message().contains("within 300 ms"),
        "{}",
        failed.error()
    );
    marker.assert_none_left().await;
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_command_is_a_clear_start_error() {
    let runtime = McpRuntime::start();
    let marker = Marker::new("missing");
    let mut spec = fault_spec("missing", &marker, &[]);
    let command = mcp_runtime::transport::stdio::StdioCommand {
        server: spec.id.clone(),
        command: "definitely-not-a-command-xyz".to_owned(),
        args: Vec::new(),
        env: Default::default(),
        cwd: None,
        max_message: 1024,
        sandbox: None,
    };
    spec.connector =
        std::sync::Arc::new(mcp_runtime::transport::stdio::StdioConnector::new(command));
    let error = common::deploy(&runtime, spec).await.unwrap_err();
    assert_eq!(*error.kind(), ErrorKind::Start);
    assert!(
        error
            .message()
            .contains("could not start `definitely-not-a-command-xyz`"),
        "{error}"
    );
    runtime.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_calls_complete() {
    let marker = Marker::new("thousand");
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, fault_spec("thousand", &marker, &[]))
        .await
        .unwrap();
    let calls: Vec<_> = (0..1000)
        .map(|i| {
            let handle = handle.clone();
            tokio::spawn(async move {
                call_text(
                    &handle,
                    "echo",
                    json!({"text": i.to_string()}),
                    CallOptions::default(),
                )
                .await
            })
        })
        .collect();
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap().unwrap(), i.to_string());
    }
    let metrics = runtime.metrics().await.unwrap();
    assert_eq!(
        (metrics.servers[0].requests, metrics.servers[0].errors),
        (1000, 0)
    );
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_the_load_and_keep_sessions() {
    let marker = Marker::new("instances");
    let runtime = McpRuntime::start();
    let mut spec = fault_spec("instances", &marker, &[]);
    spec.instances = NonZeroU32::new(3).unwrap();
    let handle = common::deploy(&runtime, spec).await.unwrap();
    assert_eq!(handle.states().len(), 3);

    // Slow calls go to the least loaded instance: started one after the
    // other, each once the previous one is in flight, they land on three
    // different instances.
    let mut calls = Vec::new();
    for started in 1..=3 {
        let worker = handle.clone();
        calls.push(tokio::spawn(async move {
            let arguments = json!({"seconds": 0.3, "pid": true});
            call_text(&worker, "slow", arguments, CallOptions::default()).await
        }));
        while handle.in_flight() < started {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut pids = HashSet::new();
    for call in calls {
        pids.insert(call.await.unwrap().unwrap());
    }
    assert_eq!(pids.len(), 3, "load was not spread: {pids:?}");

    // A session stays on one instance.
    let session = CallOptions {
        session: Some(7),
        ..CallOptions::default()
    };
    let mut session_pids = HashSet::new();
    for _ in 0..10 {
        session_pids.insert(
            call_text(&handle, "pid", json!({}), session.clone())
                .await
                .unwrap(),
        );
    }
    assert_eq!(session_pids.len(), 1);

    handle.scale(NonZeroU32::new(1).unwrap()).await.unwrap();
    assert_eq!(handle.states().len(), 1);
    handle.scale(NonZeroU32::new(2).unwrap()).await.unwrap();
    assert_eq!(
        handle.states(),
        [ServerState::Running, ServerState::Running]
    );
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_of_the_server_are_stopped_too() {
    let marker = Marker::new("group");
    let runtime = McpRuntime::start();
    let handle = common::deploy(&runtime, fault_spec("group", &marker, &["--spawn-child"]))
        .await
        .unwrap();
    let child: u32 = call_text(&handle, "child_pid", json!({}), CallOptions::default())
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(std::path::Path::new(&format!("/proc/{child}")).exists());
    let server = runtime.server(handle.id()).await.unwrap();
    server.undeploy().await.unwrap();
    eventually("the grandchild is gone", || {
        std::fs::read_to_string(format!("/proc/{child}/stat"))
            .map_or(true, |stat| stat.contains(") Z"))
    })
    .await;
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_runtime_stops_its_servers() {
    let marker = Marker::new("drop");
    {
        let runtime = McpRuntime::start();
        let handle = common::deploy(&runtime, fault_spec("drop", &marker, &[]))
            .await
            .unwrap();
        assert_eq!(marker.processes().len(), 1);
        drop(handle);
        drop(runtime);
    }
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_fails_health_checks_is_restarted() {
    let marker = Marker::new("health");
    let runtime = McpRuntime::start();
    let mut spec = fault_spec("health", &marker, &["--no-ping"]);
    spec.health_interval = Some(Duration::from_millis(200));
    spec.timeouts =
        mcp_core::config::Timeouts::new(Duration::from_millis(300), Duration::from_secs(10));
    let handle = common::deploy(&runtime, spec).await.unwrap();
    let pid = call_text(&handle, "pid", json!({}), CallOptions::default())
        .await
        .unwrap();
    let mut restarted = false;
    for _ in 0..100 {
        if runtime.metrics().await.unwrap().servers[0].restarts > 0 {
            restarted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(restarted, "no restart after failed health checks");
    eventually("the server is running again", || {
        handle.states() == [ServerState::Running]
    })
    .await;
    let new_pid = call_text(&handle, "pid", json!({}), CallOptions::default())
        .await
        .unwrap();
    assert_ne!(new_pid, pid);
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_and_cwd_reach_the_process() {
    let marker = Marker::new("env");
    let runtime = McpRuntime::start();
    let mut spec = fault_spec("env", &marker, &[]);
    let dir = std::env::temp_dir();
    let command = mcp_runtime::transport::stdio::StdioCommand {
        server: spec.id.clone(),
        command: "python3".to_owned(),
        args: vec![common::fixture(), marker.0.clone()],
        env: [("MCP_TEST_VALUE".to_owned(), "forty-two".to_owned())]
            .into_iter()
            .collect(),
        cwd: Some(dir.clone()),
        max_message: 1 << 20,
        sandbox: None,
    };
    spec.connector =
        std::sync::Arc::new(mcp_runtime::transport::stdio::StdioConnector::new(command));
    let handle = common::deploy(&runtime, spec).await.unwrap();
    let value = call_text(
        &handle,
        "env",
        json!({"name": "MCP_TEST_VALUE"}),
        CallOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(value, "forty-two");
    // The manager's own environment is inherited too.
    let path = call_text(
        &handle,
        "env",
        json!({"name": "PATH"}),
        CallOptions::default(),
    )
    .await
    .unwrap();
    assert_ne!(path, "<unset>");
    let cwd = call_text(&handle, "cwd", json!({}), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(
        std::fs::canonicalize(cwd).unwrap(),
        std::fs::canonicalize(dir).unwrap()
    );
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_line_is_skipped() {
    let marker = Marker::new("huge");
    let runtime = McpRuntime::start();
    // The fault spec allows 1 MiB lines; the server prints a 2 MiB one first.
    let handle = common::deploy(&runtime, fault_spec("huge", &marker, &["--huge-line"]))
        .await
        .unwrap();
    let text = call_text(
        &handle,
        "echo",
        json!({"text": "after"}),
        CallOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(text, "after");
    assert_eq!(handle.states(), [ServerState::Running]);
    runtime.shutdown().await;
    marker.assert_none_left().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_during_a_restart_are_held_then_answered_or_timed_out() {
    let marker = Marker::new("held");
    let runtime = McpRuntime::start();
    let mut spec = fault_spec("held", &marker, &[]);
    // A backoff long enough to send requests into.
    spec.restart = mcp_core::config::RestartConfig::new(
        mcp_core::config::RestartPolicy::OnFailure,
        3,
        Duration::from_millis(600),
        Duration::from_millis(600),
    );
    let handle = common::deploy(&runtime, spec).await.unwrap();
    let crashed = call_text(&handle, "crash", json!({}), CallOptions::default()).await;
    assert!(crashed.is_err(), "the crash ended the request");
    eventually("the server is restarting", || {
        matches!(handle.states()[..], [ServerState::Restarting { .. }])
    })
    .await;
    let patient = call_text(
        &handle,
        "echo",
        json!({"text": "held"}),
        CallOptions::default(),
    );
    let hasty = call_text(
        &handle,
        "echo",
        json!({"text": "late"}),
        CallOptions {
            timeout: Some(Duration::from_millis(100)),
            ..CallOptions::default()
        },
    );
    // One whose caller gives up while it is held: dropped, never sent.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(50),
        call_text(&handle, "echo", json!({}), CallOptions::default()),
    );
    let (patient, hasty, abandoned) = tokio::join!(patient, hasty, abandoned);
    assert!(abandoned.is_err(), "its caller stopped waiting");
    assert_eq!(*hasty.unwrap_err().kind(), ErrorKind::Timeout);
    assert!(patient.unwrap().contains("held"));
    runtime.shutdown().await;
    marker.assert_none_left().await;
}
