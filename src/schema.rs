//! Schema hints for the flattener.
//!
//! A [`SchemaNode`] is the part of an OpenAPI v3 schema the flattener cares about: per
//! field, an `enum` list, a description (HELP text), a `format`, whether the field is
//! `x-kubernetes-int-or-string`, and how to descend (named `properties`, map-like
//! `additionalProperties`, array `items`).
//!
//! The flattener walks the schema alongside the object; a field the schema does not know
//! simply has no hints (heuristics apply). Building nodes from CRDs and the API server's
//! OpenAPI documents is the job of the schema reader; this module only holds the model and
//! the lookups, so the flattener stays pure.

use std::collections::BTreeMap;

/// Abbreviations whose period does not end a sentence (`e.g.` is followed by one).
const ABBREVIATIONS: &[&str] = &["e.g", "i.e", "E.g", "I.e", "vs", "approx"];

/// Hints for one node of an object, and the way to its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaNode {
    /// The `description`, if any (HELP uses its first sentence).
    pub description: Option<String>,
    /// The `format` (`date-time`, `duration`, `byte`, `int32`, ...).
    pub format: Option<String>,
    /// The `enum` values of a string field, in schema order; empty when none.
    pub enum_values: Vec<String>,
    /// `x-kubernetes-int-or-string: true`.
    pub int_or_string: bool,
    /// The JSON `type` (`object`, `array`, `string`, `integer`, `number`, `boolean`), if
    /// stated.
    pub json_type: Option<String>,
    /// `x-kubernetes-preserve-unknown-fields: true`: fields beyond `properties` are
    /// allowed and unknown to the schema.
    pub preserve_unknown: bool,
    /// Named children (`properties`).
    pub properties: BTreeMap<String, SchemaNode>,
    /// The schema of every value of a map-like object (`additionalProperties`).
    pub additional_properties: Option<Box<SchemaNode>>,
    /// The schema of the elements of an array (`items`).
    pub items: Option<Box<SchemaNode>>,
}

impl SchemaNode {
    /// The schema of the child `key` of this object node: a named property first, else
    /// the map value schema. `None` when the schema says nothing about it.
    pub fn child(&self, key: &str) -> Option<&SchemaNode> {
        self.properties
            .get(key)
            .or(self.additional_properties.as_deref())
    }

    /// The schema of this array node's elements.
    pub fn element(&self) -> Option<&SchemaNode> {
        self.items.as_deref()
    }

    /// The first sentence of the description, with runs of whitespace collapsed to one
    /// space; `None` when there is no non-empty description.
    pub fn help(&self) -> Option<String> {
        let d = self.description.as_deref()?;
        let collapsed: String = d.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return None;
        }
        let end = collapsed
            .char_indices()
            .find(|&(i, c)| {
                c == '.'
                    && collapsed[i + 1..].chars().next().is_none_or(|n| n == ' ')
                    && !ABBREVIATIONS.iter().any(|a| collapsed[..i].ends_with(a))
            })
            .map(|(i, _)| i + 1)
            .unwrap_or(collapsed.len());
        Some(collapsed[..end].to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_is_first_sentence_collapsed() {
        let n = SchemaNode {
            description: Some("Phase is the\n  current phase. It may be\nempty.".into()),
            ..Default::default()
        };
        assert_eq!(n.help().as_deref(), Some("Phase is the current phase."));
        let n = SchemaNode {
            description: Some("Version 1.2 of the thing".into()),
            ..Default::default()
        };
        assert_eq!(n.help().as_deref(), Some("Version 1.2 of the thing"));
        let n = SchemaNode {
            description: Some("  \n ".into()),
            ..Default::default()
        };
        assert_eq!(n.help(), None);
        let n = SchemaNode {
            description: Some("Interval is a string (e.g. 30s, 5m). Defaults to 1m.".into()),
            ..Default::default()
        };
        assert_eq!(
            n.help().as_deref(),
            Some("Interval is a string (e.g. 30s, 5m).")
        );
    }

    #[test]
    fn child_prefers_properties_then_map_values() {
        let mut n = SchemaNode::default();
        n.properties.insert(
            "a".into(),
            SchemaNode {
                format: Some("date-time".into()),
                ..Default::default()
            },
        );
        assert!(n.child("b").is_none());
        n.additional_properties = Some(Box::new(SchemaNode {
            int_or_string: true,
            ..Default::default()
        }));
        assert_eq!(n.child("a").unwrap().format.as_deref(), Some("date-time"));
        assert!(n.child("b").unwrap().int_or_string);
    }
}
