//! The field names of one `diff` call (contract 0.4.0): the host names every
//! field once per call and the topics' fields refer to the names by number, so
//! a delta algorithm can compare fields by number and copy only the names of
//! what changed.

use std::cmp::Ordering;

use crate::{Field, IndexedField};

/// The field names of one `diff` call, each with its place in name order.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldNames {
    names: Vec<String>,
    /// `ranks[i]`: where `names[i]` sorts among the names; equal names share one.
    ranks: Vec<u32>,
}

impl FieldNames {
    /// The names as the call gives them.
    pub fn new(names: Vec<String>) -> Self {
        let mut by_name: Vec<usize> = (0..names.len()).collect();
        by_name.sort_unstable_by(|a, b| names[*a].cmp(&names[*b]));
        let mut ranks = vec![0; names.len()];
        let mut rank = 0;
        for (i, number) in by_name.iter().enumerate() {
            if i > 0 && names[by_name[i - 1]] != names[*number] {
                rank += 1;
            }
            ranks[*number] = rank;
        }
        FieldNames { names, ranks }
    }

    /// The name numbered `number`, or an error if the call has no such name.
    pub fn get(&self, number: u32) -> Result<&str, String> {
        self.names
            .get(number as usize)
            .map(String::as_str)
            .ok_or_else(|| self.missing(number))
    }

    /// The name numbered `number`.
    ///
    /// # Panics
    /// If the call has no such name: check the fields first ([`FieldNames::get`],
    /// [`FieldNames::in_order`]).
    pub fn name(&self, number: u32) -> &str {
        &self.names[number as usize]
    }

    /// Orders two fields by name: a comparison of numbers, no string is read.
    ///
    /// # Panics
    /// If the call has no name numbered as one of them (see [`FieldNames::name`]).
    pub fn cmp(&self, a: &IndexedField, b: &IndexedField) -> Ordering {
        self.ranks[a.name as usize].cmp(&self.ranks[b.name as usize])
    }

    /// Whether `fields` are sorted by name, each name once (what the host
    /// sends); an error if a field's number names nothing.
    pub fn in_order(&self, fields: &[IndexedField]) -> Result<bool, String> {
        let mut previous: Option<u32> = None;
        let mut sorted = true;
        for field in fields {
            let rank = *self
                .ranks
                .get(field.name as usize)
                .ok_or_else(|| self.missing(field.name))?;
            sorted &= previous.is_none_or(|p| p < rank);
            previous = Some(rank);
        }
        Ok(sorted)
    }

    /// `fields` with their names, in the same order.
    pub fn named(&self, fields: Vec<IndexedField>) -> Result<Vec<Field>, String> {
        fields
            .into_iter()
            .map(|f| {
                Ok(Field {
                    name: self.get(f.name)?.to_owned(),
                    value: f.value,
                })
            })
            .collect()
    }

    fn missing(&self, number: u32) -> String {
        format!(
            "field name #{number} of {} given in the call",
            self.names.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FieldValue;

    fn field(name: u32) -> IndexedField {
        IndexedField {
            name,
            value: FieldValue::Number(f64::from(name)),
        }
    }

    fn names(list: &[&str]) -> FieldNames {
        FieldNames::new(list.iter().map(|n| n.to_string()).collect())
    }

    #[test]
    fn numbers_compare_as_their_names_do() {
        let names = names(&["qty", "price", "ts", "count", "price"]);
        for a in 0..5 {
            for b in 0..5 {
                assert_eq!(
                    names.cmp(&field(a), &field(b)),
                    names.name(a).cmp(names.name(b)),
                    "#{a} {} vs #{b} {}",
                    names.name(a),
                    names.name(b)
                );
            }
        }
    }

    #[test]
    fn order_is_checked_by_name() {
        let names = names(&["qty", "price", "ts", "count"]);
        // count, price, qty, ts
        assert_eq!(
            names.in_order(&[field(3), field(1), field(0), field(2)]),
            Ok(true)
        );
        assert_eq!(names.in_order(&[]), Ok(true));
        assert_eq!(names.in_order(&[field(0), field(1)]), Ok(false));
        assert_eq!(names.in_order(&[field(1), field(1)]), Ok(false), "twice");
        assert_eq!(
            names.in_order(&[field(1), field(4)]),
            Err("field name #4 of 4 given in the call".to_string())
        );
    }

    #[test]
    fn named_fields_keep_their_order_and_values() {
        let names = names(&["b", "a"]);
        let named = names.named(vec![field(1), field(0)]).unwrap();
        assert_eq!(
            named,
            vec![
                Field::new("a", FieldValue::Number(1.0)),
                Field::new("b", FieldValue::Number(0.0))
            ]
        );
        assert!(names.named(vec![field(2)]).is_err());
    }
}
