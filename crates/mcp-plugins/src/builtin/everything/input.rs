//! Asking the client for input the 2026-07-28 way: a result with
//! `resultType: "input_required"` lists `inputRequests` (elicitation,
//! sampling, roots) keyed by name, and the client sends the same request
//! again with `inputResponses` under the same keys, echoing `requestState`.
//!
//! The server keeps nothing between rounds: what it has gathered so far
//! travels in `requestState`, signed so that a client cannot forge or alter
//! it. The signature is a 128-bit keyed SipHash over the state's text, with
//! keys drawn at random when the server is created; it protects this test
//! server's round trips, not secrets.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use mcp_protocol::ErrorObject;
use serde_json::{Map, Value, json};

use super::call::{Call, ClientCapability, Mode, Reply, invalid_params, missing_capabilities};

/// One request to the client.
pub(crate) struct Ask {
    /// The name the answer comes back under.
    pub(crate) key: &'static str,
    /// What the client must support to answer.
    pub(crate) capability: ClientCapability,
    /// The request's params.
    params: Value,
}

impl Ask {
    /// An `elicitation/create` form request.
    pub(crate) fn elicit(key: &'static str, message: &str, schema: Value) -> Self {
        Self {
            key,
            capability: ClientCapability::Elicitation,
            params: json!({ "message": message, "requestedSchema": schema }),
        }
    }

    /// A `sampling/createMessage` request with one user message.
    pub(crate) fn sample(key: &'static str, text: &str, max_tokens: u32) -> Self {
        Self {
            key,
            capability: ClientCapability::Sampling,
            params: json!({
                "messages": [{ "role": "user", "content": { "type": "text", "text": text } }],
                "maxTokens": max_tokens,
            }),
        }
    }

    /// A `roots/list` request.
    pub(crate) fn roots(key: &'static str) -> Self {
        Self {
            key,
            capability: ClientCapability::Roots,
            params: json!({}),
        }
    }

    /// The request as it appears in `inputRequests`.
    pub(crate) fn request(&self) -> Value {
        json!({ "method": self.capability.method(), "params": self.params })
    }

    /// Checks that `answer` has the shape of a result of this request.
    fn check(&self, answer: &Value) -> Result<(), &'static str> {
        let object = answer.as_object().ok_or("must be an object")?;
        match self.capability {
            ClientCapability::Elicitation => {
                let action = object.get("action").and_then(Value::as_str);
                if !matches!(action, Some("accept" | "decline" | "cancel")) {
                    return Err("must have an `action` of accept, decline or cancel");
                }
                if object.get("content").is_some_and(|c| !c.is_object()) {
                    return Err("must have an object as `content`");
                }
            }
            ClientCapability::Sampling => {
                if !object
                    .get("content")
                    .is_some_and(|c| c.is_object() || c.is_array())
                {
                    return Err("must be a sampling result with `content`");
                }
            }
            ClientCapability::Roots => {
                let roots = object.get("roots").and_then(Value::as_array);
                let valid = roots.is_some_and(|roots| {
                    roots
                        .iter()
                        .all(|root| root.get("uri").is_some_and(Value::is_string))
                });
                if !valid {
                    return Err("must have a `roots` array of objects with a `uri`");
                }
            }
        }
        Ok(())
    }
}

/// The text of a sampling answer: its first text content.
pub(crate) fn sampled_text(answer: &Value) -> &str {
    let content = answer.get("content");
    let blocks = match content {
        Some(Value::Array(blocks)) => blocks.iter().collect(),
        Some(block) => vec![block],
        None => Vec::new(),
    };
    blocks
        .into_iter()
        .find(|block| block.get("type").and_then(Value::as_str) == Some("text"))
        .and_then(|block| block.get("text"))
        .and_then(Value::as_str)
        .unwrap_or("(no text)")
}

/// An elicitation answer as `action=..., content={...}`.
pub(crate) fn elicited(answer: &Value) -> String {
    let action = answer
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let content = answer.get("content").cloned().unwrap_or_else(|| json!({}));
    format!("action={action}, content={content}")
}

/// The roots of a `roots/list` answer as `uri (name), ...`.
pub(crate) fn listed_roots(answer: &Value) -> String {
    let roots: Vec<String> = answer
        .get("roots")
        .and_then(Value::as_array)
        .map(|roots| {
            roots
                .iter()
                .filter_map(|root| {
                    let uri = root.get("uri")?.as_str()?;
                    Some(match root.get("name").and_then(Value::as_str) {
                        Some(name) => format!("{uri} ({name})"),
                        None => uri.to_owned(),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    if roots.is_empty() {
        "none".to_owned()
    } else {
        roots.join(", ")
    }
}

/// Signs and checks `requestState`.
pub(crate) struct Signer {
    keys: [RandomState; 2],
}

impl Signer {
    /// A signer with fresh random keys.
    pub(crate) fn new() -> Self {
        Self {
            keys: [RandomState::new(), RandomState::new()],
        }
    }

    fn tag(&self, text: &str) -> String {
        let [first, second] = &self.keys;
        let mac = |keys: &RandomState| {
            let mut hasher = keys.build_hasher();
            hasher.write(text.as_bytes());
            hasher.finish()
        };
        format!("{:016x}{:016x}", mac(first), mac(second))
    }

    /// `payload` as an opaque, signed string.
    pub(crate) fn sign(&self, payload: &Value) -> String {
        let text = payload.to_string();
        format!("{}.{}", hex_encode(text.as_bytes()), self.tag(&text))
    }

    /// The payload of a state this signer made; `None` for anything else.
    pub(crate) fn open(&self, state: &str) -> Option<Value> {
        let (body, tag) = state.split_once('.')?;
        let text = String::from_utf8(hex_decode(body)?).ok()?;
        let expected = self.tag(&text);
        // Compare without stopping at the first difference.
        let same = expected.len() == tag.len()
            && expected
                .bytes()
                .zip(tag.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0;
        if same {
            serde_json::from_str(&text).ok()
        } else {
            None
        }
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// How a request remembers what it gathered between rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Memory {
    /// Not at all: no `requestState`; answers count only in the round that
    /// carries them.
    Ephemeral,
    /// In a signed `requestState`.
    Signed,
    /// In a signed `requestState`, and answers count only when the state
    /// is echoed with them.
    SignedRequired,
}

/// What one round of a request brought.
pub(crate) struct Input<'a> {
    call: &'a Call,
    signer: &'a Signer,
    name: &'a str,
    memory: Memory,
    responses: Map<String, Value>,
    /// The stage and the answers the echoed state carries.
    state: Option<(usize, Map<String, Value>)>,
}

/// The end of gathering: every answer, or the result that asks for more.
pub(crate) enum Gathered {
    /// Every answer, by key.
    Done(Map<String, Value>),
    /// The `input_required` reply.
    Need(Reply),
}

impl<'a> Input<'a> {
    /// Reads `inputResponses` and `requestState` from the request `name`
    /// (a tool or prompt name).
    ///
    /// # Errors
    ///
    /// `-32602` when `inputResponses` is not an object, or `requestState`
    /// is not a string this server signed for this request.
    pub(crate) fn read(
        call: &'a Call,
        signer: &'a Signer,
        name: &'a str,
        memory: Memory,
    ) -> Result<Self, ErrorObject<'static>> {
        let responses = match call.param("inputResponses") {
            None => Map::new(),
            Some(Value::Object(responses)) => responses,
            Some(_) => return Err(invalid_params("`inputResponses` must be an object")),
        };
        let state = match call.param("requestState") {
            None => None,
            Some(Value::String(state)) => Some(open_state(signer, &state, name)?),
            Some(_) => return Err(invalid_params("`requestState` must be a string")),
        };
        let responses = if memory == Memory::SignedRequired && state.is_none() {
            Map::new()
        } else {
            responses
        };
        Ok(Self {
            call,
            signer,
            name,
            memory,
            responses,
            state,
        })
    }

    /// Gathers the answers to `stages`, asked one stage after the other.
    ///
    /// # Errors
    ///
    /// `-32602` for an answer of the wrong shape or a state of a stage that
    /// does not exist; `-32021` when a question needs a capability the
    /// client did not declare.
    pub(crate) fn gather(&self, stages: &[&[Ask]]) -> Result<Gathered, ErrorObject<'static>> {
        let (first, mut answers) = self.state.clone().unwrap_or_default();
        if first >= stages.len() {
            return Err(invalid_params(
                "`requestState` names a step that does not exist",
            ));
        }
        for (stage, asks) in stages.iter().enumerate().skip(first) {
            let mut missing = Vec::new();
            for ask in asks.iter() {
                if answers.contains_key(ask.key) {
                    continue;
                }
                match self.responses.get(ask.key) {
                    Some(answer) => {
                        ask.check(answer).map_err(|reason| {
                            invalid_params(format!("`inputResponses.{}` {reason}", ask.key))
                        })?;
                        answers.insert(ask.key.to_owned(), answer.clone());
                    }
                    None => missing.push(ask),
                }
            }
            if !missing.is_empty() {
                return self.ask(stage, &missing, answers).map(Gathered::Need);
            }
        }
        Ok(Gathered::Done(answers))
    }

    /// The `input_required` reply asking `missing`.
    fn ask(
        &self,
        stage: usize,
        missing: &[&Ask],
        answers: Map<String, Value>,
    ) -> Result<Reply, ErrorObject<'static>> {
        if let Mode::Stateless { capabilities, .. } = &self.call.mode {
            let mut undeclared: Vec<ClientCapability> = missing
                .iter()
                .map(|ask| ask.capability)
                .filter(|capability| !capability.declared_in(capabilities))
                .collect();
            undeclared.dedup();
            if !undeclared.is_empty() {
                return Err(missing_capabilities(&undeclared));
            }
        }
        let requests: Map<String, Value> = missing
            .iter()
            .map(|ask| (ask.key.to_owned(), ask.request()))
            .collect();
        let mut input = Map::new();
        input.insert("inputRequests".to_owned(), Value::Object(requests));
        if self.memory != Memory::Ephemeral {
            let payload = json!({ "name": self.name, "stage": stage, "answers": answers });
            input.insert("requestState".to_owned(), json!(self.signer.sign(&payload)));
        }
        Ok(Reply::InputRequired(Value::Object(input)))
    }
}

/// Checks an echoed state and returns its stage and answers.
fn open_state(
    signer: &Signer,
    state: &str,
    name: &str,
) -> Result<(usize, Map<String, Value>), ErrorObject<'static>> {
    let payload = signer
        .open(state)
        .ok_or_else(|| invalid_params("`requestState` failed its integrity check"))?;
    if payload.get("name").and_then(Value::as_str) != Some(name) {
        return Err(invalid_params("`requestState` belongs to another request"));
    }
    let stage = payload
        .get("stage")
        .and_then(Value::as_u64)
        .and_then(|stage| usize::try_from(stage).ok())
        .unwrap_or_default();
    let answers = match payload.get("answers") {
        Some(Value::Object(answers)) => answers.clone(),
        _ => Map::new(),
    };
    Ok((stage, answers))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_resist_tampering() {
        let signer = Signer::new();
        let payload = json!({ "name": "x", "stage": 1, "answers": { "a": "b.c" } });
        let state = signer.sign(&payload);
        assert_eq!(signer.open(&state), Some(payload));
        assert_eq!(signer.open(&format!("{state}-TAMPERED")), None);
        assert_eq!(signer.open(&format!("00{state}")), None);
        assert_eq!(Signer::new().open(&state), None);
        assert_eq!(signer.open("zz.00"), None);
        assert_eq!(signer.open("no-dot"), None);
    }
}
