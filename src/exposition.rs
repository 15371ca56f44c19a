//! Collecting flattened objects into one exposition (the offline `flatten` command).
//!
//! Families are merged across objects and written sorted by name, one HELP/TYPE pair
//! each (the first object's HELP wins); within a family, samples keep input order. The
//! duplicate guard spans the whole run: a series (name and labels) seen before is dropped
//! and counted. The per-family enum cap ([`EnumCap`]) is applied here too.

use std::collections::{BTreeMap, HashMap, HashSet};

use foldhash::fast::RandomState;

use crate::encode;
use crate::flatten::{Dropped, FlatObject, series_key};

/// The per-family cap on distinct enum values (DESIGN.md §2): the first `cap` distinct
/// values seen for a family are admitted, later new values are dropped. Schema enums and
/// the conditions triple are exempt (their samples are not `capped`).
#[derive(Debug, Clone)]
pub struct EnumCap {
    cap: usize,
    seen: HashMap<String, HashSet<String, RandomState>, RandomState>,
    /// Families that have dropped a value (each is warned once).
    dropped_families: HashSet<String, RandomState>,
}

/// What [`EnumCap::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The value is (now) one of the family's admitted values.
    Admitted,
    /// Dropped; `first` is true the first time this family drops anything (log once).
    Dropped {
        /// First drop in this family.
        first: bool,
    },
}

impl EnumCap {
    /// A cap of `cap` distinct values per family.
    pub fn new(cap: usize) -> Self {
        EnumCap {
            cap,
            seen: HashMap::default(),
            dropped_families: HashSet::default(),
        }
    }

    /// Admit `value` for `family` if it was seen before or the family is under its cap.
    pub fn admit(&mut self, family: &str, value: &str) -> Admission {
        let set = match self.seen.get_mut(family) {
            Some(s) => s,
            None => self.seen.entry(family.to_string()).or_default(),
        };
        if set.contains(value) {
            return Admission::Admitted;
        }
        if set.len() < self.cap {
            set.insert(value.to_string());
            return Admission::Admitted;
        }
        let first = self.dropped_families.insert(family.to_string());
        Admission::Dropped { first }
    }
}

#[derive(Debug, Default)]
struct FamilyBuf {
    help: String,
    body: Vec<u8>,
}

/// An exposition under construction.
#[derive(Debug)]
pub struct Exposition {
    families: BTreeMap<String, FamilyBuf>,
    seen: HashSet<String>,
    cap: EnumCap,
    dropped: Dropped,
    warnings: Vec<String>,
}

impl Exposition {
    /// An empty exposition with an enum cap of `enum_cap` values per family.
    pub fn new(enum_cap: usize) -> Self {
        Exposition {
            families: BTreeMap::new(),
            seen: HashSet::new(),
            cap: EnumCap::new(enum_cap),
            dropped: Dropped::default(),
            warnings: Vec::new(),
        }
    }

    /// Add one object's samples.
    pub fn add(&mut self, obj: FlatObject) {
        self.dropped.add(&obj.dropped);
        for s in obj.samples {
            let key = series_key(&s.name, &s.labels);
            if self.seen.contains(&key) {
                self.dropped.duplicate += 1;
                continue;
            }
            if s.capped {
                let value = s.labels.last().map(|(_, v)| v.as_str()).unwrap_or("");
                if let Admission::Dropped { first } = self.cap.admit(&s.name, value) {
                    self.dropped.enum_cap += 1;
                    if first {
                        self.warnings.push(format!(
                            "{}: more than {} distinct values; further values are dropped \
                             (raise --enum-cap, or --exclude the field)",
                            s.name, self.cap.cap
                        ));
                    }
                    continue;
                }
            }
            self.seen.insert(key);
            let fam = self.families.entry(s.name.clone()).or_default();
            if fam.body.is_empty() {
                fam.help = s.help;
            }
            encode::write_sample(&mut fam.body, &s.name, &s.labels, s.value);
        }
    }

    /// What was dropped so far, by reason.
    pub fn dropped(&self) -> Dropped {
        self.dropped
    }

    /// Take the warnings raised so far (each at most once per family).
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Number of series.
    pub fn series(&self) -> usize {
        self.seen.len()
    }

    /// Render the exposition: families sorted by name, HELP/TYPE once each.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.families.values().map(|f| f.body.len() + 64).sum());
        for (name, fam) in &self.families {
            encode::write_header(&mut out, name, &fam.help);
            out.extend_from_slice(&fam.body);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flatten::Sample;

    fn sample(name: &str, v: &str, capped: bool) -> Sample {
        Sample {
            name: name.into(),
            labels: vec![("name".into(), "a".into()), ("phase".into(), v.into())],
            value: 1.0,
            help: format!("help of {name}"),
            capped,
        }
    }

    #[test]
    fn enum_cap_admits_first_values_only() {
        let mut c = EnumCap::new(2);
        assert_eq!(c.admit("f", "A"), Admission::Admitted);
        assert_eq!(c.admit("f", "B"), Admission::Admitted);
        assert_eq!(c.admit("f", "A"), Admission::Admitted);
        assert_eq!(c.admit("f", "C"), Admission::Dropped { first: true });
        assert_eq!(c.admit("f", "D"), Admission::Dropped { first: false });
        assert_eq!(c.admit("f", "B"), Admission::Admitted);
        assert_eq!(c.admit("g", "C"), Admission::Admitted);
    }

    #[test]
    fn families_merge_sorted_with_one_header_and_no_duplicates() {
        let mut e = Exposition::new(1);
        e.add(FlatObject {
            samples: vec![sample("k_b", "X", false), sample("k_a", "X", true)],
            dropped: Dropped::default(),
        });
        e.add(FlatObject {
            samples: vec![
                sample("k_b", "X", false), // duplicate of the first object's series
                sample("k_b", "Y", false),
                sample("k_a", "Y", true), // over the enum cap of 1
            ],
            dropped: Dropped::default(),
        });
        let out = String::from_utf8(e.render()).unwrap();
        assert_eq!(
            out,
            "# HELP k_a help of k_a\n# TYPE k_a gauge\nk_a{name=\"a\",phase=\"X\"} 1\n\
             # HELP k_b help of k_b\n# TYPE k_b gauge\nk_b{name=\"a\",phase=\"X\"} 1\n\
             k_b{name=\"a\",phase=\"Y\"} 1\n"
        );
        assert_eq!(e.dropped().duplicate, 1);
        assert_eq!(e.dropped().enum_cap, 1);
        assert_eq!(e.take_warnings().len(), 1);
    }
}
