//! "Did you mean ...?" for misspelt keys and values.

/// The candidate closest to `input`, if one is close enough to be a likely
/// intended spelling. Each candidate is `(spelling, answer)`: a key is
/// suggested for its own spelling and for common other words for the same
/// thing (`environment` for `env`).
///
/// Comparison ignores case, `_` and `-`, and allows about one typo per four
/// characters.
pub(crate) fn closest<'a>(input: &str, candidates: &[(&str, &'a str)]) -> Option<&'a str> {
    const LONGEST: usize = 64;
    let input = normalize(input);
    if input.is_empty() || input.len() > LONGEST {
        return None;
    }
    let length = input.chars().count();
    let budget = (length / 4).clamp(1, 3);
    candidates
        .iter()
        .map(|(spelling, answer)| (normalize(spelling), *answer))
        // The distance is at least the difference in length.
        .filter(|(spelling, _)| spelling.chars().count().abs_diff(length) <= budget)
        .map(|(spelling, answer)| (distance(&input, &spelling), answer))
        .filter(|(d, _)| *d <= budget)
        .min_by_key(|(d, _)| *d)
        .map(|(_, answer)| answer)
}

/// The plain candidate list for `keys`: each key suggested for itself.
pub(crate) fn plain<'a>(keys: &[&'a str]) -> Vec<(&'a str, &'a str)> {
    keys.iter().map(|key| (*key, *key)).collect()
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance, in characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        let mut left = i + 1;
        current.clear();
        current.push(left);
        for (j, cb) in b.iter().enumerate() {
            let diagonal = previous.get(j).copied().unwrap_or(usize::MAX);
            let up = previous.get(j + 1).copied().unwrap_or(usize::MAX);
            let cost = usize::from(ca != *cb);
            left = (diagonal + cost).min(up + 1).min(left + 1);
            current.push(left);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("args", "args"), 0);
        assert_eq!(distance("arg", "args"), 1);
    }

    #[test]
    fn suggests_near_misses_and_synonyms() {
        let candidates = [
            ("args", "args"),
            ("arguments", "args"),
            ("env", "env"),
            ("environment", "env"),
            ("command", "command"),
            ("timeoutMs", "timeoutMs"),
        ];
        assert_eq!(closest("arg", &candidates), Some("args"));
        assert_eq!(closest("argument", &candidates), Some("args"));
        assert_eq!(closest("enviroment", &candidates), Some("env"));
        assert_eq!(closest("comand", &candidates), Some("command"));
        assert_eq!(closest("timeout_ms", &candidates), Some("timeoutMs"));
        assert_eq!(closest("Command", &candidates), Some("command"));
        assert_eq!(closest("zzz", &candidates), None);
        assert_eq!(closest("", &candidates), None);
        assert_eq!(closest(&"a".repeat(100), &candidates), None);
    }
}
