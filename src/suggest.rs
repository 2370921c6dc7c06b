//! "Did you mean": the nearest of a few known names to one a person typed (a module, a
//! field, a column). strsim is the crate clap itself uses for the same purpose, so it adds
//! nothing to the build.

/// The candidate closest to `typed`, if one is close enough to be what was meant: the same
/// name in another case, a plural or singular of it, or one within a small edit distance.
pub fn nearest<'a>(typed: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let folded = fold(typed);
    let mut best: Option<(&'a str, f64)> = None;
    for candidate in candidates {
        let other = fold(candidate);
        if other == folded {
            return Some(candidate);
        }
        let plural = other.strip_suffix('s') == Some(folded.as_str())
            || folded.strip_suffix('s') == Some(other.as_str());
        let score = if plural {
            0.99
        } else {
            strsim::jaro_winkler(&folded, &other)
        };
        if score >= 0.85 && best.is_none_or(|(_, s)| score > s) {
            best = Some((candidate, score));
        }
    }
    best.map(|(name, _)| name)
}

/// Lower case, with spaces, underscores and hyphens removed: how people mistype API names.
fn fold(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
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
        assert_eq!(
            nearest("annual revenue", ["Annual_Revenue", "Email"]),
            Some("Annual_Revenue")
        );
    }
}
