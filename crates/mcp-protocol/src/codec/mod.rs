//! Framing over byte buffers: newline-delimited JSON for stdio,
//! Server-Sent Events for HTTP, and binary frames for the frame socket.
//!
//! Decoders take a [`bytes::BytesMut`] that the caller fills from its
//! transport and return complete frames as they become available; encoders
//! append to a buffer. Both keep to a maximum frame size, and a frame over the
//! limit is skipped with an error instead of growing memory without bound.

pub mod frame;
pub mod ndjson;
pub mod sse;
