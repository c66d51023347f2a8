//! [`Loopback`]: where the user's browser comes back to after signing in
//! (RFC 8252's loopback redirect): a listener on `127.0.0.1` that waits
//! for the `GET /callback?code=…&state=…` that carries the `state` of the
//! authorization URL the user was sent to, answers the browser with a
//! short page, and hands the query to the flow. Anything else that comes
//! (another path, another state: a page or a local program poking at the
//! port) is turned away without ending the wait.

use std::time::Duration;

use mcp_core::BoxFuture;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

use crate::client::Browser;

/// The path the authorization server sends the user back to.
const CALLBACK: &str = "/callback";
/// The most of a request read.
const MAX_REQUEST: usize = 16 * 1024;
/// How long one connection may take to send its request (a browser's idle
/// preconnection holds the wait that long at most).
const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// A loopback listener that is the user's way back.
pub struct Loopback {
    listener: TcpListener,
    port: u16,
    announce: Box<dyn FnMut(&str) + Send + Sync>,
    wait: Duration,
}

impl Loopback {
    /// Listens on `127.0.0.1:port` (`0`: any free port); `announce` is
    /// given the URL the user is to open; the user has `wait` to come
    /// back.
    ///
    /// # Errors
    ///
    /// When the port cannot be listened on.
    pub async fn bind(
        port: u16,
        wait: Duration,
        announce: Box<dyn FnMut(&str) + Send + Sync>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let port = listener.local_addr()?.port();
        Ok(Self {
            listener,
            port,
            announce,
            wait,
        })
    }

    /// The redirect URI to register and send: `http://127.0.0.1:PORT/callback`.
    #[must_use]
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}{CALLBACK}", self.port)
    }

    /// The query of the first request for the callback path with
    /// `state`; other requests (a browser's `/favicon.ico`, a callback
    /// with another state) get 404 or 400.
    async fn callback(&self, state: Option<&str>) -> Result<String, String> {
        loop {
            let (mut stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|error| format!("waiting for the browser: {error}"))?;
            let Ok(Ok(head)) = tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await
            else {
                continue;
            };
            let target = head
                .lines()
                .next()
                .and_then(|line| line.strip_prefix("GET "))
                .and_then(|rest| rest.split(' ').next())
                .unwrap_or_default();
            let (path, query) = target.split_once('?').unwrap_or((target, ""));
            if path != CALLBACK {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let theirs = crate::client::parse_form(query)
                .into_iter()
                .find(|(name, _)| name == "state")
                .map(|(_, value)| value);
            if state.is_some() && theirs.as_deref() != state {
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let refused = query.split('&').any(|pair| pair.starts_with("error="));
            let page = if refused {
                "<!doctype html><title>mcp-manager</title><p>The sign-in was refused; see the terminal."
            } else {
                "<!doctype html><title>mcp-manager</title><p>Back in mcp-manager. You can close this window: the terminal says how signing in went."
            };
            let answer = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html; charset=utf-8\r\ncontent-length: {}\r\ncache-control: no-store\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = stream.write_all(answer.as_bytes()).await;
            let _ = stream.shutdown().await;
            return Ok(query.to_owned());
        }
    }
}

impl Browser for Loopback {
    fn visit(&mut self, url: &str) -> BoxFuture<'_, Result<String, String>> {
        (self.announce)(url);
        let state = url
            .split_once('?')
            .map(|(_, query)| crate::client::parse_form(query))
            .unwrap_or_default()
            .into_iter()
            .find(|(name, _)| name == "state")
            .map(|(_, value)| value);
        Box::pin(async move {
            tokio::time::timeout(self.wait, self.callback(state.as_deref()))
                .await
                .map_err(|_| {
                    format!(
                        "nobody came back to {} within {} s",
                        self.redirect_uri(),
                        self.wait.as_secs()
                    )
                })?
        })
    }
}

/// A request's head: up to the blank line, at most [`MAX_REQUEST`] bytes.
async fn read_head(stream: &mut tokio::net::TcpStream) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0_u8; 2048];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        let read = stream.read(&mut buf).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(buf.get(..read).unwrap_or_default());
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_callback_query_is_handed_over_and_other_paths_are_not() {
        let (tx, rx) = std::sync::mpsc::channel();
        let mut loopback = Loopback::bind(
            0,
            Duration::from_secs(10),
            Box::new(move |url| tx.send(url.to_owned()).unwrap()),
        )
        .await
        .unwrap();
        let uri = loopback.redirect_uri();
        assert!(uri.starts_with("http://127.0.0.1:") && uri.ends_with("/callback"));
        let base = uri.trim_end_matches(CALLBACK).to_owned();
        let browser = tokio::spawn(async move {
            let client = crate::http_client().unwrap();
            let other = client
                .get(format!("{base}/favicon.ico"))
                .send()
                .await
                .unwrap();
            assert_eq!(other.status(), 404);
            // A callback with another state does not end the wait.
            let forged = client
                .get(format!("{base}/callback?code=evil&state=guess"))
                .send()
                .await
                .unwrap();
            assert_eq!(forged.status(), 400);
            let page = client
                .get(format!("{base}/callback?code=abc&state=xyz"))
                .send()
                .await
                .unwrap();
            assert_eq!(page.status(), 200);
            page.text().await.unwrap()
        });
        let query = loopback
            .visit("https://as/authorize?client_id=c&state=xyz")
            .await
            .unwrap();
        assert_eq!(query, "code=abc&state=xyz");
        assert!(browser.await.unwrap().contains("close this window"));
        assert_eq!(
            rx.recv().unwrap(),
            "https://as/authorize?client_id=c&state=xyz"
        );
    }

    #[tokio::test]
    async fn nobody_coming_back_is_an_error_in_time() {
        let mut loopback = Loopback::bind(0, Duration::from_millis(200), Box::new(|_| {}))
            .await
            .unwrap();
        let error = loopback.visit("https://as/authorize").await.unwrap_err();
        assert!(error.starts_with("nobody came back"), "{error}");
    }
}
