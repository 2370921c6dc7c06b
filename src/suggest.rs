//! "Did you mean": the nearest of a few known names to one a person typed (a module, a
//! field, a column). strsim is the crate clap itself uses for the same purpose, so it adds
//! nothing to the build.

/// How close (normalized Damerau-Levenshtein, 0..1, on loose names) a known name must be
/// to be suggested: one wrong or swapped letter in a short name, two in a longer one.
const SIMILARITY: f64 = 0.7;

/// The candidate closest to `typed`, if one is close enough to be what was meant: the same
/// name loosely (case, spaces and underscores aside), its plural or singular, or one a
/// letter or two away. Of equally close candidates the first wins.
pub fn nearest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let wanted = crate::input::loose_name(typed);
    let mut best: Option<(&'a str, f64)> = None;
    for candidate in candidates {
        let other = crate::input::loose_name(candidate);
        if other == wanted {
            return Some(candidate);
        }
        let plural = other.strip_suffix('s') == Some(wanted.as_str())
            || wanted.strip_suffix('s') == Some(other.as_str());
        let score = if plural {
            0.99
        } else {
            strsim::normalized_damerau_levenshtein(&wanted, &other)
        };
        if score >= SIMILARITY && best.is_none_or(|(_, top)| score > top) {
            best = Some((candidate, score));
        }
    }
    best.map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn near_names_are_suggested_and_far_ones_are_not() {
        let modules = ["Leads", "Contacts", "Accounts", "Deals"];
        assert_eq!(nearest("Lead", modules), Some("Leads"));
        assert_eq!(nearest("leads", modules), Some("Leads"));
        assert_eq!(nearest("Contcts", modules), Some("Contacts"));
        assert_eq!(nearest("Invoices", modules), None);
        assert_eq!(nearest("Emial", ["Email", "Phone"]), Some("Email"));
        assert_eq!(
            nearest("annual revenue", ["Annual_Revenue", "Email"]),
            Some("Annual_Revenue")
        );
    }
}
