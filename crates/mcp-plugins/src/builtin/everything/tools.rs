//! Tools: `tools/list` and `tools/call`.

use std::sync::Arc;
use std::time::Duration;

use mcp_protocol::ErrorObject;
use mcp_protocol::mcp::tasks::{EXTENSION, missing_extension};
use mcp_protocol::mcp::{CallToolParams, LoggingLevel};
use serde_json::{Map, Value, json};

use super::call::{Call, ClientCapability, Mode, Reply, invalid_params};
use super::input::{Ask, Gathered, Input, Memory, Signer, elicited, listed_roots, sampled_text};
use super::media;
use super::prompts::{image, text};
use super::resources::{self, check_no_cursor};
use super::state::{Change, Shared, State};
use super::tasks::{self, Outcome, Tasks};

/// The input schema of a tool.
enum Schema {
    /// No arguments.
    Empty,
    /// String arguments: name, description, required.
    Strings(&'static [(&'static str, &'static str, bool)]),
    /// The JSON Schema 2020-12 fixture.
    JsonSchema2020,
    /// A schema written out.
    Json(&'static str),
}

impl Schema {
    fn to_json(&self) -> Value {
        match self {
            Self::Empty => json!({ "type": "object", "properties": {} }),
            Self::Strings(arguments) => {
                let properties: Map<String, Value> = arguments
                    .iter()
                    .map(|(name, description, _)| {
                        (
                            (*name).to_owned(),
                            json!({ "type": "string", "description": description }),
                        )
                    })
                    .collect();
                let required: Vec<&str> = arguments
                    .iter()
                    .filter(|(_, _, required)| *required)
                    .map(|(name, _, _)| *name)
                    .collect();
                json!({ "type": "object", "properties": properties, "required": required })
            }
            Self::Json(text) => serde_json::from_str(text).unwrap_or_else(|_| json!({})),
            Self::JsonSchema2020 => json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "type": "object",
                "$defs": {
                    "address": {
                        "$anchor": "addressDef",
                        "type": "object",
                        "properties": {
                            "street": { "type": "string" },
                            "city": { "type": "string" },
                        },
                    },
                },
                "properties": {
                    "name": { "type": "string" },
                    "address": { "$ref": "#/$defs/address" },
                    "contactMethod": { "type": "string", "enum": ["phone", "email"] },
                    "phone": { "type": "string" },
                    "email": { "type": "string" },
                },
                "allOf": [{ "anyOf": [{ "required": ["phone"] }, { "required": ["email"] }] }],
                "if": {
                    "properties": { "contactMethod": { "const": "phone" } },
                    "required": ["contactMethod"],
                },
                "then": { "required": ["phone"] },
                "else": { "required": ["email"] },
                "additionalProperties": false,
            }),
        }
    }
}

/// A tool as `tools/list` shows it.
struct ToolSpec {
    name: &'static str,
    description: &'static str,
    schema: Schema,
    /// Whether the tool leaves the server as it was.
    read_only: bool,
    /// Whether a call may (`optional`) or must (`required`) run as a task;
    /// none for never.
    task_support: Option<&'static str>,
}

/// A read-only tool without arguments.
const fn tool(name: &'static str, description: &'static str) -> ToolSpec {
    ToolSpec {
        name,
        description,
        schema: Schema::Empty,
        read_only: true,
        task_support: None,
    }
}

/// A tool without arguments that changes the server.
const fn trigger(name: &'static str, description: &'static str) -> ToolSpec {
    ToolSpec {
        name,
        description,
        schema: Schema::Empty,
        read_only: false,
        task_support: None,
    }
}

/// A read-only tool with string arguments.
const fn with_strings(
    name: &'static str,
    description: &'static str,
    arguments: &'static [(&'static str, &'static str, bool)],
) -> ToolSpec {
    ToolSpec {
        name,
        description,
        schema: Schema::Strings(arguments),
        read_only: true,
        task_support: None,
    }
}

/// A tool that runs as a task when the client declared the extension.
const fn task_tool(
    name: &'static str,
    description: &'static str,
    schema: Schema,
    support: &'static str,
) -> ToolSpec {
    ToolSpec {
        name,
        description,
        schema,
        read_only: true,
        task_support: Some(support),
    }
}

/// The tool `test_trigger_tool_change` adds and removes.
pub(crate) const DYNAMIC: &str = "test_dynamic_tool";

const TOOLS: [ToolSpec; 36] = [
    tool("test_simple_text", "Returns one text block."),
    tool("test_image_content", "Returns an image: a 1x1 red PNG."),
    tool(
        "test_audio_content",
        "Returns audio: a short WAV of silence.",
    ),
    tool(
        "test_embedded_resource",
        "Returns an embedded text resource.",
    ),
    tool(
        "test_multiple_content_types",
        "Returns text, an image and an embedded resource.",
    ),
    tool(
        "test_tool_with_logging",
        "Sends three info log messages 50 ms apart while it runs.",
    ),
    tool(
        "test_logging_tool",
        "Sends three info log messages while it runs, if the client asked for log messages.",
    ),
    tool(
        "test_tool_with_progress",
        "Reports progress 0, 50 and 100 of 100, 50 ms apart, when the request has a progress token.",
    ),
    tool("test_error_handling", "Always fails, with `isError: true`."),
    with_strings(
        "test_sampling",
        "Asks the client's model to answer a prompt (sampling/createMessage).",
        &[("prompt", "The prompt to send to the model", true)],
    ),
    with_strings(
        "test_elicitation",
        "Asks the user for a username and an email address (elicitation/create).",
        &[("message", "The message to show the user", true)],
    ),
    tool(
        "test_elicitation_sep1034_defaults",
        "Asks the user to fill a form whose fields have default values (SEP-1034).",
    ),
    tool(
        "test_elicitation_sep1330_enums",
        "Asks the user to fill a form with the five kinds of enum fields (SEP-1330).",
    ),
    tool(
        "test_missing_capability",
        "Needs sampling: fails with -32021 when the client did not declare it.",
    ),
    tool(
        "test_streaming_elicitation",
        "Reports progress and a log message, then asks the user to confirm.",
    ),
    tool(
        "test_input_required_result_elicitation",
        "Asks the user's name (input_required), then greets them.",
    ),
    tool(
        "test_input_required_result_sampling",
        "Asks the client's model for the capital of France (input_required).",
    ),
    tool(
        "test_input_required_result_list_roots",
        "Asks the client for its roots (input_required) and lists them.",
    ),
    tool(
        "test_input_required_result_request_state",
        "Asks for a confirmation with a signed requestState, and checks the state when it comes back.",
    ),
    tool(
        "test_input_required_result_multiple_inputs",
        "Asks for a name, a sampled greeting and the roots at once.",
    ),
    tool(
        "test_input_required_result_multi_round",
        "Asks for a name, then a favourite colour, in two rounds.",
    ),
    tool(
        "test_input_required_result_tampered_state",
        "Asks for a confirmation with a signed requestState and rejects an altered one.",
    ),
    tool(
        "test_input_required_result_capabilities",
        "Asks only what the client's declared capabilities allow.",
    ),
    trigger(
        "test_trigger_tool_change",
        "Adds test_dynamic_tool, or removes it, and announces the tool list change.",
    ),
    trigger(
        "test_trigger_prompt_change",
        "Adds test_dynamic_prompt, or removes it, and announces the prompt list change.",
    ),
    trigger(
        "test_trigger_resource_list_change",
        "Adds test://dynamic-resource, or removes it, and announces the resource list change.",
    ),
    ToolSpec {
        name: "test_trigger_resource_update",
        description: "Changes a resource (test://watched-resource unless `uri` says otherwise) and notifies its subscribers.",
        schema: Schema::Strings(&[("uri", "The resource to update", false)]),
        read_only: false,
        task_support: None,
    },
    ToolSpec {
        name: "json_schema_2020_12_tool",
        description: "Has an input schema that uses JSON Schema 2020-12 keywords; echoes its arguments.",
        schema: Schema::JsonSchema2020,
        read_only: true,
        task_support: None,
    },
    ToolSpec {
        name: "test_header_mirroring",
        description: "Has arguments mirrored in HTTP headers (`x-mcp-header`): `region` in Mcp-Param-Region, `priority` in Mcp-Param-Priority; reports them.",
        schema: Schema::Json(
            r#"{"type":"object","properties":{"region":{"type":"string","description":"Where to run","x-mcp-header":"Region"},"priority":{"type":"integer","description":"How urgent","x-mcp-header":"Priority"},"query":{"type":"string","description":"Not mirrored"}},"required":["region"]}"#,
        ),
        read_only: true,
        task_support: None,
    },
    with_strings(
        "greet",
        "Greets someone by name, at once (never a task).",
        &[("name", "Who to greet", true)],
    ),
    task_tool(
        "slow_compute",
        "Waits `seconds` seconds, then reports the computation `label` done; a task when the client declared the tasks extension.",
        Schema::Json(
            r#"{"type":"object","properties":{"seconds":{"type":"number","minimum":0,"maximum":3600,"description":"How long the computation takes"},"label":{"type":"string","description":"What is computed"}}}"#,
        ),
        "optional",
    ),
    task_tool(
        "failing_job",
        "Always ends with a tool error after half a second; must run as a task.",
        Schema::Empty,
        "required",
    ),
    task_tool(
        "protocol_error_job",
        "Always ends with a protocol error (the task fails); a task when the client declared the tasks extension.",
        Schema::Empty,
        "optional",
    ),
    task_tool(
        "confirm_delete",
        "Asks the user to confirm the deletion of `filename`, then reports it deleted or kept.",
        Schema::Strings(&[("filename", "The file to delete", false)]),
        "optional",
    ),
    task_tool(
        "multi_input",
        "Asks two questions at once (a name and a confirmation), then reports both answers.",
        Schema::Empty,
        "optional",
    ),
    task_tool(
        "test_tool_with_task",
        "Asks the user's name (input_required), then greets them from a task; must run as a task.",
        Schema::Empty,
        "required",
    ),
];

const DYNAMIC_SPEC: ToolSpec = tool(
    DYNAMIC,
    "A tool that test_trigger_tool_change adds and removes.",
);

/// The tools listed now, in a fixed order.
fn tools(shared: &Shared) -> Vec<&'static ToolSpec> {
    let mut tools: Vec<&ToolSpec> = TOOLS.iter().collect();
    if shared.lock().dynamic_tool {
        tools.push(&DYNAMIC_SPEC);
    }
    tools
}

/// `tools/list`.
pub(crate) fn list(shared: &Shared, call: &Call) -> Result<Reply, ErrorObject<'static>> {
    check_no_cursor(call)?;
    let tools: Vec<Value> = tools(shared)
        .into_iter()
        .map(|tool| {
            let mut listed = json!({
                "name": tool.name,
                "description": tool.description,
                "inputSchema": tool.schema.to_json(),
                "annotations": { "readOnlyHint": tool.read_only },
            });
            if let (Some(support), Value::Object(listed)) = (tool.task_support, &mut listed) {
                listed.insert("execution".to_owned(), json!({ "taskSupport": support }));
            }
            listed
        })
        .collect();
    Ok(Reply::Complete(json!({ "tools": tools })))
}

/// A successful tool result with `content`.
fn content(content: Vec<Value>) -> Reply {
    Reply::Complete(json!({ "content": content }))
}

/// A successful tool result with one text block.
fn say(message: &str) -> Reply {
    content(vec![text(message)])
}

/// A failed tool result with one text block.
fn fail(message: &str) -> Reply {
    Reply::Complete(json!({ "content": [text(message)], "isError": true }))
}

/// An embedded text resource.
fn embedded(uri: &str, mime: &str, body: &str) -> Value {
    json!({ "type": "resource", "resource": { "uri": uri, "mimeType": mime, "text": body } })
}

/// The request and the tool's arguments.
struct ToolCall<'a> {
    shared: &'a Shared,
    signer: &'a Signer,
    call: &'a Call,
    name: &'a str,
    arguments: Map<String, Value>,
}

impl ToolCall<'_> {
    /// The string argument `name`.
    fn string(&self, name: &str) -> Option<&str> {
        self.arguments.get(name).and_then(Value::as_str)
    }

    /// Gathers the answers to `stages`, remembering them as `memory` says.
    fn gather(&self, memory: Memory, stages: &[&[Ask]]) -> Result<Gathered, ErrorObject<'static>> {
        Input::read(self.call, self.signer, self.name, memory)?.gather(stages)
    }

    /// Asks `asks` in one round without remembering anything, then answers
    /// with `finish` of the answers.
    fn ask_once(
        &self,
        asks: &[Ask],
        finish: impl FnOnce(&Map<String, Value>) -> Result<Reply, ErrorObject<'static>>,
    ) -> Result<Reply, ErrorObject<'static>> {
        self.ask_then(Memory::Ephemeral, &[asks], finish)
    }

    /// Asks one question, then answers `<label>: <the answer>`.
    fn ask_one(&self, ask: Ask, label: &str) -> Result<Reply, ErrorObject<'static>> {
        let asks = [ask];
        self.ask_once(&asks, |answers| {
            Ok(say(&format!("{label}: {}", summary_of(&asks, answers))))
        })
    }

    /// Asks `stages` with `memory`, then answers with `finish` of the
    /// answers.
    fn ask_then(
        &self,
        memory: Memory,
        stages: &[&[Ask]],
        finish: impl FnOnce(&Map<String, Value>) -> Result<Reply, ErrorObject<'static>>,
    ) -> Result<Reply, ErrorObject<'static>> {
        match self.gather(memory, stages)? {
            Gathered::Need(reply) => Ok(reply),
            Gathered::Done(answers) => finish(&answers),
        }
    }

    /// Sends the three log messages of the logging tools.
    async fn log_three(&self) -> Reply {
        let steps = [
            "Tool execution started",
            "Tool processing data",
            "Tool execution completed",
        ];
        for (i, step) in steps.into_iter().enumerate() {
            if i > 0 {
                pause().await;
            }
            self.shared.log(self.call, LoggingLevel::Info, step).await;
        }
        say("Tool with logging executed successfully: three log messages sent")
    }

    /// Reports progress 0, 50 and 100 of 100.
    async fn progress(&self) -> Reply {
        for (i, progress) in [0, 50, 100].into_iter().enumerate() {
            if i > 0 {
                pause().await;
            }
            let message = format!("{progress}% done");
            self.call.progress(progress, 100, &message).await;
        }
        say("Tool with progress executed successfully")
    }

    /// Adds or removes a dynamic item (whose presence `flag` selects) and
    /// announces the change.
    async fn toggle(&self, change: Change, item: &str, flag: fn(&mut State) -> &mut bool) -> Reply {
        let present = {
            let mut state = self.shared.lock();
            let flag = flag(&mut state);
            *flag = !*flag;
            *flag
        };
        self.shared.announce(change, self.call).await;
        say(&if present {
            format!("Added {item}")
        } else {
            format!("Removed {item}")
        })
    }

    /// Changes a resource and tells its subscribers.
    async fn update(&self) -> Reply {
        let uri = self.string("uri").unwrap_or(resources::WATCHED).to_owned();
        {
            let mut state = self.shared.lock();
            if !resources::exists(&state, &uri) {
                drop(state);
                return fail(&format!("No resource at {uri}"));
            }
            if uri == resources::WATCHED {
                state.watched_revision += 1;
            }
        }
        self.shared
            .announce(Change::Updated(uri.clone()), self.call)
            .await;
        say(&format!("Updated {uri}"))
    }
}

/// The pause between the steps of the slow tools.
async fn pause() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// A form schema.
fn form(properties: Value, required: &[&str]) -> Value {
    json!({ "type": "object", "properties": properties, "required": required })
}

/// A form with one field.
fn one_field(name: &str, kind: &str) -> Value {
    form(json!({ name: { "type": kind } }), &[name])
}

/// Asks the user's name, as `user_name`.
fn ask_name() -> Ask {
    Ask::elicit(
        "user_name",
        "What is your name?",
        one_field("name", "string"),
    )
}

/// One question of each kind: the user's name, a sampled greeting, the
/// client's roots.
fn one_of_each() -> [Ask; 3] {
    [
        ask_name(),
        Ask::sample("greeting", "Generate a greeting", 50),
        Ask::roots("client_roots"),
    ]
}

/// The text an answer of `ask` comes down to.
fn describe(ask: &Ask, answer: &Value) -> String {
    match ask.capability {
        ClientCapability::Elicitation => elicited(answer),
        ClientCapability::Sampling => sampled_text(answer).to_owned(),
        ClientCapability::Roots => listed_roots(answer),
    }
}

/// Every answer, described, as `key: answer; ...`.
fn summary(asks: &[Ask], answers: &Map<String, Value>) -> String {
    asks.iter()
        .filter_map(|ask| {
            Some(format!(
                "{}: {}",
                ask.key,
                describe(ask, answers.get(ask.key)?)
            ))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A string member of an elicitation answer's content.
fn field<'a>(answers: &'a Map<String, Value>, key: &str, name: &str) -> Option<&'a str> {
    answers.get(key)?.get("content")?.get(name)?.as_str()
}

/// `tools/call`.
pub(crate) async fn call(
    shared: &Shared,
    signer: &Signer,
    tasks: &Arc<Tasks>,
    call: &Call,
) -> Result<Reply, ErrorObject<'static>> {
    let params: CallToolParams<'static> = call.view()?;
    let arguments = match params.arguments.as_ref().map(|raw| raw.parse::<Value>()) {
        None => Map::new(),
        Some(Ok(Value::Object(arguments))) => arguments,
        Some(_) => return Err(invalid_params("`arguments` must be an object")),
    };
    let name = params.name.as_ref();
    let known = tools(shared).into_iter().find(|tool| tool.name == name);
    let Some(spec) = known else {
        return Err(invalid_params(format!("Unknown tool: {name}")));
    };
    if call.context.param_headers().is_some() {
        call.context
            .check_param_headers(&spec.schema.to_json(), Some(&arguments))?;
    }
    if let Schema::Strings(fields) = &spec.schema {
        let missing = fields.iter().find(|(field, _, required)| {
            *required && !arguments.get(*field).is_some_and(Value::is_string)
        });
        if let Some((field, _, _)) = missing {
            return Ok(fail(&format!(
                "Invalid arguments: `{field}` is required and must be a string"
            )));
        }
    }
    let tool = ToolCall {
        shared,
        signer,
        call,
        name,
        arguments,
    };
    match spec.task_support {
        Some(support) => run_job(&tool, tasks, support).await,
        None => run(&tool).await,
    }
}

/// What makes a tool's result of the answers to its questions.
type Finish = Box<dyn FnOnce(&Map<String, Value>) -> Value + Send>;

/// The work of a task-supporting tool.
enum Job {
    /// Waits, then ends with the tool's result or a protocol error.
    After(Duration, Result<Value, ErrorObject<'static>>),
    /// Asks the questions, then ends with the result `finish` makes of the
    /// answers.
    Ask(Vec<Ask>, Finish),
}

impl Job {
    /// The job as a task's work.
    fn into_work(self) -> tasks::Work {
        match self {
            Self::After(delay, Ok(result)) => tasks::after(delay, Outcome::Result(result)),
            Self::After(delay, Err(error)) => {
                let error = json!({ "code": error.code, "message": error.message });
                tasks::after(delay, Outcome::Error(error))
            }
            Self::Ask(asks, finish) => {
                let requests = asks
                    .iter()
                    .map(|ask| (ask.key.to_owned(), ask.request()))
                    .collect();
                tasks::asking(requests, move |answers| Outcome::Result(finish(answers)))
            }
        }
    }

    /// Does the job within the call: the wait, or the questions asked the
    /// way a call asks them (`input_required`, or requests in a session).
    async fn run_here(self, tool: &ToolCall<'_>) -> Result<Reply, ErrorObject<'static>> {
        match self {
            Self::After(delay, outcome) => {
                tokio::time::sleep(delay).await;
                outcome.map(Reply::Complete)
            }
            Self::Ask(asks, finish) => {
                tool.ask_once(&asks, |answers| Ok(Reply::Complete(finish(answers))))
            }
        }
    }
}

/// Runs a task-supporting tool: as a task when the request declared the
/// extension, else within the call (a tool that requires a task is then
/// `-32021`).
async fn run_job(
    tool: &ToolCall<'_>,
    tasks: &Arc<Tasks>,
    support: &str,
) -> Result<Reply, ErrorObject<'static>> {
    let as_task = tasks::wanted(tool.call);
    if !as_task && support == "required" {
        return Err(missing_extension(EXTENSION));
    }
    let job = match tool.name {
        "slow_compute" => {
            let seconds = match tool.arguments.get("seconds") {
                None => 1.0,
                Some(seconds) => match seconds.as_f64() {
                    Some(seconds) if (0.0..=3600.0).contains(&seconds) => seconds,
                    _ => return Ok(fail("`seconds` must be a number from 0 to 3600")),
                },
            };
            let label = tool.string("label").unwrap_or("computation");
            let done = say(&format!("Computed {label} in {seconds} s")).into_value();
            Job::After(Duration::from_secs_f64(seconds), Ok(done))
        }
        "failing_job" => {
            let failed = fail("The job failed, as this tool always does.").into_value();
            Job::After(Duration::from_millis(500), Ok(failed))
        }
        "protocol_error_job" => Job::After(
            Duration::from_millis(200),
            Err(ErrorObject::new(
                mcp_protocol::jsonrpc::error_code::INTERNAL_ERROR,
                "The job broke down with an internal error, as this tool always does.",
            )),
        ),
        "confirm_delete" => {
            let filename = tool.string("filename").unwrap_or("the file").to_owned();
            let ask = Ask::elicit(
                "confirm",
                &format!("Delete {filename}?"),
                one_field("confirm", "boolean"),
            );
            Job::Ask(
                vec![ask],
                Box::new(move |answers| {
                    let accepted = answers
                        .get("confirm")
                        .and_then(|answer| answer.get("action"))
                        .and_then(Value::as_str)
                        == Some("accept");
                    let confirmed = answers
                        .get("confirm")
                        .and_then(|answer| answer.get("content"))
                        .and_then(|content| content.get("confirm"))
                        .and_then(Value::as_bool)
                        .unwrap_or(accepted);
                    let verdict = if accepted && confirmed {
                        "Deleted"
                    } else {
                        "Kept"
                    };
                    say(&format!("{verdict} {filename}")).into_value()
                }),
            )
        }
        "multi_input" => {
            let asks = vec![
                Ask::elicit("name", "What is your name?", one_field("name", "string")),
                Ask::elicit(
                    "confirm",
                    "Shall the job go on?",
                    one_field("confirm", "boolean"),
                ),
            ];
            Job::Ask(
                asks,
                Box::new(|answers| {
                    let described: Vec<String> = answers
                        .iter()
                        .map(|(key, answer)| format!("{key}: {}", elicited(answer)))
                        .collect();
                    say(&format!("Both answers received: {}", described.join("; "))).into_value()
                }),
            )
        }
        "test_tool_with_task" => match tool.gather(Memory::Ephemeral, &[&[ask_name()]])? {
            Gathered::Need(reply) => return Ok(reply),
            Gathered::Done(answers) => Job::After(
                Duration::from_millis(300),
                Ok(greet(&answers)?.into_value()),
            ),
        },
        other => return Err(invalid_params(format!("Unknown tool: {other}"))),
    };
    if as_task {
        tasks.start(job.into_work())
    } else {
        job.run_here(tool).await
    }
}

/// Runs the tool.
async fn run(tool: &ToolCall<'_>) -> Result<Reply, ErrorObject<'static>> {
    let reply = match tool.name {
        "test_simple_text" => say("This is a simple text response for testing."),
        "test_image_content" => content(vec![image()]),
        "test_audio_content" => content(vec![json!({
            "type": "audio",
            "data": media::SILENCE_WAV,
            "mimeType": media::WAV,
        })]),
        "test_embedded_resource" => content(vec![embedded(
            "test://embedded-resource",
            "text/plain",
            "This is an embedded resource content.",
        )]),
        "test_multiple_content_types" => content(vec![
            text("Multiple content types test:"),
            image(),
            embedded(
                "test://mixed-content-resource",
                "application/json",
                r#"{"test":"data","value":123}"#,
            ),
        ]),
        "test_tool_with_logging" | "test_logging_tool" => tool.log_three().await,
        "test_tool_with_progress" => tool.progress().await,
        "test_error_handling" => fail("This tool intentionally returns an error for testing"),
        "test_trigger_tool_change" => {
            tool.toggle(Change::Tools, DYNAMIC, |s| &mut s.dynamic_tool)
                .await
        }
        "test_trigger_prompt_change" => {
            let item = super::prompts::DYNAMIC;
            tool.toggle(Change::Prompts, item, |s| &mut s.dynamic_prompt)
                .await
        }
        "test_trigger_resource_list_change" => {
            let item = resources::DYNAMIC;
            tool.toggle(Change::Resources, item, |s| &mut s.dynamic_resource)
                .await
        }
        "test_trigger_resource_update" => tool.update().await,
        "greet" => say(&format!(
            "Hello, {}!",
            tool.string("name").unwrap_or("World")
        )),
        "test_header_mirroring" => match tool.string("region") {
            Some(region) => {
                let priority = tool
                    .arguments
                    .get("priority")
                    .map_or_else(|| "none".to_owned(), Value::to_string);
                say(&format!("Region: {region}; priority: {priority}"))
            }
            None => fail("Invalid arguments: `region` is required and must be a string"),
        },
        "json_schema_2020_12_tool" => say(&format!(
            "Received arguments: {}",
            Value::Object(tool.arguments.clone())
        )),
        DYNAMIC => say("This tool was added by test_trigger_tool_change."),
        "test_streaming_elicitation" => {
            tool.call.progress(0, 1, "Asking the user to confirm").await;
            let message = "Asking the user to confirm before going on";
            tool.shared
                .log(tool.call, LoggingLevel::Info, message)
                .await;
            return asking(tool);
        }
        _ => return asking(tool),
    };
    Ok(reply)
}

/// Runs a tool that asks the client for input.
fn asking(tool: &ToolCall<'_>) -> Result<Reply, ErrorObject<'static>> {
    match tool.name {
        "test_sampling" => {
            let prompt = tool.string("prompt").unwrap_or_default();
            tool.ask_one(Ask::sample("llm_response", prompt, 100), "LLM response")
        }
        "test_elicitation" => {
            let message = tool.string("message").unwrap_or_default();
            let schema = form(
                json!({
                    "username": { "type": "string", "description": "User's response" },
                    "email": { "type": "string", "description": "User's email address" },
                }),
                &["username", "email"],
            );
            tool.ask_one(
                Ask::elicit("user_response", message, schema),
                "User response",
            )
        }
        "test_elicitation_sep1034_defaults" => {
            let schema = form(
                json!({
                    "name": { "type": "string", "description": "Your name", "default": "John Doe" },
                    "age": { "type": "integer", "description": "Your age", "default": 30 },
                    "score": { "type": "number", "description": "Your score", "default": 95.5 },
                    "status": {
                        "type": "string",
                        "description": "Your status",
                        "enum": ["active", "inactive", "pending"],
                        "default": "active",
                    },
                    "verified": { "type": "boolean", "description": "Verified?", "default": true },
                }),
                &[],
            );
            tool.ask_one(
                Ask::elicit("defaults", "Please review these values", schema),
                "Elicitation completed",
            )
        }
        "test_elicitation_sep1330_enums" => {
            let schema = form(
                json!({
                    "untitledSingle": { "type": "string", "enum": ["option1", "option2", "option3"] },
                    "titledSingle": {
                        "type": "string",
                        "oneOf": [
                            { "const": "value1", "title": "First Option" },
                            { "const": "value2", "title": "Second Option" },
                            { "const": "value3", "title": "Third Option" },
                        ],
                    },
                    "legacyEnum": {
                        "type": "string",
                        "enum": ["opt1", "opt2", "opt3"],
                        "enumNames": ["Option One", "Option Two", "Option Three"],
                    },
                    "untitledMulti": {
                        "type": "array",
                        "items": { "type": "string", "enum": ["option1", "option2", "option3"] },
                    },
                    "titledMulti": {
                        "type": "array",
                        "items": {
                            "anyOf": [
                                { "const": "value1", "title": "First Choice" },
                                { "const": "value2", "title": "Second Choice" },
                                { "const": "value3", "title": "Third Choice" },
                            ],
                        },
                    },
                }),
                &[],
            );
            tool.ask_one(
                Ask::elicit("enums", "Please choose your options", schema),
                "Elicitation completed",
            )
        }
        "test_missing_capability" => tool.ask_one(
            Ask::sample("probe", "Reply with one word.", 20),
            "Sampling result",
        ),
        "test_streaming_elicitation" => tool.ask_one(
            Ask::elicit(
                "confirmation",
                "Do you want to continue?",
                one_field("confirm", "boolean"),
            ),
            "Streaming elicitation completed",
        ),
        "test_input_required_result_elicitation" => {
            let asks = [ask_name()];
            tool.ask_once(&asks, greet)
        }
        "test_input_required_result_sampling" => tool.ask_one(
            Ask::sample("capital_question", "What is the capital of France?", 100),
            "Sampling answer",
        ),
        "test_input_required_result_list_roots" => {
            tool.ask_one(Ask::roots("client_roots"), "Client roots")
        }
        "test_input_required_result_request_state"
        | "test_input_required_result_tampered_state" => {
            let asks = [Ask::elicit(
                "confirm",
                "Please confirm",
                one_field("ok", "boolean"),
            )];
            tool.ask_then(Memory::SignedRequired, &[&asks], |answers| {
                Ok(say(&format!(
                    "state-ok: the request state passed its integrity check; {}",
                    summary(&asks, answers)
                )))
            })
        }
        "test_input_required_result_multiple_inputs" => {
            let asks = one_of_each();
            tool.ask_then(Memory::Signed, &[&asks], |answers| {
                Ok(say(&format!(
                    "All input received: {}",
                    summary(&asks, answers)
                )))
            })
        }
        "test_input_required_result_multi_round" => {
            let first = [Ask::elicit(
                "step1",
                "Step 1: What is your name?",
                one_field("name", "string"),
            )];
            let second = [Ask::elicit(
                "step2",
                "Step 2: What is your favorite color?",
                one_field("color", "string"),
            )];
            tool.ask_then(Memory::Signed, &[&first, &second], |answers| {
                let name = field(answers, "step1", "name").unwrap_or("Someone");
                let color = field(answers, "step2", "color").unwrap_or("unknown");
                Ok(say(&format!("{name}'s favorite color is {color}.")))
            })
        }
        "test_input_required_result_capabilities" => capabilities(tool),
        other => Err(invalid_params(format!("Unknown tool: {other}"))),
    }
}

/// The answers to a one-question round, described.
fn summary_of(asks: &[Ask; 1], answers: &Map<String, Value>) -> String {
    let [ask] = asks;
    answers
        .get(ask.key)
        .map(|answer| describe(ask, answer))
        .unwrap_or_default()
}

/// Greets the user named in the `user_name` answer.
fn greet(answers: &Map<String, Value>) -> Result<Reply, ErrorObject<'static>> {
    let action = answers
        .get("user_name")
        .and_then(|answer| answer.get("action"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if action != "accept" {
        return Ok(say(&format!(
            "No name was given: the user chose to {action}."
        )));
    }
    match field(answers, "user_name", "name") {
        Some(name) => Ok(say(&format!("Hello, {name}!"))),
        None => Err(invalid_params(
            "`inputResponses.user_name.content.name` must be a string",
        )),
    }
}

/// `test_input_required_result_capabilities`: asks only what the client
/// can answer.
fn capabilities(tool: &ToolCall<'_>) -> Result<Reply, ErrorObject<'static>> {
    let asks: Vec<Ask> = one_of_each()
        .into_iter()
        .filter(|ask| match &tool.call.mode {
            Mode::Stateless { capabilities, .. } => ask.capability.declared_in(capabilities),
            Mode::Stateful => true,
        })
        .collect();
    if asks.is_empty() {
        return Ok(say(
            "The client declared none of the elicitation, sampling and roots capabilities: nothing to ask.",
        ));
    }
    tool.ask_once(&asks, |answers| {
        Ok(say(&format!("Input received: {}", summary(&asks, answers))))
    })
}
