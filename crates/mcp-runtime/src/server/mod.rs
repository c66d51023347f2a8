//! A deployed server: its instances, their supervisors, and the handle that
//! callers use.
//!
//! Each instance has a supervisor task that starts a transport, runs a
//! connection actor on it, and when the connection is lost restarts it with
//! exponential backoff and jitter, up to the configured number of restarts
//! in a row; then the instance is `Failed` and requests get an error at
//! once. The handle balances requests over the instances by fewest requests
//! in flight, keeping a caller's session on one instance.

mod clients;
mod direct;
mod handle;
mod instance;
mod shared;
mod spec;

pub use handle::ServerHandle;
pub use spec::{
    CallOptions, ListKind, RecentError, ServerEvent, ServerSpec, ServerState, SessionInfo,
    UpstreamProtocol,
};

pub(crate) use shared::Shared;
