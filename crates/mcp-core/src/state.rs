//! Type-state markers for a server's lifecycle: a server value is
//! `Server<Configured>`, `Server<Deployed>` or `Server<Failed>`, and only the
//! operations that make sense in that state exist on it. The trait is sealed:
//! no other state can be added outside this crate.

mod sealed {
    pub trait Sealed {}
}

/// A lifecycle state of a server. Sealed.
pub trait ServerState: sealed::Sealed + Send + Sync + 'static {
    /// The state's name, for messages.
    const NAME: &'static str;
}

/// Configured, not running: it can be deployed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Configured;

/// Running: it can execute requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deployed;

/// Its deployment failed: it can be inspected and retried.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Failed;

impl sealed::Sealed for Configured {}
impl sealed::Sealed for Deployed {}
impl sealed::Sealed for Failed {}

impl ServerState for Configured {
    const NAME: &'static str = "configured";
}
impl ServerState for Deployed {
    const NAME: &'static str = "deployed";
}
impl ServerState for Failed {
    const NAME: &'static str = "failed";
}
