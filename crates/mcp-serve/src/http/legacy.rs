//! The legacy HTTP+SSE transport (2024-11-05): `GET /sse` opens a session
//! whose stream names where to POST; every message for the client goes on
//! that stream, and the session ends with it.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::BytesMut;
use hyper::StatusCode;
use hyper::body::Incoming;
use mcp_core::RequestContext;
use mcp_protocol::codec::sse::SseEvent;
use mcp_runtime::transport::CHANNEL_CAPACITY;
use tokio::sync::mpsc;

use super::body::{HttpResponse, SseBody, encode_event, full, sse_response, status};
use mcp_runtime::dispatch::answer;

use super::exchange::RequestPeer;
use super::session::{Cancellable, Session, Sessions, end_session};
use super::{Caller, MESSAGE_PATH, Shared};

impl Shared {
    /// `GET /sse`: a session of the legacy HTTP+SSE transport. The stream
    /// opens with an `endpoint` event naming where to POST, then carries
    /// every message to the client; the session ends with the stream.
    pub(super) fn open_legacy(&self, client: IpAddr, caller: Caller) -> HttpResponse {
        let room = match self.sessions.reserve(client) {
            Ok(room) => room,
            Err(message) => {
                let mut response = status(StatusCode::SERVICE_UNAVAILABLE);
                *response.body_mut() = full(message);
                return response;
            }
        };
        let session = Arc::new(Session::new(
            client,
            caller,
            self.epoch,
            &self.options.observer,
        ));
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        session.set_stream(sender);
        let id = self.ids.next();
        room.fill(id.clone(), session.clone());
        let endpoint = SseEvent {
            event: Some("endpoint".to_owned()),
            data: format!("{MESSAGE_PATH}?sessionId={id}"),
            ..SseEvent::default()
        };
        let mut first = BytesMut::new();
        // Neither the type nor the data can hold a line break.
        let _ = endpoint.encode(&mut first);
        let legacy = LegacySession {
            sessions: self.sessions.clone(),
            cancellable: self.cancellable.clone(),
            id,
            session,
        };
        let mut body = SseBody::new(receiver, self.options.keep_alive, Some(Box::new(legacy)));
        body.first.push_back(first.freeze());
        sse_response(body)
    }

    /// `POST /message?sessionId=ID`: one message of a legacy session,
    /// accepted with 202; answers go on the session's stream.
    pub(super) async fn legacy_post(
        &self,
        request: hyper::Request<Incoming>,
        client: IpAddr,
        caller: &Caller,
    ) -> HttpResponse {
        let session = request
            .uri()
            .query()
            .into_iter()
            .flat_map(|query| query.split('&'))
            .find_map(|pair| pair.strip_prefix("sessionId="))
            .and_then(|id| self.sessions.get(id))
            .filter(|session| session.used_by(caller));
        let Some(session) = session else {
            return status(StatusCode::NOT_FOUND);
        };
        session.touch();
        let message = match self.read_message(request.into_body()).await {
            Ok(message) => message,
            Err(response) => return *response,
        };
        let Some(request) = self.session_message(&session, message).await else {
            return status(StatusCode::ACCEPTED);
        };
        let id = request.id.clone();
        let admitted = match self.admit_request(&id, Some(&session), client) {
            Ok(admitted) => admitted,
            Err(refusal) => return *refusal,
        };
        let Some(stream) = session.stream() else {
            return status(StatusCode::NOT_FOUND);
        };
        let stream = mpsc::Sender::clone(&stream);
        let peer = RequestPeer {
            stream: stream.clone(),
            session: Some(session.clone()),
            notify_on_stream: true,
            param_headers: None,
            caller: caller.clone(),
        };
        let server = self.server.clone();
        let context = RequestContext::new(Arc::new(peer));
        let (running, cancellable) = (session.clone(), self.cancellable.clone());
        let task_id = id.clone();
        let task = tokio::spawn(async move {
            let _admitted = admitted;
            let answer = answer(&*server, request, context).await;
            let _ = stream.send(encode_event(&answer)).await;
            cancellable.remove(running.key, task_id);
            running.touch();
        });
        self.cancellable
            .insert(session.key, id, task.abort_handle());
        status(StatusCode::ACCEPTED)
    }
}

/// A legacy (HTTP+SSE) session, ended when its stream is dropped.
struct LegacySession {
    sessions: Arc<Sessions>,
    cancellable: Arc<Cancellable>,
    id: String,
    session: Arc<Session>,
}

impl Drop for LegacySession {
    fn drop(&mut self) {
        self.sessions.remove(&self.id);
        end_session(&self.session, &self.cancellable);
    }
}
