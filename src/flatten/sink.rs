//! Where the walker's series go: a [`Sink`] receives each series as a borrowed
//! [`SampleRef`], so that a consumer that encodes lines directly (the live renderer)
//! allocates nothing per series, while [`flatten`](super::flatten) collects owned
//! [`Sample`]s through the `Vec<Sample>` sink.

use std::hash::{BuildHasher, Hasher};

use super::Sample;

/// One series, borrowed from the walker for the duration of a [`Sink::sample`] call.
#[derive(Debug, Clone, Copy)]
pub struct SampleRef<'a> {
    /// The metric (family) name.
    pub name: &'a str,
    /// Labels in contract order (identity, then array labels, outermost first)...
    pub labels: &'a [(String, String)],
    /// ...the same `labels` as encoded in a series: `l="v",...`, values escaped, no
    /// braces...
    pub encoded_labels: &'a [u8],
    /// ...then this last label, if any (an enum label or an element index).
    pub extra: Option<(&'a str, &'a str)>,
    /// The value.
    pub value: f64,
    /// Whether this is a state-set series subject to the per-family enum cap; its
    /// `extra` label is the enum label.
    pub capped: bool,
}

impl<'a> SampleRef<'a> {
    /// All labels in order (`labels`, then `extra`).
    pub fn all_labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        self.labels
            .iter()
            .map(|(l, v)| (l.as_str(), v.as_str()))
            .chain(self.extra)
    }

    /// The enum value of a capped series (its last label's value).
    pub fn enum_value(&self) -> &'a str {
        self.all_labels().last().map_or("", |(_, v)| v)
    }

    /// A fast 64-bit hash of the series identity (name and labels). Equal series hash
    /// equal; unequal series may collide, so a hit must be confirmed.
    pub fn identity_hash(&self, state: &impl BuildHasher) -> u64 {
        let mut h = state.build_hasher();
        h.write(self.name.as_bytes());
        h.write_u8(0);
        h.write(self.encoded_labels);
        if let Some((l, v)) = self.extra {
            h.write_u8(1);
            h.write(l.as_bytes());
            h.write_u8(2);
            h.write(v.as_bytes());
        }
        h.finish()
    }

    /// Write the series identity as in the text format: `name{l="v",...}`.
    pub fn write_series(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.name.as_bytes());
        if self.encoded_labels.is_empty() && self.extra.is_none() {
            return;
        }
        out.push(b'{');
        out.extend_from_slice(self.encoded_labels);
        if let Some((l, v)) = self.extra {
            if !self.encoded_labels.is_empty() {
                out.push(b',');
            }
            crate::encode::write_label(out, l, v);
        }
        out.push(b'}');
    }

    /// Whether `name` and `labels` are this series.
    pub fn is_series(&self, name: &str, labels: &[(String, String)]) -> bool {
        name == self.name
            && labels.len() == self.labels.len() + usize::from(self.extra.is_some())
            && labels
                .iter()
                .map(|(l, v)| (l.as_str(), v.as_str()))
                .eq(self.all_labels())
    }

    /// An owned copy, with `help`.
    pub fn to_sample(&self, help: String) -> Sample {
        Sample {
            name: self.name.to_string(),
            labels: self
                .all_labels()
                .map(|(l, v)| (l.to_string(), v.to_string()))
                .collect(),
            value: self.value,
            help,
            capped: self.capped,
        }
    }
}

/// A consumer of the walker's series.
pub trait Sink {
    /// One series. `help` computes the family's HELP text; call it only when needed.
    fn sample(&mut self, sample: &SampleRef<'_>, help: &dyn Fn() -> String);

    /// Whether this series was already accepted (asked only when its identity hash
    /// matched an earlier series of the same object, so it may be slow).
    fn contains(&self, sample: &SampleRef<'_>) -> bool;
}

/// Collects owned samples (what [`flatten`](super::flatten) returns).
impl Sink for Vec<Sample> {
    fn sample(&mut self, sample: &SampleRef<'_>, help: &dyn Fn() -> String) {
        self.push(sample.to_sample(help()));
    }

    fn contains(&self, sample: &SampleRef<'_>) -> bool {
        self.iter().any(|s| sample.is_series(&s.name, &s.labels))
    }
}
