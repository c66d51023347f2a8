//! The issuer's signing keys: found (from `jwksUri`, or the issuer's
//! metadata), fetched, cached as one snapshot, and fetched again by one
//! task when a token names a key the snapshot lacks.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use mcp_core::config::AuthConfig;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::get_json;
use crate::metadata::split_origin;

/// The least time between two fetches of the keys.
const MIN_REFETCH: Duration = Duration::from_secs(10);
/// How often the keys are fetched anyway, so that a key the issuer
/// withdrew stops being accepted.
const REFRESH: Duration = Duration::from_secs(15 * 60);

/// Why no key was found for a token.
#[derive(Debug)]
pub(crate) enum KeyError {
    /// The keys are known and none fits.
    Unknown(String),
    /// The keys were never had and cannot be fetched.
    Unavailable(String),
}

/// One key of the set, ready to verify with.
struct Key {
    decoding: Arc<DecodingKey>,
    /// The algorithm the key is for, when the set says.
    alg: Option<String>,
}

/// The keys by `kid`, as last fetched.
#[derive(Default)]
struct KeySet {
    by_kid: HashMap<String, Key>,
    /// Keys without a `kid`, for tokens without one.
    anonymous: Vec<Key>,
}

/// The cached keys, and the way to ask the fetching task for new ones.
pub(crate) struct Keys {
    current: Arc<ArcSwapOption<KeySet>>,
    refetch: mpsc::Sender<oneshot::Sender<Result<(), String>>>,
}

impl Keys {
    /// The keys of `config`'s issuer, fetched by a task started now.
    pub(crate) fn start(config: &AuthConfig, client: reqwest::Client) -> Self {
        let current = Arc::new(ArcSwapOption::empty());
        let (refetch, requests) = mpsc::channel(64);
        let fetcher = Fetcher {
            client,
            issuer: config.issuer().as_str().to_owned(),
            jwks_uri: config.jwks_uri().map(|url| url.as_str().to_owned()),
            current: current.clone(),
            last_try: None,
            last_error: None,
        };
        tokio::spawn(fetcher.run(requests));
        Self { current, refetch }
    }

    /// The key to verify a token whose header names `kid` and `alg`.
    pub(crate) async fn get(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Arc<DecodingKey>, KeyError> {
        if let Some(set) = self.current.load_full() {
            if let Some(key) = find(&set, kid, alg)? {
                return Ok(key);
            }
        }
        // Not known (yet): ask for the keys again, once for everybody.
        let (reply, answer) = oneshot::channel();
        let asked = self.refetch.try_send(reply);
        let fetched = match asked {
            Ok(()) => answer
                .await
                .unwrap_or_else(|_| Err("the key fetcher stopped".to_owned())),
            Err(_) => Err("too many requests for keys at once".to_owned()),
        };
        match (self.current.load_full(), fetched) {
            (Some(set), _) => find(&set, kid, alg)?.ok_or_else(|| {
                KeyError::Unknown(format!(
                    "no key {} in the issuer's key set",
                    kid.unwrap_or("(without kid)")
                ))
            }),
            (None, Err(why)) => Err(KeyError::Unavailable(why)),
            (None, Ok(())) => Err(KeyError::Unavailable("the key set is empty".to_owned())),
        }
    }
}

/// The key of `set` for `kid` and `alg`: `None` when there is none; an
/// error when the key is for another algorithm.
fn find(
    set: &KeySet,
    kid: Option<&str>,
    alg: Algorithm,
) -> Result<Option<Arc<DecodingKey>>, KeyError> {
    let key = match kid {
        Some(kid) => set.by_kid.get(kid),
        // Without a kid, only an unambiguous set will do.
        None => match (set.anonymous.as_slice(), set.by_kid.len()) {
            ([only], 0) => Some(only),
            ([], 1) => set.by_kid.values().next(),
            _ => None,
        },
    };
    let Some(key) = key else {
        return Ok(None);
    };
    if key
        .alg
        .as_deref()
        .is_some_and(|own| Some(own) != algorithm_name(alg))
    {
        return Err(KeyError::Unknown(format!(
            "the key is for {:?}, the token says {alg:?}",
            key.alg
        )));
    }
    Ok(Some(key.decoding.clone()))
}

fn algorithm_name(alg: Algorithm) -> Option<&'static str> {
    Some(match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::EdDSA => "EdDSA",
        _ => return None,
    })
}

/// The task that fetches the keys.
struct Fetcher {
    client: reqwest::Client,
    issuer: String,
    jwks_uri: Option<String>,
    current: Arc<ArcSwapOption<KeySet>>,
    last_try: Option<Instant>,
    last_error: Option<String>,
}

impl Fetcher {
    async fn run(mut self, mut requests: mpsc::Receiver<oneshot::Sender<Result<(), String>>>) {
        let mut refresh = tokio::time::interval(REFRESH);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is at once: nobody needs the keys yet.
        refresh.tick().await;
        loop {
            let mut waiting = Vec::new();
            tokio::select! {
                request = requests.recv() => match request {
                    Some(reply) => waiting.push(reply),
                    None => return,
                },
                _ = refresh.tick() => {
                    if self.current.load().is_none() {
                        continue;
                    }
                }
            }
            while let Ok(reply) = requests.try_recv() {
                waiting.push(reply);
            }
            let outcome = self.fetch_if_due().await;
            for reply in waiting {
                let _ = reply.send(outcome.clone());
            }
        }
    }

    /// Fetches the keys, unless they were tried less than
    /// [`MIN_REFETCH`] ago: then what that try gave.
    async fn fetch_if_due(&mut self) -> Result<(), String> {
        if self.last_try.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            return match &self.last_error {
                Some(error) => Err(error.clone()),
                None => Ok(()),
            };
        }
        self.last_try = Some(Instant::now());
        let fetched = self.fetch().await;
        match fetched {
            Ok(set) => {
                tracing::debug!(
                    "fetched the issuer's keys: {} with a kid, {} without",
                    set.by_kid.len(),
                    set.anonymous.len()
                );
                self.current.store(Some(Arc::new(set)));
                self.last_error = None;
                Ok(())
            }
            Err(error) => {
                tracing::warn!("cannot fetch the issuer's keys: {error}");
                self.last_error = Some(error.clone());
                Err(error)
            }
        }
    }

    async fn fetch(&mut self) -> Result<KeySet, String> {
        let jwks_uri = match &self.jwks_uri {
            Some(uri) => uri.clone(),
            None => {
                let uri = self.discover().await?;
                self.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let document = get_json(&self.client, &jwks_uri).await?;
        key_set(&document)
    }

    /// The issuer's `jwks_uri`, from its authorization server metadata
    /// (RFC 8414), else its OpenID configuration.
    async fn discover(&self) -> Result<String, String> {
        let issuer = self.issuer.trim_end_matches('/');
        let (origin, path) = split_origin(issuer);
        let candidates = [
            format!("{origin}/.well-known/oauth-authorization-server{path}"),
            format!("{issuer}/.well-known/openid-configuration"),
        ];
        let mut errors = Vec::new();
        for url in candidates {
            match get_json(&self.client, &url).await {
                Ok(metadata) => {
                    let named = metadata.get("issuer").and_then(Value::as_str);
                    if named != Some(self.issuer.as_str()) {
                        errors.push(format!(
                            "{url} names the issuer {named:?}, not {:?}",
                            self.issuer
                        ));
                        continue;
                    }
                    return metadata
                        .get("jwks_uri")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                        .ok_or_else(|| format!("{url} has no jwks_uri"));
                }
                Err(error) => errors.push(error),
            }
        }
        Err(format!(
            "the issuer's metadata cannot be had: {}",
            errors.join("; ")
        ))
    }
}

/// The signing keys of a JWKS document; keys that cannot be read, or are
/// for encryption, are left out.
fn key_set(document: &Value) -> Result<KeySet, String> {
    let keys = document
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("the key set has no `keys` array")?;
    let mut set = KeySet::default();
    for value in keys {
        if value.get("use").and_then(Value::as_str) == Some("enc") {
            continue;
        }
        let Ok(jwk) = serde_json::from_value::<Jwk>(value.clone()) else {
            continue;
        };
        let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
            continue;
        };
        let key = Key {
            decoding: Arc::new(decoding),
            alg: value.get("alg").and_then(Value::as_str).map(str::to_owned),
        };
        match value.get("kid").and_then(Value::as_str) {
            Some(kid) => {
                set.by_kid.insert(kid.to_owned(), key);
            }
            None => set.anonymous.push(key),
        }
    }
    if set.by_kid.is_empty() && set.anonymous.is_empty() {
        return Err("the key set has no signing key that can be read".to_owned());
    }
    Ok(set)
}
