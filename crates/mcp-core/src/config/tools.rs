//! Which of a server's tools the gateway exposes: [`ToolFilter`].

use std::fmt;

/// A tool name pattern: literal characters plus `*`, which matches any
/// run of characters (including none). `read_*` matches `read_file` and
/// `read_`; `*` matches everything. Matching is case-sensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ToolPattern(String);

impl ToolPattern {
    pub(crate) fn new(pattern: &str) -> Self {
        Self(pattern.to_owned())
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern contains no `*`, i.e. names a single tool.
    pub fn is_exact(&self) -> bool {
        !self.0.contains('*')
    }

    /// Whether `name` matches the pattern.
    pub fn matches(&self, name: &str) -> bool {
        wildcard_match(self.0.as_bytes(), name.as_bytes())
    }
}

impl fmt::Display for ToolPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Greedy matching with backtracking to the last `*`: linear in practice,
/// `O(pattern × name)` at worst, and no recursion. Working on bytes is
/// exact for UTF-8: a literal can only match at a character boundary.
fn wildcard_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    // After the last `*` seen: where the pattern resumes and the name
    // position that star has consumed up to.
    let mut star: Option<(usize, usize)> = None;
    loop {
        match (pattern.get(p), name.get(n)) {
            (Some(b'*'), _) => {
                p += 1;
                star = Some((p, n));
            }
            (Some(pc), Some(nc)) if pc == nc => {
                p += 1;
                n += 1;
            }
            (None, None) => return true,
            _ => match star {
                Some((resume, consumed)) if consumed < name.len() => {
                    star = Some((resume, consumed + 1));
                    p = resume;
                    n = consumed + 1;
                }
                _ => return false,
            },
        }
    }
}

/// The tools of one server that the gateway exposes, from the entry's
/// `"tools": {"allow": [...], "deny": [...]}`.
///
/// A tool is permitted when it matches some `allow` pattern (or there is no
/// `allow` list) and matches no `deny` pattern. Patterns apply to the name
/// the server itself gives the tool, before any namespace prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolFilter {
    allow: Option<Vec<ToolPattern>>,
    deny: Vec<ToolPattern>,
}

impl ToolFilter {
    pub(crate) fn new(allow: Option<Vec<ToolPattern>>, deny: Vec<ToolPattern>) -> Self {
        Self { allow, deny }
    }

    /// Whether the tool `name` is exposed.
    pub fn permits(&self, name: &str) -> bool {
        let allowed = self
            .allow
            .as_ref()
            .is_none_or(|allow| allow.iter().any(|p| p.matches(name)));
        allowed && !self.deny.iter().any(|p| p.matches(name))
    }

    /// The `allow` list; `None` when absent (every tool allowed).
    pub fn allow(&self) -> Option<&[ToolPattern]> {
        self.allow.as_deref()
    }

    /// The `deny` list.
    pub fn deny(&self) -> &[ToolPattern] {
        &self.deny
    }

    /// Whether the filter permits every tool (no allow list, no deny list).
    pub fn is_unrestricted(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pattern(p: &str) -> ToolPattern {
        ToolPattern::new(p)
    }

    fn filter(allow: Option<&[&str]>, deny: &[&str]) -> ToolFilter {
        let list = |names: &[&str]| names.iter().map(|n| pattern(n)).collect::<Vec<_>>();
        ToolFilter::new(allow.map(list), list(deny))
    }

    #[test]
    fn literal_and_wildcard_patterns() {
        let cases = [
            ("read_file", "read_file", true),
            ("read_file", "read_files", false),
            ("read_*", "read_file", true),
            ("read_*", "read_", true),
            ("read_*", "write_file", false),
            ("*", "", true),
            ("*", "anything", true),
            ("*_file", "write_file", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a*a", "a", false),
            ("**", "x", true),
            ("", "", true),
            ("", "x", false),
            ("é*", "éa", true),
            ("*é", "aé", true),
            ("Read", "read", false),
        ];
        for (p, name, expected) in cases {
            assert_eq!(pattern(p).matches(name), expected, "{p} vs {name}");
        }
        assert!(pattern("x").is_exact());
        assert!(!pattern("x*").is_exact());
    }

    #[test]
    fn permits_what_is_allowed_and_not_denied() {
        let all = ToolFilter::default();
        assert!(all.permits("anything"));
        assert!(all.is_unrestricted());

        let allow = filter(Some(&["read_*", "list"]), &[]);
        assert!(allow.permits("read_x"));
        assert!(allow.permits("list"));
        assert!(!allow.permits("delete"));

        let deny = filter(None, &["delete_*"]);
        assert!(deny.permits("read"));
        assert!(!deny.permits("delete_repo"));

        let both = filter(Some(&["*"]), &["secret"]);
        assert!(!both.permits("secret"));
        assert!(both.permits("public"));
        assert_eq!(both.deny()[0].as_str(), "secret");
        assert_eq!(both.allow().map(<[ToolPattern]>::len), Some(1));

        let none = filter(Some(&[]), &[]);
        assert!(!none.permits("x"));
        assert!(!none.is_unrestricted());
    }

    /// An obviously correct (exponential) matcher to compare against.
    fn reference(p: &[u8], n: &[u8]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some((b'*', rest)) => (0..=n.len()).any(|i| reference(rest, &n[i..])),
            Some((c, rest)) => n.first() == Some(c) && reference(rest, &n[1..]),
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_reference(p in "[ab*]{0,8}", n in "[ab]{0,10}") {
            prop_assert_eq!(pattern(&p).matches(&n), reference(p.as_bytes(), n.as_bytes()));
        }

        #[test]
        fn a_literal_matches_itself(name in "[^*]{0,20}") {
            prop_assert!(pattern(&name).matches(&name));
        }
    }
}
