//! JSON paths such as `mcpServers.github.args[2]`, for naming the value an
//! issue is about.

use std::fmt::Write as _;

/// A path from the document root to one value, as issues name it
/// (`mcpServers.github.args[2]`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JsonPath(String);

impl JsonPath {
    /// The document root (an empty path).
    #[must_use]
    pub fn root() -> Self {
        Self::default()
    }

    /// The member `key` of the object at this path: `.key`, or `["key"]`
    /// when the key is not a plain identifier.
    #[must_use]
    pub fn key(&self, key: &str) -> Self {
        let mut path = self.0.clone();
        if is_plain(key) {
            if !path.is_empty() {
                path.push('.');
            }
            path.push_str(key);
        } else {
            path.push('[');
            path.push_str(&serde_json::to_string(key).unwrap_or_default());
            path.push(']');
        }
        Self(path)
    }

    /// The element `index` of the array at this path: `[index]`.
    #[must_use]
    pub fn index(&self, index: usize) -> Self {
        let mut path = self.0.clone();
        let _ = write!(path, "[{index}]");
        Self(path)
    }

    /// The path as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for JsonPath {
    /// A path written out already (as [`JsonPath::as_str`] gives it).
    fn from(written: &str) -> Self {
        Self(written.to_owned())
    }
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_dotted_and_bracketed_paths() {
        let servers = JsonPath::root().key("mcpServers");
        assert_eq!(
            servers.key("github").key("args").index(2).as_str(),
            "mcpServers.github.args[2]"
        );
        assert_eq!(
            servers.key("my server").key("env").as_str(),
            r#"mcpServers["my server"].env"#
        );
        assert_eq!(servers.key("a.b").as_str(), r#"mcpServers["a.b"]"#);
        assert_eq!(servers.key("").as_str(), r#"mcpServers[""]"#);
        assert_eq!(JsonPath::root().key("q\"").as_str(), r#"["q\""]"#);
    }
}
