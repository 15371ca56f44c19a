//! Synthetic workloads built from the shared corpus (issue 6): Pods, Deployments, Nodes and
//! custom resources, with names and values varied, deterministic for a given size.
//!
//! Object `i` of a workload takes its category from `i % 20` — 11 Pods, 4 Deployments,
//! 1 Node and 4 custom resources in every 20 (55 / 20 / 5 / 20 %) — and its template
//! within the category from a seeded generator. It is then varied:
//! `metadata.name` gets the suffix `-NNNNNN` (so names are unique), `metadata.namespace`
//! becomes `ns-NN` (50 namespaces; cluster-scoped kinds stay without one), `uid` and
//! `resourceVersion` are set, and every integer in `spec` and `status` moves by 0–2 (never
//! below zero), so objects made from one template do not render identical values.
//!
//! Shared by the benches through `#[path]`; not every bench uses every item.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use kube_field_exporter::flatten::ResourceInfo;
use serde_json::Value;

/// One resource kind of the workload.
#[derive(Debug, Clone)]
pub struct Kind {
    /// API group (empty for core).
    pub group: &'static str,
    /// Version.
    pub version: &'static str,
    /// Plural resource name.
    pub plural: &'static str,
    /// Kind.
    pub kind: &'static str,
    /// Whether objects live in namespaces.
    pub namespaced: bool,
    /// Corpus files (relative to the corpus root) used as templates.
    pub templates: &'static [&'static str],
}

impl Kind {
    /// `plural.version.group` (or `plural.version` for core), as `--resource` takes it.
    pub fn resource_arg(&self) -> String {
        if self.group.is_empty() {
            format!("{}.{}", self.plural, self.version)
        } else {
            format!("{}.{}.{}", self.plural, self.version, self.group)
        }
    }

    /// `group/version` or `version`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The naming facts the renderer needs.
    pub fn info(&self) -> ResourceInfo {
        let mut info = ResourceInfo::from_kind(self.kind, self.group);
        info.plural = Some(self.plural.to_string());
        info
    }
}

/// The kinds, in category order: Pod, Deployment, Node, then the custom resources.
pub const KINDS: &[Kind] = &[
    Kind {
        group: "",
        version: "v1",
        plural: "pods",
        kind: "Pod",
        namespaced: true,
        templates: &[
            "builtin/pod_argo-rollouts_rollout-aborted-pod1.yaml",
            "builtin/pod_gitops-engine_pod-crashloop.yaml",
            "builtin/pod_gitops-engine_pod-deletion.yaml",
            "builtin/pod_gitops-engine_pod-error.yaml",
            "builtin/pod_gitops-engine_pod-failed.yaml",
            "builtin/pod_gitops-engine_pod-imagepullbackoff.yaml",
            "builtin/pod_gitops-engine_pod-pending.yaml",
            "builtin/pod_gitops-engine_pod-running-not-ready.yaml",
            "builtin/pod_gitops-engine_pod-running-restart-always.yaml",
            "builtin/pod_gitops-engine_pod-running-restart-never.yaml",
            "builtin/pod_gitops-engine_pod-running-restart-onfailure.yaml",
            "builtin/pod_gitops-engine_pod-succeeded.yaml",
            "builtin/pod_k8s-apimachinery_managedfields-pod.yaml",
            "builtin/pod_k9s_p1.json",
            "builtin/pod_k9s_po.json",
            "builtin/pod_k9s_po_init.json",
            "builtin/pod_k9s_po_sidecar.json",
        ],
    },
    Kind {
        group: "apps",
        version: "v1",
        plural: "deployments",
        kind: "Deployment",
        namespaced: true,
        templates: &[
            "builtin/deployment_argo-cd_live-deployment.yaml",
            "builtin/deployment_gitops-engine_deployment-degraded.yaml",
            "builtin/deployment_gitops-engine_deployment-live.json",
            "builtin/deployment_gitops-engine_deployment-progressing.yaml",
            "builtin/deployment_gitops-engine_deployment-suspended.yaml",
            "builtin/deployment_gitops-engine_smd-deploy2-live.yaml",
            "builtin/deployment_k9s_dp.json",
        ],
    },
    Kind {
        group: "",
        version: "v1",
        plural: "nodes",
        kind: "Node",
        namespaced: false,
        templates: &[
            "builtin/node_k8s-apimachinery_managedfields-node.yaml",
            "builtin/node_k9s_n1.json",
            "builtin/node_k9s_no.json",
        ],
    },
    Kind {
        group: "cert-manager.io",
        version: "v1alpha2",
        plural: "certificates",
        kind: "Certificate",
        namespaced: true,
        templates: &[
            "custom/certificate_argo-cd_degraded_configError.yaml",
            "custom/certificate_argo-cd_healthy_issued.yaml",
            "custom/certificate_argo-cd_healthy_renewed.yaml",
            "custom/certificate_argo-cd_progressing_issuing.yaml",
        ],
    },
    Kind {
        group: "helm.toolkit.fluxcd.io",
        version: "v2",
        plural: "helmreleases",
        kind: "HelmRelease",
        namespaced: true,
        templates: &[
            "custom/helmrelease_argo-cd_degraded.yaml",
            "custom/helmrelease_argo-cd_healthy.yaml",
            "custom/helmrelease_argo-cd_progressing.yaml",
        ],
    },
    Kind {
        group: "kustomize.toolkit.fluxcd.io",
        version: "v1",
        plural: "kustomizations",
        kind: "Kustomization",
        namespaced: true,
        templates: &[
            "custom/kustomization_argo-cd_degraded.yaml",
            "custom/kustomization_argo-cd_healthy.yaml",
            "custom/kustomization_argo-cd_progressing.yaml",
        ],
    },
    Kind {
        group: "argoproj.io",
        version: "v1alpha1",
        plural: "analysisruns",
        kind: "AnalysisRun",
        namespaced: true,
        templates: &[
            "custom/analysisrun_argo-cd_errorAnalysisRunWithStatusMessage.yaml",
            "custom/analysisrun_argo-cd_failedAnalysisRun.yaml",
            "custom/analysisrun_argo-cd_inconclusiveAnalysisRun.yaml",
            "custom/analysisrun_argo-cd_runningAnalysisRun.yaml",
            "custom/analysisrun_argo-cd_successfulAnalysisRun.yaml",
            "custom/analysisrun_argo-cd_terminatedAnalysisRun.yaml",
        ],
    },
    Kind {
        group: "monitoring.coreos.com",
        version: "v1",
        plural: "prometheuses",
        kind: "Prometheus",
        namespaced: true,
        templates: &[
            "custom/prometheus_argo-cd_degraded.yaml",
            "custom/prometheus_argo-cd_healthy.yaml",
            "custom/prometheus_argo-cd_progressing.yaml",
        ],
    },
];

/// Index of the first custom kind in [`KINDS`].
const FIRST_CUSTOM: usize = 3;

/// One generated object.
#[derive(Debug, Clone)]
pub struct Object {
    /// Index into [`KINDS`].
    pub kind: usize,
    /// The object.
    pub value: Value,
}

/// The templates, parsed once: `templates[k]` holds the objects of `KINDS[k]`.
pub struct Templates {
    templates: Vec<Vec<Value>>,
}

/// The shared corpus: `$KFE_CORPUS`, else `../shared/corpus` beside the repository.
pub fn corpus_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("KFE_CORPUS") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus")
}

impl Templates {
    /// Read every template from the corpus. Panics (this is a bench fixture) naming the
    /// file that is missing or not one object.
    pub fn load() -> Templates {
        let root = corpus_dir();
        let templates = KINDS
            .iter()
            .map(|k| {
                k.templates
                    .iter()
                    .map(|rel| {
                        let path = root.join(rel);
                        let (objects, errors) = kube_field_exporter::input::read_path(&path);
                        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
                        assert_eq!(objects.len(), 1, "{}: expected one object", path.display());
                        let mut v = objects.into_iter().next().expect("one").value;
                        // Templates from kubectl output may lack these.
                        v["apiVersion"] = Value::from(k.api_version());
                        v["kind"] = Value::from(k.kind);
                        v
                    })
                    .collect()
            })
            .collect();
        Templates { templates }
    }

    /// Object `i` of any workload, in `version` (0 as first listed; each later version
    /// moves every integer in `spec`/`status` by one more, as an update would).
    pub fn object(&self, i: usize, version: u64) -> Object {
        let mut rng = Rng(i as u64 ^ 0x5eed);
        let kind = match i % 20 {
            0..=10 => 0,
            11..=14 => 1,
            15 => 2,
            _ => FIRST_CUSTOM + rng.below((KINDS.len() - FIRST_CUSTOM) as u64) as usize,
        };
        let choices = &self.templates[kind];
        let mut value = choices[rng.below(choices.len() as u64) as usize].clone();
        let meta = value
            .as_object_mut()
            .expect("object")
            .entry("metadata")
            .or_insert_with(|| Value::Object(Default::default()));
        let base = meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("obj")
            .to_string();
        meta["name"] = Value::from(format!("{base}-{i:06}"));
        if KINDS[kind].namespaced {
            meta["namespace"] = Value::from(format!("ns-{:02}", i % 50));
        } else if let Some(m) = meta.as_object_mut() {
            m.remove("namespace");
        }
        meta["uid"] = Value::from(format!("00000000-0000-4000-8000-{i:012}"));
        meta["resourceVersion"] = Value::from((1000 + i as u64 + version).to_string());
        let delta = rng.below(3) + version;
        for section in ["spec", "status"] {
            if let Some(v) = value.get_mut(section) {
                vary(v, delta);
            }
        }
        Object { kind, value }
    }

    /// Objects `0..n`, version 0.
    pub fn generate(&self, n: usize) -> Vec<Object> {
        (0..n).map(|i| self.object(i, 0)).collect()
    }
}

/// Move every non-negative integer by `delta`.
fn vary(v: &mut Value, delta: u64) {
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_u64() {
                *v = Value::from(x + delta);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|e| vary(e, delta)),
        Value::Object(m) => m.values_mut().for_each(|e| vary(e, delta)),
        _ => {}
    }
}

/// A small deterministic generator (splitmix64).
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
