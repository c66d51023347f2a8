//! The type-state API: a server's lifecycle in its type.
//!
//! `Server<Configured>::deploy` consumes the configured server and yields a
//! `Server<Deployed>`, the only state with `execute`; a failed deployment
//! yields a `Server<Failed>` that says why and can be retried. Mistakes such
//! as executing on a server that was never deployed do not compile.
//!
//! ```compile_fail
//! # async fn f(runtime: mcp_runtime::McpRuntime, spec: mcp_runtime::ServerSpec) {
//! let server = mcp_runtime::Server::new(runtime, spec);
//! server.execute("ping", None).await; // no `execute` on Server<Configured>
//! # }
//! ```

use std::borrow::Cow;
use std::marker::PhantomData;

use mcp_core::state::{Configured, Deployed, Failed, ServerState};
use mcp_protocol::raw::Raw;

use crate::error::{Error, Result};
use crate::runtime::McpRuntime;
use crate::server::{CallOptions, ServerHandle, ServerSpec};

/// A server in lifecycle state `S`.
pub struct Server<S: ServerState> {
    runtime: McpRuntime,
    spec: ServerSpec,
    handle: Option<ServerHandle>,
    error: Option<Error>,
    _state: PhantomData<S>,
}

impl<S: ServerState> std::fmt::Debug for Server<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("id", &self.spec.id)
            .field("state", &S::NAME)
            .finish_non_exhaustive()
    }
}

impl<S: ServerState> Server<S> {
    /// The server's spec.
    #[must_use]
    pub fn spec(&self) -> &ServerSpec {
        &self.spec
    }

    fn into_state<T: ServerState>(
        self,
        handle: Option<ServerHandle>,
        error: Option<Error>,
    ) -> Server<T> {
        Server {
            runtime: self.runtime,
            spec: self.spec,
            handle,
            error,
            _state: PhantomData,
        }
    }
}

impl Server<Configured> {
    /// A server that `runtime` can deploy.
    #[must_use]
    pub fn new(runtime: McpRuntime, spec: ServerSpec) -> Self {
        Self {
            runtime,
            spec,
            handle: None,
            error: None,
            _state: PhantomData,
        }
    }

    /// Deploys the server and waits until it runs.
    ///
    /// # Errors
    ///
    /// A `Server<Failed>` that holds the reason and can be retried.
    pub async fn deploy(self) -> Result<Server<Deployed>, Server<Failed>> {
        match self.runtime.deploy(self.spec.clone()).await {
            Ok(handle) => Ok(self.into_state(Some(handle), None)),
            Err(error) => Err(self.into_state(None, Some(error))),
        }
    }
}

impl Server<Deployed> {
    /// The handle, for hot paths and sharing.
    ///
    /// # Panics
    ///
    /// Never: a deployed server always has a handle.
    #[must_use]
    pub fn handle(&self) -> &ServerHandle {
        match &self.handle {
            Some(handle) => handle,
            None => unreachable!("a deployed server always has a handle"),
        }
    }

    /// Sends a request with the server's default options.
    ///
    /// # Errors
    ///
    /// As [`ServerHandle::request`].
    pub async fn execute(
        &self,
        method: impl Into<Cow<'static, str>>,
        params: Option<Raw<'static>>,
    ) -> Result<Raw<'static>> {
        self.handle()
            .request(method, params, CallOptions::default())
            .await
    }

    /// Stops the server; it can be deployed again.
    pub async fn undeploy(self) -> Server<Configured> {
        let _ = self.runtime.undeploy(&self.spec.id).await;
        self.into_state(None, None)
    }
}

impl Server<Failed> {
    /// Why the deployment failed.
    ///
    /// # Panics
    ///
    /// Never: a failed server always has an error.
    #[must_use]
    pub fn error(&self) -> &Error {
        match &self.error {
            Some(error) => error,
            None => unreachable!("a failed server always has an error"),
        }
    }

    /// Tries the deployment again.
    ///
    /// # Errors
    ///
    /// A `Server<Failed>` again, with the new reason.
    pub async fn retry(self) -> Result<Server<Deployed>, Server<Failed>> {
        self.into_state::<Configured>(None, None).deploy().await
    }

    /// Back to configured, to change nothing and deploy later.
    #[must_use]
    pub fn into_configured(self) -> Server<Configured> {
        self.into_state(None, None)
    }
}
