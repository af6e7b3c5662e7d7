//! "Did you mean …?": the closest valid name to a mistyped one.

/// The candidate closest to `name` by edit distance, if it is close enough to be a likely typo.
pub fn closest<'a, I, S>(name: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str> + 'a,
{
    let mut best: Option<(usize, String)> = None;
    for c in candidates {
        let c = c.as_ref();
        let d = edit_distance(&name.to_lowercase(), &c.to_lowercase());
        let limit = (c.len().max(name.len()) / 2).max(2);
        let suffix_match = c.ends_with(name) || name.ends_with(c);
        if d <= limit || suffix_match {
            let score = if suffix_match { d.min(1) } else { d };
            if best.as_ref().is_none_or(|(bd, _)| score < *bd) {
                best = Some((score, c.to_string()));
            }
        }
    }
    best.map(|(_, c)| c)
}

/// ", did you mean `x`?" or nothing.
pub fn did_you_mean(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

/// Levenshtein distance over chars.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos() {
        assert_eq!(
            closest("gain_bd", ["gain_db", "pan"]),
            Some("gain_db".into())
        );
        assert_eq!(closest("vocal", ["vocals", "drums"]), Some("vocals".into()));
        assert_eq!(closest("zzzzzz", ["gain_db", "pan"]), None);
    }
}
