//! Prompts (`prompts/list`, `prompts/get`) and argument completion
//! (`completion/complete`).

use mcp_protocol::ErrorObject;
use mcp_protocol::mcp::{CompleteParams, CompletionTarget, GetPromptParams};
use serde_json::{Map, Value, json};

use super::call::{Call, Reply, invalid_params};
use super::input::{Ask, Gathered, Input, Memory, Signer};
use super::media;
use super::resources::{self, check_no_cursor};
use super::state::Shared;

/// A prompt argument: name, description, required.
type Argument = (&'static str, &'static str, bool);

/// A prompt as `prompts/list` shows it.
struct PromptSpec {
    name: &'static str,
    description: &'static str,
    arguments: &'static [Argument],
}

const SIMPLE: &str = "test_simple_prompt";
const WITH_ARGUMENTS: &str = "test_prompt_with_arguments";
const WITH_RESOURCE: &str = "test_prompt_with_embedded_resource";
const WITH_IMAGE: &str = "test_prompt_with_image";
const WITH_INPUT: &str = "test_input_required_result_prompt";
/// The prompt `test_trigger_prompt_change` adds and removes.
pub(crate) const DYNAMIC: &str = "test_dynamic_prompt";

const FIXED: [PromptSpec; 5] = [
    PromptSpec {
        name: SIMPLE,
        description: "A prompt without arguments: one user message.",
        arguments: &[],
    },
    PromptSpec {
        name: WITH_ARGUMENTS,
        description: "A prompt that puts its two arguments into its message.",
        arguments: &[
            ("arg1", "First test argument", true),
            ("arg2", "Second test argument", true),
        ],
    },
    PromptSpec {
        name: WITH_RESOURCE,
        description: "A prompt that embeds the resource named by its argument.",
        arguments: &[("resourceUri", "URI of the resource to embed", true)],
    },
    PromptSpec {
        name: WITH_IMAGE,
        description: "A prompt with an image: a 1x1 red PNG.",
        arguments: &[],
    },
    PromptSpec {
        name: WITH_INPUT,
        description: "A prompt that first asks the user for context (2026-07-28 input_required).",
        arguments: &[],
    },
];

const DYNAMIC_SPEC: PromptSpec = PromptSpec {
    name: DYNAMIC,
    description: "A prompt that test_trigger_prompt_change adds and removes.",
    arguments: &[],
};

/// The prompts listed now, in a fixed order.
fn prompts(shared: &Shared) -> Vec<&'static PromptSpec> {
    let mut prompts: Vec<&PromptSpec> = FIXED.iter().collect();
    if shared.lock().dynamic_prompt {
        prompts.push(&DYNAMIC_SPEC);
    }
    prompts
}

/// `prompts/list`.
pub(crate) fn list(shared: &Shared, call: &Call) -> Result<Reply, ErrorObject<'static>> {
    check_no_cursor(call)?;
    let prompts: Vec<Value> = prompts(shared)
        .into_iter()
        .map(|prompt| {
            let arguments: Vec<Value> = prompt
                .arguments
                .iter()
                .map(|(name, description, required)| {
                    json!({ "name": name, "description": description, "required": required })
                })
                .collect();
            json!({ "name": prompt.name, "description": prompt.description, "arguments": arguments })
        })
        .collect();
    Ok(Reply::Complete(json!({ "prompts": prompts })))
}

/// A user message with `content`.
fn user(content: Value) -> Value {
    json!({ "role": "user", "content": content })
}

/// Text content.
pub(crate) fn text(text: &str) -> Value {
    json!({ "type": "text", "text": text })
}

/// Image content: the red pixel.
pub(crate) fn image() -> Value {
    json!({ "type": "image", "data": media::RED_PIXEL_PNG, "mimeType": media::PNG })
}

/// `prompts/get`.
pub(crate) fn get(
    shared: &Shared,
    signer: &Signer,
    call: &Call,
) -> Result<Reply, ErrorObject<'static>> {
    let params: GetPromptParams<'static> = call.view()?;
    let spec = prompts(shared)
        .into_iter()
        .find(|prompt| prompt.name == params.name)
        .ok_or_else(|| invalid_params(format!("Unknown prompt: {}", params.name)))?;
    let arguments = string_arguments(params.arguments.as_ref().map(|raw| raw.get()))?;
    for (name, _, required) in spec.arguments {
        if *required && !arguments.contains_key(*name) {
            return Err(invalid_params(format!(
                "Missing required argument `{name}` of prompt `{}`",
                spec.name
            )));
        }
    }
    let argument = |name: &str| {
        arguments
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let messages = match spec.name {
        WITH_ARGUMENTS => vec![user(text(&format!(
            "Prompt with arguments: arg1='{}', arg2='{}'",
            argument("arg1"),
            argument("arg2")
        )))],
        WITH_RESOURCE => vec![
            user(json!({
                "type": "resource",
                "resource": {
                    "uri": argument("resourceUri"),
                    "mimeType": "text/plain",
                    "text": "Embedded resource content for testing.",
                },
            })),
            user(text("Please process the embedded resource above.")),
        ],
        WITH_IMAGE => vec![user(image()), user(text("Please analyze the image above."))],
        WITH_INPUT => {
            let schema = json!({
                "type": "object",
                "properties": { "context": { "type": "string" } },
                "required": ["context"],
            });
            let asks = [Ask::elicit(
                "user_context",
                "What context should the prompt use?",
                schema,
            )];
            let input = Input::read(call, signer, WITH_INPUT, Memory::Ephemeral)?;
            let answers = match input.gather(&[&asks])? {
                Gathered::Need(reply) => return Ok(reply),
                Gathered::Done(answers) => answers,
            };
            let context = answers
                .get("user_context")
                .and_then(|answer| answer.pointer("/content/context"))
                .and_then(Value::as_str)
                .unwrap_or("(none given)");
            vec![user(text(&format!("Use this context: {context}")))]
        }
        DYNAMIC => vec![user(text(
            "This prompt was added by test_trigger_prompt_change.",
        ))],
        _ => vec![user(text("This is a simple prompt for testing."))],
    };
    Ok(Reply::Complete(
        json!({ "description": spec.description, "messages": messages }),
    ))
}

/// Prompt arguments: an object of strings.
fn string_arguments(raw: Option<&str>) -> Result<Map<String, Value>, ErrorObject<'static>> {
    let arguments = match raw.map(serde_json::from_str::<Value>) {
        None => return Ok(Map::new()),
        Some(Ok(Value::Object(arguments))) => arguments,
        Some(_) => return Err(invalid_params("`arguments` must be an object")),
    };
    match arguments.iter().find(|(_, value)| !value.is_string()) {
        Some((name, _)) => Err(invalid_params(format!(
            "prompt argument `{name}` must be a string"
        ))),
        None => Ok(arguments),
    }
}

/// The values a prompt argument or template variable can take.
fn candidates(target: CompletionTarget<'_>, argument: &str) -> Option<&'static [&'static str]> {
    const NONE: &[&str] = &[];
    match target {
        CompletionTarget::Prompt(WITH_ARGUMENTS) => Some(match argument {
            "arg1" => &["test", "testing", "tested", "value1", "value2"],
            "arg2" => &["hello", "help", "world"],
            _ => NONE,
        }),
        CompletionTarget::Prompt(WITH_RESOURCE) => Some(match argument {
            "resourceUri" => &[
                resources::STATIC_TEXT,
                resources::STATIC_BINARY,
                resources::WATCHED,
            ],
            _ => NONE,
        }),
        CompletionTarget::Prompt(name) if FIXED.iter().any(|p| p.name == name) => Some(NONE),
        CompletionTarget::Prompt(DYNAMIC) => Some(NONE),
        CompletionTarget::ResourceTemplate(resources::TEMPLATE) => Some(match argument {
            "id" => &["1", "2", "3", "42", "123"],
            _ => NONE,
        }),
        CompletionTarget::Prompt(_) | CompletionTarget::ResourceTemplate(_) => None,
    }
}

/// `completion/complete`: the candidates that start with the typed value,
/// ignoring case.
pub(crate) fn complete(call: &Call) -> Result<Reply, ErrorObject<'static>> {
    let params: CompleteParams<'static> = call.view()?;
    let target = params.reference.target().ok_or_else(|| {
        invalid_params(
            "`ref` must be a `ref/prompt` with a `name` or a `ref/resource` with a `uri`",
        )
    })?;
    let argument: Value = params
        .argument
        .parse()
        .map_err(|_| invalid_params("`argument` must be an object"))?;
    let (Some(name), Some(value)) = (
        argument.get("name").and_then(Value::as_str),
        argument.get("value").and_then(Value::as_str),
    ) else {
        return Err(invalid_params(
            "`argument` must have a string `name` and a string `value`",
        ));
    };
    let candidates = candidates(target, name).ok_or_else(|| match target {
        CompletionTarget::Prompt(name) => invalid_params(format!("Unknown prompt: {name}")),
        CompletionTarget::ResourceTemplate(uri) => {
            invalid_params(format!("Unknown resource template: {uri}"))
        }
    })?;
    let typed = value.to_lowercase();
    let values: Vec<&str> = candidates
        .iter()
        .copied()
        .filter(|candidate| candidate.to_lowercase().starts_with(&typed))
        .collect();
    Ok(Reply::Complete(json!({
        "completion": { "values": values, "total": values.len(), "hasMore": false },
    })))
}
