//! Command-line flags: raw argh structs, converted to validated configs (errors at the
//! edge, ripgrep style).

use std::collections::BTreeSet;
use std::path::PathBuf;

use argh::FromArgs;
use regex::Regex;

use crate::flatten::naming::is_valid_prefix;
use crate::flatten::{Allowlist, FlattenOptions, NameStyle};
use crate::resource::KindName;

/// Turn the fields of any Kubernetes object into Prometheus metrics.
#[derive(FromArgs, Debug)]
pub struct Cli {
    /// the command
    #[argh(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(FromArgs, Debug)]
#[argh(subcommand)]
pub enum Command {
    /// Offline flattening of manifests.
    Flatten(FlattenArgs),
    /// The live exporter.
    Serve(ServeArgs),
    /// The series names kinds can produce.
    Schema(SchemaArgs),
}

/// List every series each kind of the given CRDs can produce: names, labels, value kinds
/// and HELP — a metric reference for alert authors.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "schema")]
pub struct SchemaArgs {
    /// CRD files or directories (walked recursively for *.yaml, *.yml, *.json)
    #[argh(positional)]
    pub crds: Vec<PathBuf>,
    #[argh(option)]
    /// describe a resource of the cluster instead (kubectl names, as for serve;
    /// repeatable, comma lists): installed CRDs and, through OpenAPI v3, built-in kinds
    pub resource: Vec<String>,
    #[argh(option)]
    /// kubeconfig file for --resource
    pub kubeconfig: Option<PathBuf>,
    #[argh(option)]
    /// kubeconfig context for --resource
    pub context: Option<String>,
    #[argh(option)]
    /// the CRD version to describe (default: the storage version)
    pub version: Option<String>,
    #[argh(option, default = "String::from(\"text\")")]
    /// output format: text (default), markdown or json
    pub format: String,
    #[argh(option, default = "String::from(\"k8s\")")]
    /// metric name prefix (default: k8s)
    pub prefix: String,
    #[argh(option, default = "String::from(\"as-written\")")]
    /// key style in names: as-written (default) or snake
    pub name_style: String,
    #[argh(option, default = "true")]
    /// list the enum-like reading of plain strings (default: true)
    pub enum_heuristic: bool,
    #[argh(option)]
    /// metric kind name for a kind, KIND[.GROUP]=NAME (repeatable)
    pub kind_name: Vec<String>,
}

/// `schema`'s output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaFormat {
    /// One line per series.
    Text,
    /// A Markdown table per kind.
    Markdown,
    /// JSON.
    Json,
}

/// The validated `schema` command.
#[derive(Debug)]
pub struct SchemaConfig {
    /// CRD inputs.
    pub crds: Vec<PathBuf>,
    /// `--resource` specs (cluster mode).
    pub resources: Vec<crate::discovery::ResourceSpec>,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `--version`.
    pub version: Option<String>,
    /// `--format`.
    pub format: SchemaFormat,
    /// Naming options.
    pub options: FlattenOptions,
    /// `--kind-name` overrides.
    pub kind_names: Vec<KindName>,
}

impl TryFrom<SchemaArgs> for SchemaConfig {
    type Error = ConfigError;
    fn try_from(a: SchemaArgs) -> Result<Self, ConfigError> {
        let resources = crate::discovery::parse_specs(&a.resource)?;
        if a.crds.is_empty() && resources.is_empty() {
            return Err(ConfigError::NoInput);
        }
        let options = flatten_options(
            &a.prefix,
            &a.name_style,
            &[],
            a.enum_heuristic,
            &[],
            &[],
            &[],
            &[],
            64,
            32,
        )?;
        let format = match a.format.as_str() {
            "text" => SchemaFormat::Text,
            "markdown" | "md" => SchemaFormat::Markdown,
            "json" => SchemaFormat::Json,
            other => return Err(ConfigError::Format(other.to_string())),
        };
        let kind_names = a
            .kind_name
            .iter()
            .map(|k| k.parse())
            .collect::<Result<Vec<KindName>, _>>()?;
        Ok(SchemaConfig {
            crds: a.crds,
            resources,
            kubeconfig: a.kubeconfig,
            context: a.context,
            version: a.version,
            format,
            options,
            kind_names,
        })
    }
}

/// Watch Kubernetes resources and serve their fields as Prometheus metrics on /metrics.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "serve")]
pub struct ServeArgs {
    #[argh(option)]
    /// resource to watch, as kubectl names it (deployments, deploy, Deployment,
    /// deployments.apps, deployments.v1.apps, certificates.cert-manager.io); RES=NAME sets
    /// its metric kind name; repeatable and comma lists
    pub resource: Vec<String>,
    #[argh(option)]
    /// namespace to watch (repeatable, comma lists; default: all namespaces)
    pub namespace: Vec<String>,
    #[argh(option)]
    /// label selector for every watch, e.g. 'app=web,tier!=cache'
    pub label_selector: Option<String>,
    #[argh(option)]
    /// field selector for every watch, e.g. 'metadata.name=web'
    pub field_selector: Option<String>,
    #[argh(option, default = "String::from(\"0.0.0.0:8080\")")]
    /// address to serve on (default: 0.0.0.0:8080)
    pub listen: String,
    #[argh(option)]
    /// kubeconfig file (default: in-cluster service account, else $KUBECONFIG or
    /// ~/.kube/config)
    pub kubeconfig: Option<PathBuf>,
    #[argh(option)]
    /// kubeconfig context (default: the current context)
    pub context: Option<String>,
    #[argh(option, default = "String::from(\"text\")")]
    /// log format: text (default) or json; the level is set with RUST_LOG
    pub log_format: String,
    #[argh(option, default = "String::from(\"30s\")")]
    /// time between API discovery passes that pick up new or moved CRDs (default: 30s)
    pub discovery_interval: String,
    #[argh(option, default = "500")]
    /// objects per page of initial lists (default: 500)
    pub page_size: u32,
    #[argh(option, default = "String::from(\"k8s\")")]
    /// metric name prefix (default: k8s)
    pub prefix: String,
    #[argh(option, default = "String::from(\"as-written\")")]
    /// key style in names: as-written (default) or snake
    pub name_style: String,
    #[argh(option)]
    /// dotted path of a string field to treat as an enum (repeatable)
    pub enum_path: Vec<String>,
    #[argh(option, default = "true")]
    /// treat CamelCase constants (Running, ClusterIP) as enums (default: true)
    pub enum_heuristic: bool,
    #[argh(option)]
    /// regex on dotted paths: only matching fields (and their children) are emitted
    /// (repeatable)
    pub include: Vec<String>,
    #[argh(option)]
    /// regex on dotted paths: matching fields are not walked (repeatable; wins over
    /// --include)
    pub exclude: Vec<String>,
    #[argh(option)]
    /// label keys exported as a _labels info series, e.g. 'deployments=[app,team],pods=[*]'
    pub labels_allowlist: Vec<String>,
    #[argh(option)]
    /// annotation keys exported as an _annotations info series (same syntax)
    pub annotations_allowlist: Vec<String>,
    #[argh(option, default = "64")]
    /// arrays are cut to this many elements (default: 64)
    pub array_cap: usize,
    #[argh(option, default = "32")]
    /// distinct values per enum family before new values are dropped (default: 32)
    pub enum_cap: usize,
}

/// The log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated `serve` command.
#[derive(Debug)]
pub struct ServeCommand {
    /// What to watch and how to serve it.
    pub config: crate::serve::ServeConfig,
    /// `--kubeconfig`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`.
    pub context: Option<String>,
    /// `--log-format`.
    pub log_format: LogFormat,
}

impl TryFrom<ServeArgs> for ServeCommand {
    type Error = ConfigError;
    fn try_from(a: ServeArgs) -> Result<Self, ConfigError> {
        let options = flatten_options(
            &a.prefix,
            &a.name_style,
            &a.enum_path,
            a.enum_heuristic,
            &a.include,
            &a.exclude,
            &a.labels_allowlist,
            &a.annotations_allowlist,
            a.array_cap,
            a.enum_cap,
        )?;
        let specs = crate::discovery::parse_specs(&a.resource)?;
        if specs.is_empty() {
            return Err(ConfigError::NoResource);
        }
        let specs = crate::serve::dedup_specs(specs);
        let mut namespaces: Vec<String> = a
            .namespace
            .iter()
            .flat_map(|n| n.split(','))
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .collect();
        namespaces.sort();
        namespaces.dedup();
        let listen = a
            .listen
            .parse()
            .map_err(|_| ConfigError::Listen(a.listen.clone()))?;
        let discovery_interval = crate::flatten::value::go_duration(&a.discovery_interval)
            .filter(|s| *s >= 0.1 && s.is_finite())
            .map(std::time::Duration::from_secs_f64)
            .ok_or_else(|| ConfigError::Duration {
                flag: "discovery-interval",
                value: a.discovery_interval.clone(),
            })?;
        if a.page_size == 0 {
            return Err(ConfigError::ZeroCap("page-size"));
        }
        let log_format = match a.log_format.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => return Err(ConfigError::LogFormat(other.to_string())),
        };
        let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        Ok(ServeCommand {
            config: crate::serve::ServeConfig {
                specs,
                namespaces,
                label_selector: nonempty(a.label_selector),
                field_selector: nonempty(a.field_selector),
                listen,
                options,
                discovery_interval,
                page_size: a.page_size,
            },
            kubeconfig: a.kubeconfig,
            context: a.context,
            log_format,
        })
    }
}

/// Flatten manifests (files, directories, or - for stdin) into one Prometheus exposition
/// on stdout.
#[derive(FromArgs, Debug)]
#[argh(subcommand, name = "flatten")]
pub struct FlattenArgs {
    /// files, directories (walked recursively for *.yaml, *.yml, *.json) or - for stdin
    #[argh(positional)]
    pub paths: Vec<PathBuf>,
    #[argh(option, default = "String::from(\"k8s\")")]
    /// metric name prefix (default: k8s)
    pub prefix: String,
    #[argh(option, default = "String::from(\"as-written\")")]
    /// key style in names: as-written (default) or snake
    pub name_style: String,
    #[argh(option)]
    /// dotted path of a string field to treat as an enum (repeatable)
    pub enum_path: Vec<String>,
    #[argh(option, default = "true")]
    /// treat CamelCase constants (Running, ClusterIP) as enums (default: true)
    pub enum_heuristic: bool,
    #[argh(option)]
    /// regex on dotted paths: only matching fields (and their children) are emitted
    /// (repeatable)
    pub include: Vec<String>,
    #[argh(option)]
    /// regex on dotted paths: matching fields are not walked (repeatable; wins over
    /// --include)
    pub exclude: Vec<String>,
    #[argh(option)]
    /// label keys exported as a _labels info series, e.g. 'deployments=[app,team],pods=[*]'
    pub labels_allowlist: Vec<String>,
    #[argh(option)]
    /// annotation keys exported as an _annotations info series (same syntax)
    pub annotations_allowlist: Vec<String>,
    #[argh(option, default = "64")]
    /// arrays are cut to this many elements (default: 64)
    pub array_cap: usize,
    #[argh(option, default = "32")]
    /// distinct values per enum family before new values are dropped (default: 32)
    pub enum_cap: usize,
    #[argh(option)]
    /// metric kind name for a kind, KIND[.GROUP]=NAME, e.g.
    /// Service.serving.knative.dev=knativeservice (repeatable)
    pub kind_name: Vec<String>,
    #[argh(option)]
    /// a CRD file or directory whose schemas apply to the objects of its kinds: schema
    /// enums, descriptions as HELP, formats (repeatable)
    pub crd: Vec<PathBuf>,
}

/// A flag value that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Invalid `--prefix`.
    #[error("invalid --prefix {0:?}: must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __")]
    Prefix(String),
    /// Invalid `--name-style`.
    #[error("invalid --name-style: {0}")]
    NameStyle(String),
    /// An invalid regex.
    #[error("invalid --{flag} regex {pattern:?}: {source}")]
    Regex {
        /// The flag.
        flag: &'static str,
        /// The pattern.
        pattern: String,
        /// The regex error.
        source: regex::Error,
    },
    /// An invalid allowlist.
    #[error(transparent)]
    Allowlist(#[from] crate::flatten::options::AllowlistError),
    /// An invalid `--kind-name`.
    #[error(transparent)]
    KindName(#[from] crate::resource::KindNameError),
    /// A cap of zero.
    #[error("--{0} must be at least 1")]
    ZeroCap(&'static str),
    /// No input.
    #[error("no input: give files, directories, or - for stdin")]
    NoInput,
    /// No `--resource`.
    #[error("no resource to watch: give --resource, e.g. --resource deployments.apps")]
    NoResource,
    /// An invalid `--resource`.
    #[error(transparent)]
    Resource(#[from] crate::discovery::SpecError),
    /// An invalid `--listen`.
    #[error("invalid --listen {0:?}: expected ADDRESS:PORT, e.g. 0.0.0.0:8080")]
    Listen(String),
    /// An invalid duration.
    #[error("invalid --{flag} {value:?}: expected a duration of at least 100ms, e.g. 30s or 2m")]
    Duration {
        /// The flag.
        flag: &'static str,
        /// The value.
        value: String,
    },
    /// An invalid `--format`.
    #[error("invalid --format {0:?}: expected text, markdown or json")]
    Format(String),
    /// An invalid `--log-format`.
    #[error("invalid --log-format {0:?}: expected text or json")]
    LogFormat(String),
}

/// The validated flattening options shared by every command.
#[allow(clippy::too_many_arguments)]
pub fn flatten_options(
    prefix: &str,
    name_style: &str,
    enum_path: &[String],
    enum_heuristic: bool,
    include: &[String],
    exclude: &[String],
    labels_allowlist: &[String],
    annotations_allowlist: &[String],
    array_cap: usize,
    enum_cap: usize,
) -> Result<FlattenOptions, ConfigError> {
    if !is_valid_prefix(prefix) {
        return Err(ConfigError::Prefix(prefix.to_string()));
    }
    let name_style: NameStyle = name_style.parse().map_err(ConfigError::NameStyle)?;
    let regexes = |flag: &'static str, pats: &[String]| -> Result<Vec<Regex>, ConfigError> {
        pats.iter()
            .map(|p| {
                Regex::new(p).map_err(|source| ConfigError::Regex {
                    flag,
                    pattern: p.clone(),
                    source,
                })
            })
            .collect()
    };
    let allow = |items: &[String]| -> Result<Allowlist, ConfigError> {
        let mut a = Allowlist::default();
        for i in items {
            a.extend(Allowlist::parse(i)?);
        }
        Ok(a)
    };
    if array_cap == 0 {
        return Err(ConfigError::ZeroCap("array-cap"));
    }
    if enum_cap == 0 {
        return Err(ConfigError::ZeroCap("enum-cap"));
    }
    Ok(FlattenOptions {
        prefix: prefix.to_string(),
        name_style,
        enum_paths: enum_path.iter().cloned().collect::<BTreeSet<_>>(),
        enum_heuristic,
        include: regexes("include", include)?,
        exclude: regexes("exclude", exclude)?,
        array_cap,
        enum_cap,
        labels_allowlist: allow(labels_allowlist)?,
        annotations_allowlist: allow(annotations_allowlist)?,
        ..FlattenOptions::default()
    })
}

/// The validated `flatten` command.
#[derive(Debug)]
pub struct FlattenConfig {
    /// Inputs.
    pub paths: Vec<PathBuf>,
    /// Flattening options.
    pub options: FlattenOptions,
    /// `--kind-name` overrides.
    pub kind_names: Vec<KindName>,
    /// `--crd` files and directories.
    pub crds: Vec<PathBuf>,
}

impl TryFrom<FlattenArgs> for FlattenConfig {
    type Error = ConfigError;
    fn try_from(a: FlattenArgs) -> Result<Self, ConfigError> {
        if a.paths.is_empty() {
            return Err(ConfigError::NoInput);
        }
        let options = flatten_options(
            &a.prefix,
            &a.name_style,
            &a.enum_path,
            a.enum_heuristic,
            &a.include,
            &a.exclude,
            &a.labels_allowlist,
            &a.annotations_allowlist,
            a.array_cap,
            a.enum_cap,
        )?;
        let kind_names = a
            .kind_name
            .iter()
            .map(|k| k.parse())
            .collect::<Result<Vec<KindName>, _>>()?;
        let paths = a
            .paths
            .into_iter()
            .map(|p| {
                if p.as_os_str() == STDIN_ARG {
                    PathBuf::from("-")
                } else {
                    p
                }
            })
            .collect();
        Ok(FlattenConfig {
            paths,
            options,
            kind_names,
            crds: a.crd,
        })
    }
}

/// What a positional `-` (stdin) is passed to argh as: argh rejects arguments that
/// start with `-`, so [`normalize_args`] swaps it for this and the config swaps it back.
pub const STDIN_ARG: &str = "\u{0}stdin";

/// Prepare argv for argh: split `--flag=value` into `--flag value` (argh takes only the
/// latter) and pass a lone `-` as [`STDIN_ARG`], up to a bare `--`.
pub fn normalize_args(args: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = false;
    for a in args {
        if rest || a == "--" {
            rest = true;
            out.push(a);
        } else if a == "-" {
            out.push(STDIN_ARG.to_string());
        } else if let (true, Some((flag, value))) = (a.starts_with("--"), a.split_once('=')) {
            out.push(flag.to_string());
            out.push(value.to_string());
        } else {
            out.push(a);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_are_split_before_a_double_dash_only() {
        let v = normalize_args(
            ["x", "--name-style=snake", "-", "--", "--a=b", "-"]
                .into_iter()
                .map(String::from),
        );
        assert_eq!(
            v,
            ["x", "--name-style", "snake", STDIN_ARG, "--", "--a=b", "-"]
        );
    }

    #[test]
    fn flags_are_validated_at_the_edge() {
        let ok = |p: &str, s: &str, inc: &[&str]| {
            flatten_options(
                p,
                s,
                &[],
                true,
                &inc.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                &[],
                &[],
                &[],
                64,
                32,
            )
        };
        assert!(ok("k8s", "snake", &["^status"]).is_ok());
        assert!(
            ok("8", "snake", &[])
                .unwrap_err()
                .to_string()
                .contains("--prefix")
        );
        assert!(
            ok("k", "kebab", &[])
                .unwrap_err()
                .to_string()
                .contains("kebab")
        );
        assert!(
            ok("k", "snake", &["("])
                .unwrap_err()
                .to_string()
                .contains("--include")
        );
    }
}
