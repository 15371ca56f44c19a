//! Names: how keys become parts of metric names and label names (DESIGN.md §2 "Names").

use heck::ToSnakeCase;

/// How keys are written in metric and label names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameStyle {
    /// Keys as written, sanitized (`availableReplicas`): kube-api-exporter compatible.
    #[default]
    AsWritten,
    /// Each key converted with heck's snake case, then sanitized (`available_replicas`).
    Snake,
}

impl std::str::FromStr for NameStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "as-written" | "default" | "camel" => Ok(NameStyle::AsWritten),
            "snake" => Ok(NameStyle::Snake),
            other => Err(format!(
                "unknown name style {other:?}: expected \"as-written\" or \"snake\""
            )),
        }
    }
}

/// Append `key` in `style`, sanitized, to `out`: every character outside
/// `[a-zA-Z0-9_]` becomes `_` (runs are kept in the default style).
pub fn push_key(out: &mut String, key: &str, style: NameStyle) {
    match style {
        NameStyle::AsWritten => push_sanitized(out, key),
        NameStyle::Snake => push_sanitized(out, &key.to_snake_case()),
    }
}

/// Append `s` to `out` with every character outside `[a-zA-Z0-9_]` replaced by `_`.
pub fn push_sanitized(out: &mut String, s: &str) {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        out.push_str(s);
        return;
    }
    out.extend(s.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
}

/// `key` in `style`, sanitized.
pub fn style_key(key: &str, style: NameStyle) -> String {
    let mut s = String::with_capacity(key.len());
    push_key(&mut s, key, style);
    s
}

/// A label name made from a key: styled, sanitized, `_` in front of a leading digit,
/// `_` for an empty key.
pub fn label_name(key: &str, style: NameStyle) -> String {
    let s = style_key(key, style);
    if s.is_empty() {
        "_".to_string()
    } else if s.as_bytes()[0].is_ascii_digit() {
        format!("_{s}")
    } else {
        s
    }
}

/// The metric kind for a `kind`: lower-cased and sanitized in both styles
/// (`HorizontalPodAutoscaler` → `horizontalpodautoscaler`).
pub fn metric_kind(kind: &str) -> String {
    let mut s = String::with_capacity(kind.len());
    push_sanitized(&mut s, &kind.to_lowercase());
    s
}

/// Whether `s` is a valid metric name prefix: `[a-zA-Z_][a-zA-Z0-9_]*`, not starting
/// with the reserved `__`.
pub fn is_valid_prefix(s: &str) -> bool {
    if s.starts_with("__") {
        return false;
    }
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Resolve a label name against the names already on the series: while `name` is taken
/// (or reserved: it starts with `__`), prefix it with `prefix` and `_`. `prefix` is a
/// styled key (the array's key, or the enclosing object's key, or `field` at the root).
pub fn unique_label(taken: &[(String, String)], name: String, prefix: &str) -> String {
    let prefix: std::borrow::Cow<'_, str> =
        if prefix.is_empty() || prefix == "_" || prefix.starts_with("__") {
            // Such a prefix could keep the name reserved (`__…`) forever.
            "field".into()
        } else if prefix.as_bytes()[0].is_ascii_digit() {
            // A label name never starts with a digit.
            format!("_{prefix}").into()
        } else {
            prefix.into()
        };
    let mut name = name;
    while name.starts_with("__") || taken.iter().any(|(l, _)| *l == name) {
        name = format!("{prefix}_{name}");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_as_written_are_sanitized_without_collapsing() {
        assert_eq!(
            style_key("availableReplicas", NameStyle::AsWritten),
            "availableReplicas"
        );
        assert_eq!(
            style_key("nvidia.com/gpu", NameStyle::AsWritten),
            "nvidia_com_gpu"
        );
        assert_eq!(style_key("a-.b", NameStyle::AsWritten), "a__b");
        assert_eq!(style_key("ümlaut", NameStyle::AsWritten), "_mlaut");
    }

    #[test]
    fn snake_style_uses_heck() {
        for (k, v) in [
            ("availableReplicas", "available_replicas"),
            (
                "targetCPUUtilizationPercentage",
                "target_cpu_utilization_percentage",
            ),
            ("podIPs", "pod_i_ps"),
            ("ephemeral-storage", "ephemeral_storage"),
            ("nvidia.com/gpu", "nvidia_com_gpu"),
        ] {
            assert_eq!(style_key(k, NameStyle::Snake), v);
        }
    }

    #[test]
    fn label_names_never_start_with_a_digit() {
        assert_eq!(label_name("0abc", NameStyle::AsWritten), "_0abc");
        assert_eq!(label_name("", NameStyle::AsWritten), "_");
        assert_eq!(label_name("type", NameStyle::AsWritten), "type");
    }

    #[test]
    fn kinds_are_lower_cased_only() {
        assert_eq!(
            metric_kind("HorizontalPodAutoscaler"),
            "horizontalpodautoscaler"
        );
        assert_eq!(metric_kind("Deployment"), "deployment");
    }

    #[test]
    fn collisions_prefix_until_unique() {
        let taken = vec![
            ("namespace".to_string(), String::new()),
            ("name".to_string(), String::new()),
            ("containers_name".to_string(), String::new()),
        ];
        assert_eq!(unique_label(&taken, "type".into(), "containers"), "type");
        assert_eq!(
            unique_label(&taken, "name".into(), "containers"),
            "containers_containers_name"
        );
        assert_eq!(unique_label(&taken, "name".into(), "spec"), "spec_name");
        assert_eq!(unique_label(&taken, "__x".into(), "_"), "field___x");
        assert_eq!(unique_label(&taken, "__x".into(), "_a"), "_a___x");
        let taken = vec![("_0_index".to_string(), String::new())];
        assert_eq!(unique_label(&taken, "_0_index".into(), "0"), "_0__0_index");
    }

    #[test]
    fn prefixes() {
        assert!(is_valid_prefix("k8s"));
        assert!(is_valid_prefix("_x"));
        assert!(!is_valid_prefix("8ks"));
        assert!(!is_valid_prefix("a-b"));
        assert!(!is_valid_prefix(""));
        assert!(!is_valid_prefix("__k8s"));
    }
}
