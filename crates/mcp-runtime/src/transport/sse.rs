//! The legacy HTTP+SSE transport (protocol 2024-11-05): the client opens a
//! long-lived GET event stream; its first event, `endpoint`, says where to
//! POST messages, and every message from the server arrives as a `message`
//! event on that stream.
//!
//! # Design
//!
//! [`SseConnector::connect`] opens the stream and waits for the `endpoint`
//! event (the caller bounds the wait by the start-up timeout). The endpoint
//! is resolved against the stream's URL, so both relative (`/messages?...`)
//! and absolute forms work, and it must be on the same origin: an endpoint
//! elsewhere would receive the configured headers, which often hold
//! credentials, so it is refused.
//!
//! A driver task then reads the stream into the inbound channel and POSTs
//! each outbound message on a task of its own. The POST's answer is only a
//! status (202); a failed POST of a request becomes a JSON-RPC error answer
//! for that request, naming the HTTP status or cause, so the caller never
//! waits for an answer that cannot come; a failed notification is logged.
//! The stream is the connection: when it ends, the link reports
//! [`Inbound::Closed`] and the supervisor starts a new one (this transport
//! has no resumption). Closing or dropping the link stops the driver, its
//! tasks and the stream.

use std::sync::Arc;

use mcp_core::BoxFuture;
use mcp_protocol::Message;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue};
use reqwest::{Response, Url};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

pub use super::http::HttpTarget;
use super::http::{
    DriverCloser, EVENT_STREAM, Endpoint, EventStream, JSON, NOTIFY_TIMEOUT, StopSignal,
    error_detail, event_messages, is_event_stream, media_type, redact, redact_str,
};
use super::{Connector, Inbound, TransportEnds, TransportLink};
use crate::error::{Error, ErrorKind, Result};

/// Connects to a server over the legacy HTTP+SSE transport.
#[derive(Clone, Debug)]
pub struct SseConnector {
    target: HttpTarget,
}

impl SseConnector {
    /// A connector to `target`, whose `url` is the event stream's (often
    /// ending in `/sse`).
    #[must_use]
    pub fn new(target: HttpTarget) -> Self {
        Self { target }
    }
}

impl Connector for SseConnector {
    fn connect(&self) -> BoxFuture<'_, Result<TransportLink>> {
        Box::pin(async move {
            let endpoint = Endpoint::new(&self.target)?;
            let response = open(&endpoint).await?;
            let mut stream = EventStream::new(&endpoint.server, response, endpoint.max_message);
            let post_url = announced(&endpoint, &mut stream).await?;
            tracing::debug!(server = %endpoint.server, "the server takes messages at {}", redact(&post_url));
            let (closer, signal) = DriverCloser::new();
            let (link, ends) = TransportLink::new(Box::new(closer));
            let legacy = Arc::new(Legacy { endpoint, post_url });
            tokio::spawn(drive(legacy, stream, ends, signal));
            Ok(link)
        })
    }

    fn describe(&self) -> String {
        redact_str(&self.target.url)
    }
}

/// Opens the event stream.
async fn open(endpoint: &Endpoint) -> Result<Response> {
    let start = |message: String| Error::new(ErrorKind::Start, message);
    let request = endpoint.request(
        reqwest::Method::GET,
        endpoint.url.clone(),
        &[(ACCEPT, HeaderValue::from_static(EVENT_STREAM))],
    );
    let response = endpoint
        .send(request)
        .await
        .map_err(|e| start(e.describe(&endpoint.shown())))?;
    if !response.status().is_success() {
        let detail = error_detail(response).await;
        return Err(start(format!(
            "{} refused the event stream: {detail}",
            endpoint.shown()
        )));
    }
    if !is_event_stream(&response) {
        return Err(start(format!(
            "{} answered with `{}`, not an event stream",
            endpoint.shown(),
            media_type(&response).unwrap_or_default()
        )));
    }
    Ok(response)
}

/// Waits for the `endpoint` event and resolves the URL it names.
async fn announced(endpoint: &Endpoint, stream: &mut EventStream) -> Result<Url> {
    let start = |message: String| Error::new(ErrorKind::Start, message);
    loop {
        match stream.next().await {
            Ok(Some(event)) if event.event_type() == "endpoint" => {
                return resolve(&endpoint.url, event.data.trim());
            }
            Ok(Some(event)) => {
                tracing::debug!(server = %endpoint.server, "ignoring a `{}` event before the endpoint was announced", event.event_type());
            }
            Ok(None) => {
                return Err(start(
                    "the event stream ended before the server said where to send messages"
                        .to_owned(),
                ));
            }
            Err(e) => {
                return Err(start(format!(
                    "the event stream broke before the server said where to send messages: {e}"
                )));
            }
        }
    }
}

/// Resolves an announced endpoint against the stream's URL; only the same
/// origin is accepted.
fn resolve(base: &Url, announced: &str) -> Result<Url> {
    let url = base.join(announced).map_err(|e| {
        Error::new(
            ErrorKind::Start,
            format!("the server announced an endpoint that is not a URL: {e}"),
        )
    })?;
    if url.origin() != base.origin() {
        return Err(Error::new(
            ErrorKind::Start,
            format!(
                "the server announced an endpoint on another origin ({}); it is refused, since it would receive the configured headers",
                redact(&url)
            ),
        ));
    }
    Ok(url)
}

/// What the driver's tasks share.
struct Legacy {
    endpoint: Endpoint,
    post_url: Url,
}

async fn drive(legacy: Arc<Legacy>, stream: EventStream, ends: TransportEnds, signal: StopSignal) {
    let TransportEnds {
        mut outbound,
        inbound,
    } = ends;
    let StopSignal { mut stop, _done } = signal;
    let reader = read_stream(legacy.clone(), stream, inbound.clone());
    tokio::pin!(reader);
    let mut reading = true;
    let mut open = true;
    let mut posts = JoinSet::new();
    loop {
        tokio::select! {
            biased;
            message = outbound.recv(), if open => match message {
                Some(message) => {
                    posts.spawn(post(legacy.clone(), inbound.clone(), message));
                }
                None => open = false,
            },
            () = &mut reader, if reading => reading = false,
            Some(_) = posts.join_next(), if !posts.is_empty() => {}
            _ = &mut stop => break,
        }
    }
    posts.abort_all();
}

/// Delivers the stream's messages; reports the link closed when it ends.
async fn read_stream(legacy: Arc<Legacy>, mut stream: EventStream, inbound: mpsc::Sender<Inbound>) {
    let server = &legacy.endpoint.server;
    let reason = loop {
        match stream.next().await {
            Ok(Some(event)) if event.event_type() == "endpoint" => {
                tracing::debug!(server = %server, "ignoring a second `endpoint` event");
            }
            Ok(Some(event)) => {
                for message in event_messages(server, &event) {
                    if inbound.send(Inbound::Message(message)).await.is_err() {
                        return;
                    }
                }
            }
            Ok(None) => break "the server closed the event stream".to_owned(),
            Err(e) => break format!("the event stream broke: {e}"),
        }
    };
    let _ = inbound.send(Inbound::Closed(reason)).await;
}

/// POSTs one message; a request whose POST failed gets an error answer.
async fn post(legacy: Arc<Legacy>, inbound: mpsc::Sender<Inbound>, message: Message<'static>) {
    let request = match &message {
        Message::Request(request) => Some((request.id.clone(), request.method.clone())),
        _ => None,
    };
    let post = legacy
        .endpoint
        .request(
            reqwest::Method::POST,
            legacy.post_url.clone(),
            &[(CONTENT_TYPE, HeaderValue::from_static(JSON))],
        )
        .timeout(NOTIFY_TIMEOUT)
        .body(message.to_vec());
    let failure = match legacy.endpoint.send(post).await {
        Ok(response) if response.status().is_success() => return,
        Ok(response) => error_detail(response).await,
        Err(e) => e.describe(&redact(&legacy.post_url)),
    };
    let server = &legacy.endpoint.server;
    match request {
        Some((id, method)) => {
            let reason = format!("`{method}` could not be carried over HTTP: {failure}");
            let _ = inbound.send(Inbound::Failed { id, reason }).await;
        }
        None => {
            tracing::warn!(server = %server, "could not send a message to the server: {failure}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_resolve_on_the_same_origin_only() {
        let base = Url::parse("http://127.0.0.1:3001/sse").unwrap();
        let relative = resolve(&base, "/message?sessionId=abc").unwrap();
        assert_eq!(
            relative.as_str(),
            "http://127.0.0.1:3001/message?sessionId=abc"
        );
        let sibling = resolve(&base, "messages/").unwrap();
        assert_eq!(sibling.as_str(), "http://127.0.0.1:3001/messages/");
        let absolute = resolve(&base, "http://127.0.0.1:3001/m?s=1").unwrap();
        assert_eq!(absolute.as_str(), "http://127.0.0.1:3001/m?s=1");
        assert!(resolve(&base, "http://127.0.0.1:9999/m").is_err());
        assert!(resolve(&base, "https://127.0.0.1:3001/m").is_err());
    }
}
