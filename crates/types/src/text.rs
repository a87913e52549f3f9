//! Text helpers for messages: how far apart two words are, and which known
//! word a misspelt one most likely meant ("did you mean `lint`?").

/// Optimal string alignment distance between `a` and `b`, over chars: the
/// number of insertions, deletions, substitutions and swaps of two adjacent
/// characters that turn one into the other (`tset` → `test` is 1).
///
/// ```
/// use sluice_types::text::edit_distance;
///
/// assert_eq!(edit_distance("lint", "lint"), 0);
/// assert_eq!(edit_distance("tset", "test"), 1);
/// assert_eq!(edit_distance("kitten", "sitting"), 3);
/// ```
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        d[i * width] = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// The candidate closest to `name` by [`edit_distance`], if it is close
/// enough to be a likely typo: at most a third of `name`'s length away (at
/// least 1). Ties go to the first candidate.
///
/// ```
/// use sluice_types::text::closest;
///
/// assert_eq!(closest("biuld", ["lint", "build", "test"]), Some("build"));
/// assert_eq!(closest("deploy", ["lint", "build"]), None);
/// ```
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    closest_within(name, candidates, (name.chars().count() / 3).max(1))
}

/// The candidate closest to `name`, if it is at most `limit` edits away.
/// Ties go to the first candidate.
pub fn closest_within<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    limit: usize,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|&(distance, _)| distance <= limit)
        .min_by_key(|&(distance, _)| distance)
        .map(|(_, candidate)| candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(edit_distance("", ""), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("abc", ""), 3);
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("ca", "abc"), 3);
        assert_eq!(edit_distance("flaw", "lawn"), 2);
        assert_eq!(edit_distance("naïve", "naive"), 1);
    }

    #[test]
    fn suggestions() {
        assert_eq!(closest("tset", ["test", "lint"]), Some("test"));
        assert_eq!(closest("x", ["y"]), Some("y"));
        assert_eq!(closest("abcdef", ["uvwxyz"]), None);
        assert_eq!(
            closest_within("trailing", ["trailing-space"], 6),
            Some("trailing-space")
        );
        assert_eq!(closest_within("a", ["ab", "ac"], 1), Some("ab"));
    }
}
