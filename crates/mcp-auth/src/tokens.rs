//! The tokens of a client of servers that ask for OAuth: [`TokenFile`]
//! keeps them between runs, [`Tokens`] hands them to a link and gets new
//! ones when a server refuses one.
//!
//! [`Tokens`] is a [`TokenSource`]: its current token is one arc-swap
//! snapshot, read per request without a lock. Getting a new one is one
//! task's job (an actor fed by a bounded channel, started at the first
//! refusal), so requests refused together make one refresh, not one each:
//! a refusal of a token that was replaced meanwhile is answered with the
//! new one. A refusal is answered, in order, with
//!
//! 1. a token someone else put in the file (`mcp-manager login` while the
//!    gateway runs);
//! 2. a refreshed token, for a 401 when there is a refresh token;
//! 3. a new sign-in, with the scopes asked for so far and those the
//!    server's challenge names (a step-up, for a 403
//!    `insufficient_scope`), when there is a [`Browser`] to send the user
//!    to; the client registered at the first sign-in is registered once;
//! 4. else, why not and what to run: `mcp-manager login SERVER`.
//!
//! A 403 for scopes the token was granted is not answered with another
//! sign-in: it would get the same token again, and a server that refuses
//! it for good would have the user sign in forever.
//!
//! A token is kept for the server's name *and* URL: one signed in for a
//! URL is never sent to another.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arc_swap::ArcSwap;
use mcp_core::BoxFuture;
use mcp_core::auth::TokenSource;
use mcp_core::file::{PrivateFile, Stamp};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

use crate::Error;
use crate::client::{self, Browser, Challenge, ClientInfo, Discovery, Grant};

/// The largest tokens file read: 4 MiB.
const MAX_BYTES: u64 = 4 << 20;
/// How many refusals may wait for the actor.
const QUEUE: usize = 64;

/// The file of the tokens of every server signed in to, readable and
/// writable by its owner only (see [`PrivateFile`]).
#[derive(Clone, Debug)]
pub struct TokenFile {
    file: PrivateFile,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    version: u32,
    servers: BTreeMap<String, Entry>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Entry {
    url: String,
    grant: Grant,
}

impl Stored {
    const VERSION: u32 = 1;
}

impl TokenFile {
    /// The file at `path` (it need not exist yet).
    #[must_use]
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            file: PrivateFile::new(path, MAX_BYTES),
        }
    }

    /// Where it is.
    #[must_use]
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    fn parse(&self, text: &str) -> Result<Stored, Error> {
        let stored: Stored = serde_json::from_str(text).map_err(|error| {
            Error::TokenFile(format!(
                "{} is not a tokens file: {error}",
                self.path().display()
            ))
        })?;
        if stored.version != Stored::VERSION {
            return Err(Error::TokenFile(format!(
                "{} is of format {}; this version reads format {}",
                self.path().display(),
                stored.version,
                Stored::VERSION
            )));
        }
        Ok(stored)
    }

    /// The token kept for `server` at `url`, and the stamp of the file.
    ///
    /// # Errors
    ///
    /// [`Error::TokenFile`] when the file cannot be read or is not a
    /// tokens file.
    pub fn load(&self, server: &str, url: &str) -> Result<(Option<Grant>, Option<Stamp>), Error> {
        let Some((text, stamp)) = self
            .file
            .read()
            .map_err(|error| Error::TokenFile(error.to_string()))?
        else {
            return Ok((None, None));
        };
        let grant = self
            .parse(&text)?
            .servers
            .remove(server)
            .filter(|entry| entry.url == url)
            .map(|entry| entry.grant);
        Ok((grant, Some(stamp)))
    }

    /// Keeps `grant` for `server` at `url` (replacing what was kept for
    /// it); the stamp of the file written.
    ///
    /// # Errors
    ///
    /// [`Error::TokenFile`] when the file cannot be written, or holds
    /// something else than tokens (it is then left as it is).
    pub fn store(&self, server: &str, url: &str, grant: &Grant) -> Result<Option<Stamp>, Error> {
        self.change(|stored| {
            stored.servers.insert(
                server.to_owned(),
                Entry {
                    url: url.to_owned(),
                    grant: grant.clone(),
                },
            );
            true
        })
        .map(|(_, stamp)| stamp)
    }

    /// Forgets the token of `server`; whether there was one.
    ///
    /// # Errors
    ///
    /// As [`store`](Self::store).
    pub fn remove(&self, server: &str) -> Result<bool, Error> {
        self.change(|stored| stored.servers.remove(server).is_some())
            .map(|(removed, _)| removed)
    }

    /// The servers with a token, and the URL each was signed in for.
    ///
    /// # Errors
    ///
    /// As [`load`](Self::load).
    pub fn servers(&self) -> Result<Vec<(String, String)>, Error> {
        let Some((text, _)) = self
            .file
            .read()
            .map_err(|error| Error::TokenFile(error.to_string()))?
        else {
            return Ok(Vec::new());
        };
        Ok(self
            .parse(&text)?
            .servers
            .into_iter()
            .map(|(server, entry)| (server, entry.url))
            .collect())
    }

    fn change(
        &self,
        change: impl FnOnce(&mut Stored) -> bool,
    ) -> Result<(bool, Option<Stamp>), Error> {
        let (outcome, stamp) = self
            .file
            .update(|text| {
                let mut stored = match text.as_deref().map(|text| self.parse(text)) {
                    None => Stored {
                        version: Stored::VERSION,
                        ..Stored::default()
                    },
                    Some(Ok(stored)) => stored,
                    Some(Err(error)) => return (Err(error), None),
                };
                if !change(&mut stored) {
                    return (Ok(false), None);
                }
                match serde_json::to_string_pretty(&stored) {
                    Ok(text) => (Ok(true), Some(text + "\n")),
                    Err(error) => (Err(Error::TokenFile(error.to_string())), None),
                }
            })
            .map_err(|error| Error::TokenFile(error.to_string()))?;
        Ok((outcome?, stamp))
    }
}

/// Who signs in to which server, and how.
pub struct SignIn {
    /// The server's name: the key of its token in the file, and what the
    /// user is told to sign in to.
    pub server: String,
    /// Its MCP endpoint.
    pub url: String,
    /// This client, as the authorization server is to know it.
    pub client: ClientInfo,
    /// The scopes to ask for; `None`: those the server names.
    pub scope: Option<String>,
    /// Where tokens are kept between runs; `None`: in memory only.
    pub file: Option<TokenFile>,
    /// Where the user is sent to sign in; `None`: never from here (the
    /// user runs `mcp-manager login`).
    pub browser: Option<Box<dyn Browser>>,
}

enum Command {
    Refused {
        sent: Option<String>,
        status: u16,
        challenge: Option<String>,
        reply: oneshot::Sender<Result<Arc<str>, String>>,
    },
    SignIn {
        reply: oneshot::Sender<Result<Grant, String>>,
    },
}

type Current = Arc<ArcSwap<Option<Arc<str>>>>;

/// The tokens of one server: a [`TokenSource`] for its link.
pub struct Tokens {
    current: Current,
    setup: Mutex<Option<Waiting>>,
    commands: OnceLock<mpsc::Sender<Command>>,
}

impl Tokens {
    /// The tokens of `sign_in.server`, starting with the one kept in its
    /// file, if any (a file that cannot be read is logged, and left as it
    /// is). Nothing else is made until a server first refuses a token:
    /// most servers never ask for one.
    #[must_use]
    pub fn new(mut sign_in: SignIn) -> Self {
        let (grant, stamp) = match &sign_in.file {
            Some(file) => file
                .load(&sign_in.server, &sign_in.url)
                .unwrap_or_else(|error| {
                    tracing::warn!(server = %sign_in.server, "{error}");
                    (None, None)
                }),
            None => (None, None),
        };
        let current: Current = Arc::new(ArcSwap::from_pointee(
            grant.as_ref().map(|g| Arc::from(g.access_token.as_str())),
        ));
        if sign_in.client.registered.is_none() {
            // The client a kept token was got with signs in again.
            sign_in.client.registered = grant.as_ref().map(|g| g.registration.clone());
        }
        let waiting = Waiting {
            sign_in,
            grant,
            stamp,
        };
        Self {
            current,
            setup: Mutex::new(Some(waiting)),
            commands: OnceLock::new(),
        }
    }

    /// The actor's queue, the actor started at the first call (callers
    /// that come together wait for that one start).
    fn commands(&self) -> Option<&mpsc::Sender<Command>> {
        let commands = self.commands.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            let waiting = self
                .setup
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            match (waiting, crate::http_client()) {
                (Some(waiting), Ok(http)) => {
                    tokio::spawn(waiting.start(self.current.clone(), http).run(receiver));
                }
                (Some(waiting), Err(error)) => {
                    tracing::warn!(server = %waiting.sign_in.server, "{error}");
                }
                (None, _) => {}
            }
            sender
        });
        (!commands.is_closed()).then_some(commands)
    }

    /// Signs in now: the server's challenge (to an `initialize` without a
    /// token) or its metadata say where; the user goes through the
    /// [`Browser`]; the token is kept. For `mcp-manager login`.
    ///
    /// # Errors
    ///
    /// A message naming the step that failed.
    pub async fn sign_in(&self) -> Result<Grant, String> {
        let (reply, answer) = oneshot::channel();
        self.commands()
            .ok_or("the sign-in task is gone")?
            .send(Command::SignIn { reply })
            .await
            .map_err(|_| "the sign-in task is gone".to_owned())?;
        answer
            .await
            .unwrap_or_else(|_| Err("the sign-in task is gone".to_owned()))
    }
}

impl TokenSource for Tokens {
    fn token(&self) -> Option<Arc<str>> {
        self.current.load().as_ref().clone()
    }

    fn refused<'a>(
        &'a self,
        sent: Option<&'a str>,
        status: u16,
        challenge: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Arc<str>, String>> {
        Box::pin(async move {
            let gone = || "the sign-in task is gone".to_owned();
            let (reply, answer) = oneshot::channel();
            let command = Command::Refused {
                sent: sent.map(str::to_owned),
                status,
                challenge: challenge.map(str::to_owned),
                reply,
            };
            self.commands()
                .ok_or_else(gone)?
                .send(command)
                .await
                .map_err(|_| gone())?;
            answer.await.unwrap_or_else(|_| Err(gone()))
        })
    }
}

/// What the actor starts from, until a server first refuses a token.
struct Waiting {
    sign_in: SignIn,
    grant: Option<Grant>,
    stamp: Option<Stamp>,
}

impl Waiting {
    fn start(self, current: Current, http: reqwest::Client) -> Actor {
        Actor {
            current,
            http,
            requested: self.grant.as_ref().and_then(|g| g.scope.clone()),
            sign_in: self.sign_in,
            grant: self.grant,
            stamp: self.stamp,
            discovery: None,
            renewed: None,
        }
    }
}

/// The task that gets new tokens, one at a time.
struct Actor {
    current: Current,
    sign_in: SignIn,
    http: reqwest::Client,
    grant: Option<Grant>,
    /// The scopes asked for so far.
    requested: Option<String>,
    /// The stamp of the file when it was last read or written.
    stamp: Option<Stamp>,
    discovery: Option<Discovery>,
    /// When the current token was got (refreshed or signed in for).
    renewed: Option<std::time::Instant>,
}

impl Actor {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        while let Some(command) = commands.recv().await {
            match command {
                Command::Refused {
                    sent,
                    status,
                    challenge,
                    reply,
                } => {
                    let answer = self
                        .refused(sent.as_deref(), status, challenge.as_deref())
                        .await;
                    let _ = reply.send(answer);
                }
                Command::SignIn { reply } => {
                    let _ = reply.send(self.sign_in_now().await);
                }
            }
        }
    }

    fn server(&self) -> &str {
        &self.sign_in.server
    }

    /// The scopes configured and those asked for so far.
    fn base_scope(&self) -> Option<String> {
        union(self.sign_in.scope.as_deref(), self.requested.as_deref())
    }

    async fn refused(
        &mut self,
        sent: Option<&str>,
        status: u16,
        challenge: Option<&str>,
    ) -> Result<Arc<str>, String> {
        if let Some(current) = self.current.load().as_ref().clone() {
            if sent != Some(&*current) {
                return Ok(current);
            }
        }
        if let Some(grant) = self.reload() {
            if sent != Some(grant.access_token.as_str()) {
                tracing::info!(server = %self.server(), "using the token signed in with since");
                return Ok(self.publish(grant));
            }
        }
        let challenge = challenge.and_then(client::challenge).unwrap_or_default();
        let step_up = status == 403 || challenge.error.as_deref() == Some("insufficient_scope");
        if let (true, Some(grant), Some(wanted)) = (step_up, &self.grant, &challenge.scope) {
            let granted: Vec<&str> = grant
                .scope
                .as_deref()
                .unwrap_or_default()
                .split_ascii_whitespace()
                .collect();
            if wanted
                .split_ascii_whitespace()
                .all(|scope| granted.contains(&scope))
            {
                return Err(format!(
                    "`{}` refuses its token for lacking the scope `{wanted}`, which the token was granted: signing in again would not help",
                    self.server()
                ));
            }
        }
        // A token got a moment ago and refused at once (the server wants
        // another audience, say): refreshing again would only hammer the
        // authorization server.
        let fresh = self
            .renewed
            .is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(10));
        if fresh && !step_up {
            return Err(format!(
                "`{}` refuses even a token got a moment ago: run `mcp-manager login {}`, or check the server's audience and scopes",
                self.server(),
                self.server()
            ));
        }
        let mut why = None;
        if !step_up {
            if let Some(grant) = self.grant.clone().filter(|g| g.refresh_token.is_some()) {
                match client::refresh(&self.http, &grant).await {
                    Ok(fresh) => {
                        tracing::info!(server = %self.server(), "refreshed the access token");
                        self.keep_or_log(&fresh);
                        return Ok(self.publish(fresh));
                    }
                    Err(error) => {
                        tracing::warn!(server = %self.server(), "refreshing the access token failed: {error}");
                        why = Some(format!("its token could not be refreshed ({error})"));
                    }
                }
            }
        }
        let scope = union(self.base_scope().as_deref(), challenge.scope.as_deref());
        if self.sign_in.browser.is_none() {
            let why = why.unwrap_or_else(|| match (&challenge.scope, step_up) {
                (Some(scope), true) => format!("it asks for a token with the scope `{scope}`"),
                _ if self.grant.is_some() => "it refused the token signed in with".to_owned(),
                _ => "it asks to be signed in to with OAuth".to_owned(),
            });
            let server = self.server();
            return Err(format!(
                "`{server}`: {why}: run `mcp-manager login {server}`"
            ));
        }
        let grant = self.authorize(Some(&challenge), scope.as_deref()).await?;
        self.keep_or_log(&grant);
        Ok(self.publish(grant))
    }

    /// The token in the file, when the file changed since it was last
    /// read or written here.
    fn reload(&mut self) -> Option<Grant> {
        let file = self.sign_in.file.as_ref()?;
        let stamp = file.file.stamp();
        if stamp.is_none() || stamp == self.stamp {
            return None;
        }
        match file.load(&self.sign_in.server, &self.sign_in.url) {
            Ok((grant, stamp)) => {
                self.stamp = stamp;
                let grant = grant?;
                self.requested = union(self.requested.as_deref(), grant.scope.as_deref());
                Some(grant)
            }
            Err(error) => {
                tracing::warn!(server = %self.server(), "{error}");
                None
            }
        }
    }

    fn publish(&mut self, grant: Grant) -> Arc<str> {
        self.renewed = Some(std::time::Instant::now());
        let token: Arc<str> = Arc::from(grant.access_token.as_str());
        self.current.store(Arc::new(Some(token.clone())));
        self.grant = Some(grant);
        token
    }

    /// Keeps `grant` in the file, if there is one.
    fn keep(&mut self, grant: &Grant) -> Result<(), String> {
        let Some(file) = &self.sign_in.file else {
            return Ok(());
        };
        let stamp = file
            .store(&self.sign_in.server, &self.sign_in.url, grant)
            .map_err(|error| format!("the token could not be kept: {error}"))?;
        self.stamp = stamp;
        Ok(())
    }

    /// [`keep`](Self::keep), for a token in use: a failure is logged (the
    /// token serves this process all the same).
    fn keep_or_log(&mut self, grant: &Grant) {
        if let Err(error) = self.keep(grant) {
            tracing::warn!(server = %self.sign_in.server, "{error}");
        }
    }

    /// The whole flow: discovery (once, or again when the challenge names
    /// other metadata), the user's visit, the token.
    async fn authorize(
        &mut self,
        challenge: Option<&Challenge>,
        scope: Option<&str>,
    ) -> Result<Grant, String> {
        let stale = self.discovery.as_ref().is_none_or(|known| {
            challenge
                .and_then(|c| c.resource_metadata.as_deref())
                .is_some_and(|given| known.resource_metadata_url != given)
        });
        if stale {
            self.discovery =
                Some(client::discover(&self.http, &self.sign_in.url, challenge).await?);
        }
        let discovery = self
            .discovery
            .clone()
            .ok_or("the authorization server could not be found")?;
        let scope = scope.map(str::to_owned).or_else(|| discovery.scope.clone());
        let browser = self
            .sign_in
            .browser
            .as_deref_mut()
            .ok_or("there is no way to send the user to sign in")?;
        let grant = client::authorize(
            &self.http,
            &discovery,
            &self.sign_in.client,
            scope.as_deref(),
            browser,
        )
        .await?;
        self.requested = union(self.requested.as_deref(), scope.as_deref());
        // Registered once: a later sign-in (a step-up) is the same client.
        if self.sign_in.client.registered.is_none() {
            self.sign_in.client.registered = Some(grant.registration.clone());
        }
        tracing::info!(server = %self.server(), "signed in");
        Ok(grant)
    }

    /// Signs in from scratch: the challenge of an `initialize` sent
    /// without a token, when the server gives one; the token kept (or
    /// an error saying why it could not be).
    async fn sign_in_now(&mut self) -> Result<Grant, String> {
        let challenge = self.probe().await;
        let scope = union(
            self.base_scope().as_deref(),
            challenge.as_ref().and_then(|c| c.scope.as_deref()),
        );
        let grant = match self.authorize(challenge.as_ref(), scope.as_deref()).await {
            Err(error) if challenge.is_none() && self.discovery.is_none() => {
                return Err(format!(
                    "it did not ask for a token (its `initialize` needs none) and says nowhere how to sign in to it: {error}"
                ));
            }
            outcome => outcome?,
        };
        self.keep(&grant)?;
        self.publish(grant.clone());
        Ok(grant)
    }

    /// The server's challenge to an `initialize` without a token; `None`
    /// when it answers something else.
    async fn probe(&self) -> Option<Challenge> {
        let initialize = serde_json::json!({
            "jsonrpc": "2.0", "id": 0, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": self.sign_in.client.name, "version": env!("CARGO_PKG_VERSION")}}
        });
        let answer = self
            .http
            .post(&self.sign_in.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(initialize.to_string())
            .send()
            .await
            .ok()?;
        if answer.status() != reqwest::StatusCode::UNAUTHORIZED {
            return None;
        }
        answer
            .headers()
            .get("www-authenticate")
            .and_then(|value| value.to_str().ok())
            .and_then(client::challenge)
    }
}

/// The scopes of `a` and then those of `b` not in `a`; `None` when both
/// are empty.
fn union(a: Option<&str>, b: Option<&str>) -> Option<String> {
    let mut words: Vec<&str> = Vec::new();
    for word in a.into_iter().chain(b).flat_map(str::split_ascii_whitespace) {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    (!words.is_empty()).then(|| words.join(" "))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::client::Registration;

    fn grant(token: &str) -> Grant {
        Grant {
            access_token: token.to_owned(),
            refresh_token: Some("r".to_owned()),
            expires_at: Some(1),
            scope: Some("a".to_owned()),
            token_endpoint: "https://as/token".to_owned(),
            resource: "https://mcp/mcp".to_owned(),
            registration: Registration {
                client_id: "c".to_owned(),
                client_secret: Some("s".to_owned()),
                auth_method: "client_secret_basic".to_owned(),
            },
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let shown = format!("{:?}", grant("t0ken-value"));
        assert!(
            !shown.contains("t0ken-value") && !shown.contains("\"r\""),
            "{shown}"
        );
        assert!(!shown.contains("\"s\""), "{shown}");
        assert!(shown.contains("https://as/token"), "{shown}");
    }

    #[test]
    fn scopes_are_joined_without_repeats() {
        assert_eq!(union(Some("a b"), Some("b c")).as_deref(), Some("a b c"));
        assert_eq!(union(None, Some("x")).as_deref(), Some("x"));
        assert_eq!(union(Some(" "), None), None);
    }

    #[test]
    fn tokens_are_kept_per_server_and_url_for_the_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = TokenFile::new(dir.path().join("d/tokens.json"));
        assert!(file.load("s", "https://mcp/mcp").unwrap().0.is_none());
        file.store("s", "https://mcp/mcp", &grant("t1")).unwrap();
        file.store("other", "https://o/mcp", &grant("t2")).unwrap();
        let mode = std::fs::metadata(file.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            file.load("s", "https://mcp/mcp").unwrap().0,
            Some(grant("t1"))
        );
        // Signed in for one URL, never sent to another.
        assert_eq!(file.load("s", "https://evil/mcp").unwrap().0, None);
        assert_eq!(file.servers().unwrap().len(), 2);
        assert!(file.remove("s").unwrap());
        assert!(!file.remove("s").unwrap());
        assert_eq!(file.load("s", "https://mcp/mcp").unwrap().0, None);
    }

    #[test]
    fn a_file_that_is_not_a_tokens_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, "[1]").unwrap();
        let file = TokenFile::new(&path);
        assert!(file.load("s", "u").is_err());
        let error = file.store("s", "u", &grant("t")).unwrap_err();
        assert!(error.to_string().contains("not a tokens file"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[1]");
    }

    #[tokio::test]
    async fn without_a_browser_a_refusal_says_what_to_run() {
        let tokens = Tokens::new(SignIn {
            server: "remote".to_owned(),
            url: "http://127.0.0.1:9/mcp".to_owned(),
            client: ClientInfo {
                name: "t".to_owned(),
                redirect_uri: "http://127.0.0.1:9/callback".to_owned(),
                metadata_url: None,
                registered: None,
            },
            scope: None,
            file: None,
            browser: None,
        });
        assert_eq!(tokens.token(), None);
        let error = tokens
            .refused(None, 401, Some(r#"Bearer scope="x""#))
            .await
            .unwrap_err();
        assert_eq!(
            error,
            "`remote`: it asks to be signed in to with OAuth: run `mcp-manager login remote`"
        );
        let error = tokens
            .refused(
                None,
                403,
                Some(r#"Bearer error="insufficient_scope", scope="x y""#),
            )
            .await
            .unwrap_err();
        assert!(error.contains("the scope `x y`"), "{error}");
    }
}
