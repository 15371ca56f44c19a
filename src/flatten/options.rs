//! Flattening options and the resource facts the flattener needs.

use std::collections::{BTreeMap, BTreeSet};

use regex::Regex;

use super::naming::{NameStyle, metric_kind};

/// Everything that changes what the flattener emits. Build it once (regexes compiled) and
/// share it; flattening never mutates it.
#[derive(Debug, Clone)]
pub struct FlattenOptions {
    /// Metric name prefix (`k8s`); a valid `[a-zA-Z_][a-zA-Z0-9_]*`.
    pub prefix: String,
    /// How keys are written in names.
    pub name_style: NameStyle,
    /// Dotted paths whose string values are enums (`--enum-path`). For arrays of strings
    /// either `spec.modes` or `spec.modes[]` names the elements.
    pub enum_paths: BTreeSet<String>,
    /// The API-convention heuristic for enum-like strings (`--enum-heuristic`).
    pub enum_heuristic: bool,
    /// `--include` regexes on dotted paths (unanchored). Empty: everything is included.
    pub include: Vec<Regex>,
    /// `--exclude` regexes on dotted paths (unanchored). Win over includes.
    pub exclude: Vec<Regex>,
    /// Arrays are cut to this many elements before identification (default 64).
    pub array_cap: usize,
    /// Distinct values per enum family over all objects (default 32; schema enums exempt).
    /// Applied by whoever collects objects (offline exposition, live store).
    pub enum_cap: usize,
    /// Nesting deeper than this is not walked (counted as dropped, reason `depth`).
    pub max_depth: usize,
    /// `--labels-allowlist`: which `metadata.labels` keys become the `_labels` info series.
    pub labels_allowlist: Allowlist,
    /// `--annotations-allowlist`: likewise for `metadata.annotations`.
    pub annotations_allowlist: Allowlist,
}

impl Default for FlattenOptions {
    fn default() -> Self {
        FlattenOptions {
            prefix: "k8s".into(),
            name_style: NameStyle::AsWritten,
            enum_paths: BTreeSet::new(),
            enum_heuristic: true,
            include: Vec::new(),
            exclude: Vec::new(),
            array_cap: 64,
            enum_cap: 32,
            max_depth: 64,
            labels_allowlist: Allowlist::default(),
            annotations_allowlist: Allowlist::default(),
        }
    }
}

/// The facts about an object's resource that naming needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// The `kind` as written (`Deployment`), for HELP.
    pub kind: String,
    /// The API group (`apps`; empty for the core group).
    pub group: String,
    /// The plural resource name (`deployments`), when known.
    pub plural: Option<String>,
    /// The kind part of metric names (`deployment`): lower-cased kind, or an override.
    pub metric_kind: String,
}

impl ResourceInfo {
    /// A resource known only by kind and group (offline input): metric kind lower-cased,
    /// plural guessed with the English rules Kubernetes uses for most kinds.
    pub fn from_kind(kind: &str, group: &str) -> Self {
        ResourceInfo {
            kind: kind.to_string(),
            group: group.to_string(),
            plural: Some(guess_plural(kind)),
            metric_kind: metric_kind(kind),
        }
    }

    /// The names an allowlist entry may use for this resource: lower-case kind, plural,
    /// and both with `.group`.
    fn matches(&self, key: &str) -> bool {
        let kind = self.kind.to_lowercase();
        let with_group = |n: &str| {
            if self.group.is_empty() {
                false
            } else {
                key.len() == n.len() + 1 + self.group.len()
                    && key.starts_with(n)
                    && key[n.len()..].starts_with('.')
                    && key.ends_with(self.group.as_str())
            }
        };
        key == kind
            || self.plural.as_deref() == Some(key)
            || with_group(&kind)
            || self.plural.as_deref().is_some_and(with_group)
    }
}

/// The plural Kubernetes would most likely use for `kind` (lower-cased).
pub fn guess_plural(kind: &str) -> String {
    let k = kind.to_lowercase();
    if k == "endpoints" {
        return k;
    }
    if k.ends_with('s')
        || k.ends_with('x')
        || k.ends_with('z')
        || k.ends_with("ch")
        || k.ends_with("sh")
    {
        format!("{k}es")
    } else if k.ends_with('y') && !k.ends_with("ay") && !k.ends_with("ey") && !k.ends_with("oy") {
        format!("{}ies", &k[..k.len() - 1])
    } else {
        format!("{k}s")
    }
}

/// Which keys of a label (or annotation) map are exported, per resource.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Allowlist {
    entries: BTreeMap<String, KeySet>,
}

/// The keys allowed for one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySet {
    /// `*`: every key.
    All,
    /// These keys only.
    Keys(BTreeSet<String>),
}

impl KeySet {
    /// Whether `key` is allowed.
    pub fn allows(&self, key: &str) -> bool {
        match self {
            KeySet::All => true,
            KeySet::Keys(k) => k.contains(key),
        }
    }
}

/// A malformed allowlist flag value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid allowlist {input:?}: {reason} (expected e.g. 'deployments=[app,team],pods=[*]')")]
pub struct AllowlistError {
    input: String,
    reason: String,
}

impl Allowlist {
    /// Parse `deployments=[app,team],pods=[*]` (kube-state-metrics' syntax). Resource
    /// names are lower-cased; keys are kept as written; `*` allows every key. An empty
    /// string is an empty allowlist.
    pub fn parse(input: &str) -> Result<Self, AllowlistError> {
        let err = |reason: &str| AllowlistError {
            input: input.to_string(),
            reason: reason.to_string(),
        };
        let mut entries = BTreeMap::new();
        let mut rest = input.trim();
        while !rest.is_empty() {
            let eq = rest
                .find('=')
                .ok_or_else(|| err("missing '=' after a resource"))?;
            let resource = rest[..eq].trim().to_lowercase();
            if resource.is_empty() {
                return Err(err("empty resource name"));
            }
            let after = rest[eq + 1..].trim_start();
            let after = after
                .strip_prefix('[')
                .ok_or_else(|| err("keys must be in [brackets]"))?;
            let close = after.find(']').ok_or_else(|| err("missing ']'"))?;
            let keys: Vec<&str> = after[..close]
                .split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .collect();
            let set = if keys.contains(&"*") {
                KeySet::All
            } else {
                KeySet::Keys(keys.iter().map(|k| k.to_string()).collect())
            };
            entries.insert(resource, set);
            rest = after[close + 1..].trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.is_empty() {
                return Err(err("expected ',' between resources"));
            }
        }
        Ok(Allowlist { entries })
    }

    /// Merge another allowlist into this one (later entries win per resource).
    pub fn extend(&mut self, other: Allowlist) {
        self.entries.extend(other.entries);
    }

    /// The keys allowed for `res`, if the allowlist names it.
    pub fn for_resource(&self, res: &ResourceInfo) -> Option<&KeySet> {
        self.entries
            .iter()
            .find(|(k, _)| res.matches(k))
            .map(|(_, v)| v)
    }

    /// Whether no resource is named.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_parses_ksm_syntax() {
        let a = Allowlist::parse("deployments=[app,team], pods=[*]").unwrap();
        let deploy = ResourceInfo::from_kind("Deployment", "apps");
        let pod = ResourceInfo::from_kind("Pod", "");
        let node = ResourceInfo::from_kind("Node", "");
        assert!(a.for_resource(&deploy).unwrap().allows("team"));
        assert!(!a.for_resource(&deploy).unwrap().allows("tier"));
        assert_eq!(a.for_resource(&pod), Some(&KeySet::All));
        assert_eq!(a.for_resource(&node), None);
        let b = Allowlist::parse("Deployment=[app],deployments.apps=[x]").unwrap();
        assert!(b.for_resource(&deploy).is_some());
        assert_eq!(Allowlist::parse("").unwrap(), Allowlist::default());
    }

    #[test]
    fn allowlist_errors_say_what_is_wrong() {
        for bad in ["pods", "pods=app", "pods=[app", "=[a]", "a=[b] c=[d]"] {
            let e = Allowlist::parse(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn plurals() {
        for (k, p) in [
            ("Deployment", "deployments"),
            ("Ingress", "ingresses"),
            ("NetworkPolicy", "networkpolicies"),
            ("Gateway", "gateways"),
            ("Endpoints", "endpoints"),
            ("Mesh", "meshes"),
        ] {
            assert_eq!(guess_plural(k), p);
        }
    }
}
