//! A series' name and labels packed into one byte string: the name, then a
//! separator before each label name and each label value. The separator, 0xFF,
//! never occurs in UTF-8, so every part comes back exactly. Tables of many
//! series (a collector instance's declarations, `/metrics`' latest values) keep
//! one such key per series: one allocation instead of one per string.

use crate::sample::Label;

/// Separates the parts of a key.
const SEPARATOR: u8 = 0xFF;

/// The key of series `name{labels}` (labels in the order given).
pub fn pack<'a>(name: &str, labels: impl IntoIterator<Item = &'a Label> + Clone) -> Vec<u8> {
    let len = name.len()
        + labels
            .clone()
            .into_iter()
            .map(|l| 2 + l.name.len() + l.value.len())
            .sum::<usize>();
    let mut key = Vec::with_capacity(len);
    key.extend_from_slice(name.as_bytes());
    for label in labels {
        key.push(SEPARATOR);
        key.extend_from_slice(label.name.as_bytes());
        key.push(SEPARATOR);
        key.extend_from_slice(label.value.as_bytes());
    }
    key
}

/// The parts of a key made by [`pack`]: the name, then each label's name and
/// value.
pub fn parts(key: &[u8]) -> impl Iterator<Item = &str> {
    // Every part was a `&str` and the separator never occurs in UTF-8, so each
    // part is valid UTF-8 again (checked all the same: short strings, and no
    // `unsafe` for a key that did not come from `pack`).
    key.split(|&b| b == SEPARATOR)
        .map(|part| std::str::from_utf8(part).unwrap_or_default())
}

/// The number of labels of a key made by [`pack`].
pub fn label_count(key: &[u8]) -> usize {
    key.iter().filter(|&&b| b == SEPARATOR).count() / 2
}

/// Whether `key` is series `name{labels}` (labels in the order given).
pub fn is<'a>(key: &[u8], name: &str, labels: impl IntoIterator<Item = &'a Label>) -> bool {
    let mut parts = key.split(|&b| b == SEPARATOR);
    parts.next() == Some(name.as_bytes())
        && labels.into_iter().all(|l| {
            parts.next() == Some(l.name.as_bytes()) && parts.next() == Some(l.value.as_bytes())
        })
        && parts.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gives_back_its_name_and_labels_whole() {
        let labels = [
            Label::new("a", ""),
            Label::new("b", "x\u{00ff}ÿ€"),
            Label::new("c", "1"),
        ];
        let key = pack("p_ÿ", &labels);
        let back: Vec<&str> = parts(&key).collect();
        assert_eq!(back, ["p_ÿ", "a", "", "b", "x\u{00ff}ÿ€", "c", "1"]);
        assert_eq!(label_count(&key), 3);
        assert!(is(&key, "p_ÿ", &labels));
        assert!(!is(&key, "p_ÿ", &labels[..2]), "a label fewer");
        assert!(!is(&key, "p", &labels));
        let bare = pack("p", &[]);
        assert_eq!(parts(&bare).collect::<Vec<_>>(), ["p"]);
        assert_eq!(label_count(&bare), 0);
        assert!(is(&bare, "p", &[]));
        assert!(!is(&bare, "p", &labels[..1]));
    }
}
