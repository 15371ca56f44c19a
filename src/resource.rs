//! Resource identity for naming: which metric kind name each (kind, group) gets, and the
//! guard that two kinds from different groups never silently share names
//! (DESIGN.md §2 "Names").

use std::collections::HashMap;

use crate::flatten::ResourceInfo;
use crate::flatten::naming::{is_valid_prefix, metric_kind};

/// `--kind-name KIND[.GROUP]=NAME`: a metric kind name chosen by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindName {
    /// The kind, lower-cased.
    pub kind: String,
    /// The group (`None`: any group, written `KIND=NAME`; `Some("")`: the core group,
    /// written `KIND.=NAME`). An explicit name may be shared on purpose.
    pub group: Option<String>,
    /// The metric kind name.
    pub name: String,
}

/// A malformed `--kind-name`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "invalid --kind-name {input:?}: {reason} (expected KIND[.GROUP]=NAME, e.g. Service.serving.knative.dev=knativeservice)"
)]
pub struct KindNameError {
    input: String,
    reason: &'static str,
}

impl std::str::FromStr for KindName {
    type Err = KindNameError;
    fn from_str(s: &str) -> Result<Self, KindNameError> {
        let err = |reason| KindNameError {
            input: s.to_string(),
            reason,
        };
        let (target, name) = s.split_once('=').ok_or_else(|| err("missing '='"))?;
        let (kind, group) = match target.split_once('.') {
            Some((k, g)) => (k, Some(g.to_string())),
            None => (target, None),
        };
        if kind.is_empty() {
            return Err(err("empty kind"));
        }
        if !is_valid_prefix(name) {
            return Err(err("NAME must match [a-zA-Z_][a-zA-Z0-9_]*"));
        }
        Ok(KindName {
            kind: kind.to_lowercase(),
            group,
            name: name.to_string(),
        })
    }
}

/// Two kinds that would share metric names.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "kind {kind} of group {group} would share the metric names {prefix}_{metric_kind}_* with kind {other_kind} of group {other_group} ({other_seen}); give one of them another metric kind name, e.g. --kind-name {hint}={suggestion}"
)]
pub struct KindConflict {
    kind: String,
    group: String,
    prefix: String,
    metric_kind: String,
    other_kind: String,
    other_group: String,
    other_seen: String,
    hint: String,
    suggestion: String,
}

#[derive(Debug, Clone)]
struct Assigned {
    kind: String,
    group: String,
    explicit: bool,
    seen: String,
}

/// Assigns metric kind names and refuses silent sharing.
#[derive(Debug, Default)]
pub struct KindRegistry {
    overrides: Vec<KindName>,
    by_metric_kind: HashMap<String, Vec<Assigned>>,
    by_kind_group: HashMap<(String, String), ResourceInfo>,
}

fn show_group(g: &str) -> String {
    if g.is_empty() {
        "\"\" (core)".to_string()
    } else {
        g.to_string()
    }
}

impl KindRegistry {
    /// A registry with the user's overrides.
    pub fn new(overrides: Vec<KindName>) -> Self {
        KindRegistry {
            overrides,
            ..Default::default()
        }
    }

    /// The resource info for `kind` in `group`. `seen` says where it was first met (for
    /// messages). Two (kind, group) pairs may share a metric kind name only when at least
    /// one of them got it from an explicit `--kind-name`.
    pub fn resolve(
        &mut self,
        kind: &str,
        group: &str,
        prefix: &str,
        seen: &str,
    ) -> Result<ResourceInfo, Box<KindConflict>> {
        let key = (kind.to_string(), group.to_string());
        if let Some(info) = self.by_kind_group.get(&key) {
            return Ok(info.clone());
        }
        let lower = kind.to_lowercase();
        let explicit = self
            .overrides
            .iter()
            .find(|o| o.kind == lower && o.group.as_deref() == Some(group))
            .or_else(|| {
                self.overrides
                    .iter()
                    .find(|o| o.kind == lower && o.group.is_none())
            });
        let mut info = ResourceInfo::from_kind(kind, group);
        if let Some(o) = explicit {
            info.metric_kind = o.name.clone();
        } else {
            info.metric_kind = metric_kind(kind);
        }
        let others = self
            .by_metric_kind
            .entry(info.metric_kind.clone())
            .or_default();
        if explicit.is_none()
            && let Some(other) = others
                .iter()
                .find(|a| !a.explicit && (a.kind != kind || a.group != group))
        {
            // Suggest renaming whichever of the two has a group (the core kind keeps its
            // plain name).
            let (hint_kind, hint_group) = if group.is_empty() {
                (other.kind.as_str(), other.group.as_str())
            } else {
                (kind, group)
            };
            let suggestion = format!(
                "{}{}",
                hint_group
                    .split('.')
                    .next()
                    .unwrap_or("")
                    .replace(|c: char| !c.is_ascii_alphanumeric(), ""),
                hint_kind.to_lowercase()
            );
            return Err(Box::new(KindConflict {
                kind: kind.to_string(),
                group: show_group(group),
                prefix: prefix.to_string(),
                metric_kind: info.metric_kind,
                other_kind: other.kind.clone(),
                other_group: show_group(&other.group),
                other_seen: other.seen.clone(),
                hint: format!("{hint_kind}.{hint_group}"),
                suggestion,
            }));
        }
        others.push(Assigned {
            kind: kind.to_string(),
            group: group.to_string(),
            explicit: explicit.is_some(),
            seen: seen.to_string(),
        });
        self.by_kind_group.insert(key, info.clone());
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_name_flag() {
        let k: KindName = "Service.serving.knative.dev=knativeservice"
            .parse()
            .unwrap();
        assert_eq!(k.kind, "service");
        assert_eq!(k.group.as_deref(), Some("serving.knative.dev"));
        assert_eq!(k.name, "knativeservice");
        assert!("Service=".parse::<KindName>().is_err());
        assert!("Service".parse::<KindName>().is_err());
        assert!("=x".parse::<KindName>().is_err());
        assert!("Service=9x".parse::<KindName>().is_err());
    }

    #[test]
    fn same_kind_in_two_groups_is_refused_with_a_fix() {
        let mut r = KindRegistry::new(vec![]);
        assert_eq!(
            r.resolve("Service", "", "k8s", "a.yaml")
                .unwrap()
                .metric_kind,
            "service"
        );
        assert_eq!(
            r.resolve("Service", "", "k8s", "b.yaml")
                .unwrap()
                .metric_kind,
            "service"
        );
        let mut core_second = KindRegistry::new(vec![]);
        core_second
            .resolve("Bucket", "s3.aws.crossplane.io", "k8s", "x")
            .unwrap();
        let e = core_second.resolve("Bucket", "", "k8s", "y").unwrap_err();
        assert!(
            e.to_string()
                .ends_with("--kind-name Bucket.s3.aws.crossplane.io=s3bucket"),
            "{e}"
        );
        let e = r
            .resolve("Service", "serving.knative.dev", "k8s", "c.yaml")
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "kind Service of group serving.knative.dev would share the metric names k8s_service_* \
             with kind Service of group \"\" (core) (a.yaml); give one of them another metric kind \
             name, e.g. --kind-name Service.serving.knative.dev=servingservice"
        );
    }

    #[test]
    fn overrides_resolve_conflicts() {
        let mut r = KindRegistry::new(vec![
            "Service.serving.knative.dev=knativeservice"
                .parse()
                .unwrap(),
        ]);
        assert_eq!(
            r.resolve("Service", "", "k8s", "a").unwrap().metric_kind,
            "service"
        );
        assert_eq!(
            r.resolve("Service", "serving.knative.dev", "k8s", "b")
                .unwrap()
                .metric_kind,
            "knativeservice"
        );
        // An explicit override may deliberately share a name.
        let mut r = KindRegistry::new(vec!["ReplicaSet.extensions=replicaset".parse().unwrap()]);
        assert!(r.resolve("ReplicaSet", "apps", "k8s", "a").is_ok());
        assert!(r.resolve("ReplicaSet", "extensions", "k8s", "b").is_ok());
    }
}
