//! The stdio server's own stdin and stdout: when a client spawns it with
//! pipes, it reads and writes them through the reactor (non-blocking while
//! it runs) and leaves them as it found them (blocking again once it has
//! exited), pipes and sockets (as Node.js spawns children) alike; a
//! stdout that is the same pipe as its stderr stays blocking,
//! and the server answers in every case.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-manager");

fn non_blocking(fd: impl AsFd) -> bool {
    let flags = fcntl(fd.as_fd(), FcntlArg::F_GETFL).unwrap();
    OFlag::from_bits_truncate(flags).contains(OFlag::O_NONBLOCK)
}

/// A child that is killed and reaped however the test ends.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The lines the child writes, read on a thread so that a silent child
/// fails the test instead of hanging it.
fn lines(output: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// Initializes the echo server and has it echo `text`; returns the answer
/// line of the call.
fn echo(input: &mut impl Write, answers: &mpsc::Receiver<String>, text: &str) -> String {
    let messages = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#.to_owned(),
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.to_owned(),
        format!(
            r#"{{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{{"name":"echo","arguments":{{"text":"{text}"}}}}}}"#
        ),
    ];
    for message in messages {
        writeln!(input, "{message}").unwrap();
    }
    loop {
        let line = answers
            .recv_timeout(Duration::from_secs(20))
            .expect("an answer from the echo server");
        if line.contains(r#""id":2"#) {
            return line;
        }
    }
}

#[test]
fn pipes_are_served_through_the_reactor_and_left_blocking() {
    let (stdin_read, mut stdin_write) = std::io::pipe().unwrap();
    let (stdout_read, stdout_write) = std::io::pipe().unwrap();
    // Copies of the child's ends: the same open files, so their flags are
    // the child's.
    let child_stdin = stdin_read.try_clone().unwrap();
    let child_stdout = stdout_write.try_clone().unwrap();
    assert!(!non_blocking(&child_stdin) && !non_blocking(&child_stdout));
    let mut child = Reaped(
        Command::new(BIN)
            .args(["builtin", "echo", "--stdio"])
            .stdin(stdin_read)
            .stdout(stdout_write)
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let answers = lines(stdout_read);
    let answer = echo(&mut stdin_write, &answers, "through the reactor");
    assert!(answer.contains("through the reactor"), "{answer}");
    assert!(
        non_blocking(&child_stdin),
        "stdin is read through the reactor"
    );
    assert!(
        non_blocking(&child_stdout),
        "stdout is written through the reactor"
    );

    drop(stdin_write);
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!non_blocking(&child_stdin), "stdin is blocking again");
    assert!(!non_blocking(&child_stdout), "stdout is blocking again");
}

#[test]
fn a_stdout_shared_with_stderr_stays_blocking() {
    let (stdin_read, mut stdin_write) = std::io::pipe().unwrap();
    let (stdout_read, stdout_write) = std::io::pipe().unwrap();
    let child_stdin = stdin_read.try_clone().unwrap();
    let child_stdout = stdout_write.try_clone().unwrap();
    let stderr = stdout_write.try_clone().unwrap();
    let _child = Reaped(
        Command::new(BIN)
            .args(["builtin", "echo", "--stdio"])
            .env("RUST_LOG", "off")
            .stdin(stdin_read)
            .stdout(stdout_write)
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let answers = lines(stdout_read);
    let answer = echo(&mut stdin_write, &answers, "shared with stderr");
    assert!(answer.contains("shared with stderr"), "{answer}");
    assert!(
        non_blocking(&child_stdin),
        "stdin is still read through the reactor"
    );
    assert!(
        !non_blocking(&child_stdout),
        "a stdout shared with stderr blocks"
    );
}

#[test]
fn a_socket_is_served_through_the_reactor_and_left_blocking() {
    // One socket for both stdin and stdout, as libuv gives a child.
    let (ours, theirs) = UnixStream::pair().unwrap();
    let copy = theirs.try_clone().unwrap();
    let mut child = Reaped(
        Command::new(BIN)
            .args(["builtin", "echo", "--stdio"])
            .stdin(std::os::fd::OwnedFd::from(theirs.try_clone().unwrap()))
            .stdout(std::os::fd::OwnedFd::from(theirs))
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let answers = lines(ours.try_clone().unwrap());
    let mut input = ours;
    let answer = echo(&mut input, &answers, "over a socket");
    assert!(answer.contains("over a socket"), "{answer}");
    assert!(
        non_blocking(&copy),
        "the socket is served through the reactor"
    );

    input.shutdown(std::net::Shutdown::Write).unwrap();
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!non_blocking(&copy), "the socket is blocking again");
}

#[test]
fn the_gateway_on_stdio_exits_when_its_input_ends() {
    let mut child = Reaped(
        Command::new(BIN)
            .args(["serve", "--stdio"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut input = child.0.stdin.take().unwrap();
    let answers = lines(child.0.stdout.take().unwrap());
    let requests = [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
    ];
    for request in requests {
        writeln!(input, "{request}").unwrap();
    }
    for id in [1, 2] {
        let answer = answers.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(answer.contains(&format!("\"id\":{id}")), "{answer}");
    }
    // The gateway keeps the session's peer for notifications; the end of
    // input must end the session anyway, well before the 10 s drain.
    drop(input);
    let deadline = std::time::Instant::now() + Duration::from_secs(8);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gateway did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
}
