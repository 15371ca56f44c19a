//! Resource names as kubectl takes them, resolved through API discovery.
//!
//! A [`ResourceSpec`] is what the user wrote after `--resource`: `deployments`, `deploy`,
//! `Deployment`, `deployments.apps`, `deployments.v1.apps`, `certificates.cert-manager.io`,
//! optionally followed by `=NAME` to choose the metric kind name (for two kinds with one
//! name in different groups). [`resolve`] matches it against a [`Discovery`] snapshot the
//! way kubectl does: plural, singular, short names and kind, case-insensitively; the core
//! group first, then groups in the server's order; a group's preferred version unless a
//! version is pinned. [`discover`] reads the snapshot from the API server; one group
//! version that fails (an unavailable aggregated API, typically) is recorded and skipped,
//! not fatal.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use futures::StreamExt;
use kube::Client;
use kube::core::ApiResource;
use regex::Regex;

use crate::flatten::ResourceInfo;

static VERSION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^v[0-9]+((alpha|beta)[0-9]+)?$").expect("valid regex"));

/// One resource of one group version, as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveredResource {
    /// API group, empty for the core group.
    pub group: String,
    /// Version.
    pub version: String,
    /// Plural resource name (the URL segment).
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// Short names (`deploy`).
    pub short_names: Vec<String>,
    /// Verbs the resource supports.
    pub verbs: Vec<String>,
}

impl DiscoveredResource {
    /// kubectl's fully qualified name: `deployments.v1.apps`, `pods.v1`.
    pub fn full_name(&self) -> String {
        if self.group.is_empty() {
            format!("{}.{}", self.plural, self.version)
        } else {
            format!("{}.{}.{}", self.plural, self.version, self.group)
        }
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The kube-rs dynamic type for `Api<DynamicObject>`.
    pub fn api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }

    fn watchable(&self) -> bool {
        ["list", "watch"]
            .iter()
            .all(|v| self.verbs.iter().any(|x| x == v))
    }

    fn matches(&self, name: &str) -> bool {
        self.plural.eq_ignore_ascii_case(name)
            || self.singular.eq_ignore_ascii_case(name)
            || self.kind.eq_ignore_ascii_case(name)
            || self
                .short_names
                .iter()
                .any(|s| s.eq_ignore_ascii_case(name))
    }
}

/// What the API server serves, in resolution priority order: the core group first, then
/// groups in the order the server lists them; within a group the preferred version first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Every resource of every group version (subresources left out).
    pub resources: Vec<DiscoveredResource>,
    /// Group versions whose resource list could not be read, with the error.
    pub failed: Vec<(String, String)>,
}

/// Read discovery from the API server (`/api`, `/api/v1`, `/apis`, `/apis/{g}/{v}`).
/// Fails only when `/api` or `/apis` fails; failed group versions are in `failed`.
pub async fn discover(client: &Client) -> Result<Discovery, kube::Error> {
    let core = client.list_core_api_versions().await?;
    let groups = client.list_api_groups().await?;
    let mut gvs: Vec<(String, String)> = core
        .versions
        .iter()
        .map(|v| (String::new(), v.clone()))
        .collect();
    for g in &groups.groups {
        let preferred = g.preferred_version.as_ref().map(|p| p.version.clone());
        if let Some(p) = &preferred {
            gvs.push((g.name.clone(), p.clone()));
        }
        for v in &g.versions {
            if Some(&v.version) != preferred.as_ref() {
                gvs.push((g.name.clone(), v.version.clone()));
            }
        }
    }
    let lists: Vec<_> = futures::stream::iter(gvs)
        .map(|(group, version)| {
            let client = client.clone();
            async move {
                let res = if group.is_empty() {
                    client.list_core_api_resources(&version).await
                } else {
                    client
                        .list_api_group_resources(&format!("{group}/{version}"))
                        .await
                };
                (group, version, res)
            }
        })
        .buffered(8)
        .collect()
        .await;
    let mut d = Discovery::default();
    for (group, version, res) in lists {
        match res {
            Ok(list) => {
                for r in list.resources {
                    if r.name.contains('/') {
                        continue;
                    }
                    d.resources.push(DiscoveredResource {
                        group: group.clone(),
                        version: version.clone(),
                        singular: if r.singular_name.is_empty() {
                            r.kind.to_ascii_lowercase()
                        } else {
                            r.singular_name
                        },
                        plural: r.name,
                        kind: r.kind,
                        namespaced: r.namespaced,
                        short_names: r.short_names.unwrap_or_default(),
                        verbs: r.verbs,
                    });
                }
            }
            Err(e) => {
                let gv = if group.is_empty() {
                    version
                } else {
                    format!("{group}/{version}")
                };
                d.failed.push((gv, e.to_string()));
            }
        }
    }
    Ok(d)
}

/// A `--resource` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceSpec {
    /// As written (without `=NAME`); the `resource` label of self-metrics.
    pub raw: String,
    name: String,
    /// What follows the first dot, if anything: `v1.apps`, `apps`, `cert-manager.io`.
    qualifier: Option<String>,
    /// The metric kind name chosen with `=NAME`.
    pub metric_kind: Option<String>,
}

/// An unusable `--resource` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// Empty.
    #[error("empty --resource value")]
    Empty,
    /// `=NAME` is not a valid metric name part.
    #[error(
        "invalid --resource {spec:?}: the metric kind after '=' must match [a-zA-Z_][a-zA-Z0-9_]*"
    )]
    MetricKind {
        /// The whole value.
        spec: String,
    },
}

impl FromStr for ResourceSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, SpecError> {
        let s = s.trim();
        let (res, kind) = match s.split_once('=') {
            Some((r, k)) => (r.trim(), Some(k.trim())),
            None => (s, None),
        };
        if res.is_empty() {
            return Err(SpecError::Empty);
        }
        if let Some(k) = kind {
            let ok = !k.is_empty()
                && !k.starts_with(|c: char| c.is_ascii_digit())
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok {
                return Err(SpecError::MetricKind { spec: s.into() });
            }
        }
        let (name, qualifier) = match res.split_once('.') {
            Some((n, q)) => (n.to_string(), Some(q.to_ascii_lowercase())),
            None => (res.to_string(), None),
        };
        Ok(ResourceSpec {
            raw: res.to_string(),
            name,
            qualifier,
            metric_kind: kind.map(str::to_string),
        })
    }
}

impl ResourceSpec {
    /// Whether this spec could name a resource with these names (used to keep only the
    /// CRDs that matter): the name matches the plural, singular, kind or a short name, and
    /// the qualifier, if any, ends with the group.
    pub fn could_name(
        &self,
        group: &str,
        plural: &str,
        singular: &str,
        kind: &str,
        short_names: &[String],
    ) -> bool {
        let n = &self.name;
        let name_ok = n.eq_ignore_ascii_case(plural)
            || n.eq_ignore_ascii_case(singular)
            || n.eq_ignore_ascii_case(kind)
            || short_names.iter().any(|s| n.eq_ignore_ascii_case(s));
        name_ok
            && self
                .qualifier
                .as_deref()
                .is_none_or(|q| q == group || q.ends_with(&format!(".{group}")))
    }
}

impl fmt::Display for ResourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.raw)
    }
}

/// Split comma lists of `--resource` values and parse each one.
pub fn parse_specs(values: &[String]) -> Result<Vec<ResourceSpec>, SpecError> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .filter(|v| !v.trim().is_empty())
        .map(str::parse)
        .collect()
}

/// Why a spec did not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// No served resource matches (yet: a CRD may be installed later).
    #[error("no resource {0:?} is served by the API server (not installed yet?)")]
    NotFound(String),
    /// The resource exists but cannot be listed and watched.
    #[error("resource {spec:?} ({full}) does not support list and watch")]
    NotWatchable {
        /// The spec.
        spec: String,
        /// What it resolved to.
        full: String,
    },
}

/// Resolve `spec` against `d` (see the module docs).
pub fn resolve<'d>(
    spec: &ResourceSpec,
    d: &'d Discovery,
) -> Result<&'d DiscoveredResource, ResolveError> {
    // The interpretations of the qualifier, most specific first.
    let mut wanted: Vec<(Option<&str>, Option<&str>)> = Vec::new(); // (group, version)
    match &spec.qualifier {
        None => wanted.push((None, None)),
        Some(q) => {
            let (first, rest) = match q.split_once('.') {
                Some((f, r)) => (f, Some(r)),
                None => (q.as_str(), None),
            };
            if VERSION.is_match(first) {
                wanted.push((Some(rest.unwrap_or("")), Some(first)));
            }
            wanted.push((Some(q.as_str()), None));
        }
    }
    for (group, version) in wanted {
        let found = d.resources.iter().find(|r| {
            group.is_none_or(|g| r.group == g)
                && version.is_none_or(|v| r.version == v)
                && r.matches(&spec.name)
        });
        if let Some(r) = found {
            if !r.watchable() {
                return Err(ResolveError::NotWatchable {
                    spec: spec.raw.clone(),
                    full: r.full_name(),
                });
            }
            return Ok(r);
        }
    }
    Err(ResolveError::NotFound(spec.raw.clone()))
}

/// The flattener's view of a resolved resource, with the spec's metric kind override.
pub fn resource_info(spec: &ResourceSpec, r: &DiscoveredResource) -> ResourceInfo {
    let mut info = ResourceInfo::from_kind(&r.kind, &r.group);
    info.plural = Some(r.plural.clone());
    if let Some(k) = &spec.metric_kind {
        info.metric_kind = k.clone();
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(
        group: &str,
        version: &str,
        plural: &str,
        kind: &str,
        short: &[&str],
    ) -> DiscoveredResource {
        DiscoveredResource {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
            singular: kind.to_ascii_lowercase(),
            kind: kind.into(),
            namespaced: true,
            short_names: short.iter().map(|s| s.to_string()).collect(),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
        }
    }

    fn discovery() -> Discovery {
        let mut bindings = res("", "v1", "bindings", "Binding", &[]);
        bindings.verbs = vec!["create".into()];
        Discovery {
            resources: vec![
                res("", "v1", "pods", "Pod", &["po"]),
                res("", "v1", "events", "Event", &["ev"]),
                bindings,
                res("", "v1", "services", "Service", &["svc"]),
                res("apps", "v1", "deployments", "Deployment", &["deploy"]),
                res("events.k8s.io", "v1", "events", "Event", &["ev"]),
                res(
                    "cert-manager.io",
                    "v1",
                    "certificates",
                    "Certificate",
                    &["cert", "certs"],
                ),
                res(
                    "cert-manager.io",
                    "v1alpha2",
                    "certificates",
                    "Certificate",
                    &["cert"],
                ),
                res(
                    "serving.knative.dev",
                    "v1",
                    "services",
                    "Service",
                    &["ksvc"],
                ),
            ],
            failed: vec![],
        }
    }

    fn full(spec: &str) -> Result<String, ResolveError> {
        let d = discovery();
        let s: ResourceSpec = spec.parse().unwrap();
        resolve(&s, &d).map(|r| r.full_name())
    }

    #[test]
    fn kubectl_forms_resolve() {
        for (spec, want) in [
            ("deployments", "deployments.v1.apps"),
            ("deploy", "deployments.v1.apps"),
            ("deployment", "deployments.v1.apps"),
            ("Deployment", "deployments.v1.apps"),
            ("deployments.apps", "deployments.v1.apps"),
            ("deployments.v1.apps", "deployments.v1.apps"),
            ("Deployment.apps", "deployments.v1.apps"),
            (
                "certificates.cert-manager.io",
                "certificates.v1.cert-manager.io",
            ),
            (
                "certificates.v1alpha2.cert-manager.io",
                "certificates.v1alpha2.cert-manager.io",
            ),
            ("certs", "certificates.v1.cert-manager.io"),
            ("pods", "pods.v1"),
            ("po", "pods.v1"),
            ("pods.v1", "pods.v1"),
            ("events", "events.v1"),
            ("events.events.k8s.io", "events.v1.events.k8s.io"),
            ("services", "services.v1"),
            (
                "services.serving.knative.dev",
                "services.v1.serving.knative.dev",
            ),
            ("ksvc", "services.v1.serving.knative.dev"),
        ] {
            assert_eq!(full(spec).as_deref(), Ok(want), "{spec}");
        }
    }

    #[test]
    fn unknown_and_unwatchable_resources_are_errors() {
        assert_eq!(
            full("widgets.example.com"),
            Err(ResolveError::NotFound("widgets.example.com".into()))
        );
        assert_eq!(
            full("deployments.v2.apps"),
            Err(ResolveError::NotFound("deployments.v2.apps".into()))
        );
        assert!(matches!(
            full("bindings"),
            Err(ResolveError::NotWatchable { .. })
        ));
    }

    #[test]
    fn specs_parse_with_overrides_and_comma_lists() {
        let v = parse_specs(&[
            "deploy,pods".into(),
            "services.serving.knative.dev=knativeservice".into(),
        ])
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].metric_kind.as_deref(), Some("knativeservice"));
        assert_eq!(v[2].raw, "services.serving.knative.dev");
        assert!(matches!(
            "pods=1x".parse::<ResourceSpec>(),
            Err(SpecError::MetricKind { .. })
        ));
        assert!(matches!(
            "pods=a-b".parse::<ResourceSpec>(),
            Err(SpecError::MetricKind { .. })
        ));
        assert_eq!("=x".parse::<ResourceSpec>(), Err(SpecError::Empty));
        let d = discovery();
        let s = &v[2];
        let info = resource_info(s, resolve(s, &d).unwrap());
        assert_eq!(info.metric_kind, "knativeservice");
        assert_eq!(info.group, "serving.knative.dev");
        assert_eq!(info.plural.as_deref(), Some("services"));
    }
}
