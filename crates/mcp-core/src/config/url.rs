//! [`HttpUrl`]: the address of a remote server, checked just enough to catch
//! the mistakes people make when writing one by hand.

use std::fmt;

/// An absolute `http://` or `https://` URL with a non-empty host.
///
/// The check is deliberately small: scheme, host, an optional numeric port,
/// and no whitespace. The text is kept exactly as written (after `${VAR}`
/// interpolation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HttpUrl {
    text: String,
    secure: bool,
    host: (usize, usize),
    port: Option<u16>,
}

impl HttpUrl {
    /// Checks `text`; the error says what is wrong with it.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the URL is empty".to_owned());
        }
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("the URL contains {}", describe_char(c)));
        }
        let (scheme, rest) = text.split_once("://").ok_or_else(|| {
            "the URL has no scheme; it must start with `http://` or `https://`".to_owned()
        })?;
        let secure = match scheme.to_ascii_lowercase().as_str() {
            "https" => true,
            "http" => false,
            _ => {
                return Err(format!(
                    "unsupported URL scheme `{scheme}`; use `http` or `https`"
                ));
            }
        };
        let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = rest.get(..authority_len).unwrap_or_default();
        // Credentials (`user:pass@`) come before the host.
        let host_port_start = authority.rfind('@').map_or(0, |at| at + 1);
        let host_port = authority.get(host_port_start..).unwrap_or_default();
        let (host, port) = split_host_port(host_port)?;
        let host_start = scheme.len() + "://".len() + host_port_start;
        Ok(Self {
            text: text.to_owned(),
            secure,
            host: (host_start, host_start + host.len()),
            port,
        })
    }

    /// The URL as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the scheme is `https`.
    pub fn is_https(&self) -> bool {
        self.secure
    }

    /// The host: a name, an IPv4 address, or an IPv6 address in brackets.
    pub fn host(&self) -> &str {
        self.text.get(self.host.0..self.host.1).unwrap_or_default()
    }

    /// The port, when the URL names one.
    pub fn port(&self) -> Option<u16> {
        self.port
    }
}

fn split_host_port(host_port: &str) -> Result<(&str, Option<u16>), String> {
    let (host, port) = if host_port.starts_with('[') {
        let close = host_port
            .find(']')
            .ok_or_else(|| "the IPv6 address in the URL has no closing `]`".to_owned())?;
        let (host, after) = host_port.split_at(close + 1);
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("unexpected `{after}` after the host of the URL")),
        }
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if host.is_empty() || host == "[]" {
        return Err("the URL has no host".to_owned());
    }
    let port = port
        .map(|port| {
            port.parse::<u16>().map_err(|_| {
                format!("the port `{port}` in the URL is not a number from 0 to 65535")
            })
        })
        .transpose()?;
    Ok((host, port))
}

fn describe_char(c: char) -> String {
    if c == ' ' {
        "a space".to_owned()
    } else {
        format!("the character {c:?}")
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https_urls() {
        let url = HttpUrl::parse("https://api.example.com/mcp?x=1").unwrap();
        assert!(url.is_https());
        assert_eq!(url.host(), "api.example.com");
        assert_eq!(url.port(), None);
        assert_eq!(url.as_str(), "https://api.example.com/mcp?x=1");
        let local = HttpUrl::parse("HTTP://127.0.0.1:8080").unwrap();
        assert!(!local.is_https());
        assert_eq!((local.host(), local.port()), ("127.0.0.1", Some(8080)));
        let v6 = HttpUrl::parse("http://[::1]:3000/sse").unwrap();
        assert_eq!((v6.host(), v6.port()), ("[::1]", Some(3000)));
        let creds = HttpUrl::parse("https://user:p@ss@host.example/mcp").unwrap();
        assert_eq!(creds.host(), "host.example");
        assert_eq!(creds.to_string(), "https://user:p@ss@host.example/mcp");
    }

    #[test]
    fn explains_what_is_wrong() {
        let cases = [
            ("", "the URL is empty"),
            ("ftp://example.com", "unsupported URL scheme `ftp`"),
            ("ws://example.com", "unsupported URL scheme `ws`"),
            ("example.com/mcp", "has no scheme"),
            ("http://", "has no host"),
            ("http:///path", "has no host"),
            ("http://:80", "has no host"),
            ("https://host:99999/", "port `99999`"),
            ("https://host:abc", "port `abc`"),
            ("https://ho st/", "a space"),
            ("http://[::1", "no closing `]`"),
            ("http://[::1]x", "unexpected `x`"),
            ("http://[]:80", "has no host"),
        ];
        for (input, expected) in cases {
            let err = HttpUrl::parse(input).unwrap_err();
            assert!(err.contains(expected), "{input}: {err}");
        }
    }
}
