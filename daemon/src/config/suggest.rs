//! "Did you mean …?": the known name closest to a misspelt one.

/// The candidate closest to `word` by edit distance (insertions, deletions,
/// substitutions and swaps of neighbours, ignoring case), if it is close
/// enough to be a likely typo: at most a third of the word's length, and
/// at least one edit. Ties go to the earlier candidate.
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (distance(&word, &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ` (did you mean `x`?)` for `word` among `candidates`, or nothing.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    nearest(word, candidates).map_or_else(String::new, |c| format!(" (did you mean `{c}`?)"))
}

/// Optimal string alignment distance.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_finds_the_known_name_and_an_unrelated_word_finds_none() {
        let known = ["delimiter", "quote", "has_header", "batch_rows"];
        assert_eq!(nearest("delimter", known), Some("delimiter"));
        assert_eq!(nearest("qoute", known), Some("quote"));
        assert_eq!(nearest("Batch_Rows", known), Some("batch_rows"));
        assert_eq!(nearest("compression", known), None);
        assert_eq!(nearest("x", ["y", "xy"]), Some("y"));
        assert_eq!(did_you_mean("tpoic", ["topic"]), " (did you mean `topic`?)");
        assert_eq!(did_you_mean("zzz", ["topic"]), "");
    }
}
