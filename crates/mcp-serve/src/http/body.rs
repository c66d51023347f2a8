//! Response bodies: plain JSON, event streams with keep-alive comments,
//! and the byte counts reported to the observer.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::Full;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::StatusCode;
use hyper::body::{Body, Frame};
use hyper::header::HeaderValue;
use mcp_protocol::codec::sse::SseEvent;
use mcp_protocol::jsonrpc::error_code;
use mcp_protocol::{ErrorObject, Message, RequestId};
use mcp_runtime::observe::Observer;
use tokio::sync::mpsc;

use super::{EVENT_STREAM, JSON};

pub(super) type ResponseBody = UnsyncBoxBody<Bytes, Infallible>;

/// A response body that reports the bytes it sends.
pub(super) struct Counted {
    pub(super) body: ResponseBody,
    pub(super) observer: Arc<dyn Observer>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.observer.bytes_out(data.len() as u64);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

pub(super) type HttpResponse = hyper::Response<ResponseBody>;

/// An event stream fed by a channel, with keep-alive comments while idle.
pub(super) struct SseBody {
    /// Events to send before the others.
    pub(super) first: VecDeque<Bytes>,
    events: mpsc::Receiver<Bytes>,
    keep_alive: Option<tokio::time::Interval>,
    /// What lives as long as the stream and ends with it: the request it
    /// answers (a stateless request's stream is its life), or the legacy
    /// session it is.
    _held: Option<Box<dyn Send>>,
}

impl SseBody {
    pub(super) fn new(
        events: mpsc::Receiver<Bytes>,
        every: Duration,
        held: Option<Box<dyn Send>>,
    ) -> Self {
        let keep_alive = tokio::time::Instant::now()
            .checked_add(every)
            .filter(|_| !every.is_zero())
            .map(|start| {
                let mut interval = tokio::time::interval_at(start, every);
                interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                interval
            });
        Self {
            first: VecDeque::new(),
            events,
            keep_alive,
            _held: held,
        }
    }
}

impl Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(first) = this.first.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        match this.events.poll_recv(cx) {
            Poll::Ready(Some(event)) => return Poll::Ready(Some(Ok(Frame::data(event)))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if let Some(keep_alive) = &mut this.keep_alive {
            if keep_alive.poll_tick(cx).is_ready() {
                let comment = Bytes::from_static(b": keep-alive\n\n");
                return Poll::Ready(Some(Ok(Frame::data(comment))));
            }
        }
        Poll::Pending
    }
}

pub(super) fn encode_event(message: &Message<'_>) -> Bytes {
    let data = String::from_utf8(message.to_vec()).unwrap_or_default();
    let mut out = BytesMut::with_capacity(data.len() + 16);
    // A message event with no id or type cannot fail to encode.
    let _ = SseEvent::message(data).encode(&mut out);
    out.freeze()
}

pub(super) fn sse_response(body: SseBody) -> HttpResponse {
    let mut response = hyper::Response::new(UnsyncBoxBody::new(body));
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(EVENT_STREAM));
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    response
}

pub(super) fn full(bytes: impl Into<Bytes>) -> ResponseBody {
    UnsyncBoxBody::new(Full::new(bytes.into()))
}

pub(super) fn status(code: StatusCode) -> HttpResponse {
    let mut response = hyper::Response::new(full(Bytes::new()));
    *response.status_mut() = code;
    response
}

pub(super) fn json(code: StatusCode, message: &Message<'_>) -> HttpResponse {
    let mut response = hyper::Response::new(full(message.to_vec()));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(JSON));
    response
}

pub(super) fn rpc_error(
    code: StatusCode,
    id: Option<RequestId<'static>>,
    error: ErrorObject<'static>,
) -> HttpResponse {
    json(code, &Message::error(id, error))
}

pub(super) fn too_many_requests(id: RequestId<'static>, message: String) -> HttpResponse {
    let mut response = rpc_error(
        StatusCode::TOO_MANY_REQUESTS,
        Some(id),
        ErrorObject::new(error_code::INTERNAL_ERROR, message),
    );
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
    response
}

/// A JSON document that is not a JSON-RPC message (metadata, an OAuth
/// error).
pub(super) fn json_text(code: StatusCode, text: String) -> HttpResponse {
    let mut response = hyper::Response::new(full(text));
    *response.status_mut() = code;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(JSON));
    response
}

pub(super) fn not_allowed(allow: &'static str) -> HttpResponse {
    let mut response = status(StatusCode::METHOD_NOT_ALLOWED);
    response
        .headers_mut()
        .insert("allow", HeaderValue::from_static(allow));
    response
}
