//! Tiny components in the component text format, for tests: each exports
//! the world's `handle` over a core module written by hand.

#![allow(dead_code)]

/// A result that does for `initialize`, `tools/list` and `tools/call` at
/// once, so that one fixed answer makes a working (if dull) server.
pub(crate) const ANSWER: &str = r#"{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"wat","version":"1.0.0"},"tools":[{"name":"hello","inputSchema":{"type":"object"}}],"content":[{"type":"text","text":"hello from wat"}]}}"#;

/// A string as a WAT string literal's contents.
fn escape(text: &str) -> String {
    text.bytes().map(|b| format!("\\{b:02x}")).collect()
}

/// A component whose `handle` runs `body` (core WAT instructions that
/// leave nothing on the stack) and then answers `answer`, with `extra`
/// core module fields (functions, a start function) beside it.
pub(crate) fn component(body: &str, answer: &str, extra: &str) -> String {
    format!(
        r#"(component
  (core module $m
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 65536))
    (data (i32.const 16) "{data}")
    (func $grow_to (param $end i32)
      (local $pages i32)
      (local.set $pages (i32.sub
        (i32.shr_u (i32.add (local.get $end) (i32.const 65535)) (i32.const 16))
        (memory.size)))
      (if (i32.gt_s (local.get $pages) (i32.const 0))
        (then (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1))
          (then unreachable)))))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get 3)))
      (call $grow_to (global.get $heap))
      (local.get $p))
    {extra}
    (func (export "handle") (param $ptr i32) (param $len i32) (result i32)
      {body}
      (global.set $heap (i32.const 65536))
      (i32.store8 (i32.const 0) (i32.const 1))
      (i32.store (i32.const 4) (i32.const 16))
      (i32.store (i32.const 8) (i32.const {len}))
      (i32.const 0)))
  (core instance $i (instantiate $m))
  (func (export "handle") (param "message" string) (result (option string))
    (canon lift (core func $i "handle") (memory $i "memory") (realloc (func $i "realloc")))))"#,
        data = escape(answer),
        len = answer.len(),
    )
}

/// Answers every request with [`ANSWER`].
pub(crate) fn answering() -> String {
    component("", ANSWER, "")
}

/// Never returns from `handle`.
pub(crate) fn spinning() -> String {
    component("(loop $forever (br $forever))", ANSWER, "")
}

/// Traps in `handle`.
pub(crate) fn trapping() -> String {
    component("unreachable", ANSWER, "")
}

/// Grows its memory by 1 MiB at a time until it is refused.
pub(crate) fn hungry() -> String {
    component(
        "(loop $more (br_if $more (i32.ne (memory.grow (i32.const 16)) (i32.const -1))))",
        ANSWER,
        "",
    )
}

/// Traps while it starts.
pub(crate) fn trapping_at_start() -> String {
    component("", ANSWER, "(func $boom unreachable) (start $boom)")
}

/// Answers with text that is not JSON.
pub(crate) fn babbling() -> String {
    component("", "this is not json", "")
}
