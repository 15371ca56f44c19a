//! Offline input: manifest files, directories and stdin → objects (DESIGN.md §2
//! "Offline input").
//!
//! YAML is read as YAML 1.2 (JSON data model: unquoted timestamps stay strings, `yes`/`no`
//! stay strings, `1_000` stays a string) with serde-saphyr; JSON with serde_json. A YAML
//! file is split into documents at `---` / `...` marker lines, so a broken document does
//! not take the others in its file down. `*List` objects are replaced by their items.
//! Every failure is an [`InputError`] naming the file, the document and what is wrong;
//! reading goes on with the next document or file.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::flatten::json_type;

/// Where an object came from: file, 1-based document index, 0-based list item index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file's path as given (or `<stdin>`).
    pub file: String,
    /// The 1-based index of the document in the file.
    pub doc: usize,
    /// The 0-based index within a `*List` object.
    pub item: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {}", self.file, self.doc)?;
        if let Some(i) = self.item {
            write!(f, ", item {i}")?;
        }
        write!(f, ")")
    }
}

/// A problem with the input. The message names the file (and document).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// A path that cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{path}: not UTF-8 text (invalid byte at offset {offset})")]
    NotUtf8 {
        /// The path.
        path: String,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// A document that is not valid YAML or JSON.
    #[error("{path} (document {doc}, line {line}): not valid {format}: {message}")]
    Parse {
        /// The path.
        path: String,
        /// 1-based document index.
        doc: usize,
        /// The line of the error in the file (the document's first line when the
        /// parser gives no location).
        line: usize,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message.
        message: String,
    },
    /// A document that parsed but is not a Kubernetes object.
    #[error("{origin}: skipped: {reason}")]
    Object {
        /// Where it came from.
        origin: Origin,
        /// What is wrong.
        reason: String,
    },
}

/// One object read from the input.
#[derive(Debug, Clone)]
pub struct InputObject {
    /// Where it came from.
    pub origin: Origin,
    /// The object.
    pub value: Value,
    /// Its `kind` (non-empty).
    pub kind: String,
    /// Its API group (`apps`; empty for the core group and when there is no apiVersion).
    pub group: String,
}

/// The files to read for the given arguments: files as given, directories walked
/// recursively for `*.yaml`, `*.yml`, `*.json` in sorted path order, `-` for stdin.
pub fn expand_paths(args: &[PathBuf]) -> (Vec<PathBuf>, Vec<InputError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for a in args {
        if a.as_os_str() == "-" {
            files.push(a.clone());
            continue;
        }
        match std::fs::metadata(a) {
            Ok(m) if m.is_dir() => {
                let mut found = Vec::new();
                walk_dir(a, 0, &mut found, &mut errors);
                found.sort();
                files.extend(found);
            }
            Ok(_) => files.push(a.clone()),
            Err(e) => errors.push(InputError::Io {
                path: a.display().to_string(),
                source: e,
            }),
        }
    }
    (files, errors)
}

fn walk_dir(dir: &Path, depth: usize, found: &mut Vec<PathBuf>, errors: &mut Vec<InputError>) {
    if depth > 32 {
        errors.push(InputError::Io {
            path: dir.display().to_string(),
            source: std::io::Error::other(
                "directories nested deeper than 32 levels (a symlink loop?)",
            ),
        });
        return;
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            errors.push(InputError::Io {
                path: dir.display().to_string(),
                source: e,
            });
            return;
        }
    };
    for entry in entries.flatten() {
        let p = entry.path();
        match std::fs::metadata(&p) {
            Ok(m) if m.is_dir() => walk_dir(&p, depth + 1, found, errors),
            Ok(_) => {
                let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
                if matches!(ext, "yaml" | "yml" | "json") {
                    found.push(p);
                }
            }
            Err(e) => errors.push(InputError::Io {
                path: p.display().to_string(),
                source: e,
            }),
        }
    }
}

/// Read one file (or stdin for `-`) into objects, with an error for each thing skipped.
pub fn read_path(path: &Path) -> (Vec<InputObject>, Vec<InputError>) {
    let (name, bytes) = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        match std::io::stdin().read_to_end(&mut b) {
            Ok(_) => ("<stdin>".to_string(), b),
            Err(e) => {
                return (
                    vec![],
                    vec![InputError::Io {
                        path: "<stdin>".into(),
                        source: e,
                    }],
                );
            }
        }
    } else {
        let name = path.display().to_string();
        match std::fs::read(path) {
            Ok(b) => (name, b),
            Err(e) => {
                return (
                    vec![],
                    vec![InputError::Io {
                        path: name,
                        source: e,
                    }],
                );
            }
        }
    };
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    read_bytes(&name, &bytes, ext)
}

/// Read a file's bytes. `ext` picks the format (`json`, `yaml`/`yml`); anything else is
/// JSON when the first non-blank character is `{`, else YAML.
pub fn read_bytes(name: &str, bytes: &[u8], ext: &str) -> (Vec<InputObject>, Vec<InputError>) {
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return (
                vec![],
                vec![InputError::NotUtf8 {
                    path: name.to_string(),
                    offset: e.valid_up_to(),
                }],
            );
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let json = match ext {
        "json" => true,
        "yaml" | "yml" => false,
        _ => text.trim_start().starts_with('{'),
    };
    let docs = if json {
        json_documents(name, text)
    } else {
        yaml_documents(name, text)
    };
    let mut objects = Vec::new();
    let mut errors = Vec::new();
    for d in docs {
        match d {
            Ok((doc, value)) => {
                let origin = Origin {
                    file: name.to_string(),
                    doc,
                    item: None,
                };
                expand(origin, value, &mut objects, &mut errors);
            }
            Err(e) => errors.push(e),
        }
    }
    (objects, errors)
}

/// JSON: one or more concatenated values.
fn json_documents(name: &str, text: &str) -> Vec<Result<(usize, Value), InputError>> {
    let mut out = Vec::new();
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
    let mut doc = 0;
    loop {
        let offset = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(v)) => {
                doc += 1;
                out.push(Ok((doc, v)));
            }
            Some(Err(e)) => {
                doc += 1;
                let line = if e.line() > 0 {
                    e.line()
                } else {
                    text[..offset.min(text.len())].matches('\n').count() + 1
                };
                out.push(Err(InputError::Parse {
                    path: name.to_string(),
                    doc,
                    line,
                    format: "JSON",
                    message: e.to_string(),
                }));
                break; // the rest of a broken JSON stream cannot be resynchronised
            }
        }
    }
    out
}

fn yaml_options() -> serde_saphyr::Options {
    let mut o = serde_saphyr::Options::default();
    o.strict_booleans = true;
    o.underscored_numbers_as_strings = true;
    o.legacy_octal_numbers = false;
    o.with_snippet = false;
    o.non_finite_float_policy = serde_saphyr::NonFiniteFloatPolicy::AsString;
    o
}

/// YAML: split into documents at marker lines, parse each on its own.
fn yaml_documents(name: &str, text: &str) -> Vec<Result<(usize, Value), InputError>> {
    let mut chunks: Vec<(usize, String)> = Vec::new();
    let mut cur = String::new();
    let mut cur_line = 1;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let bare = line.trim_end_matches(['\n', '\r']);
        let starts_doc = bare == "---" || bare.starts_with("--- ") || bare.starts_with("---\t");
        if starts_doc {
            chunks.push((cur_line, std::mem::take(&mut cur)));
            cur_line = i + 1;
        }
        cur.push_str(line);
        if bare == "..." {
            chunks.push((cur_line, std::mem::take(&mut cur)));
            cur_line = i + 2;
        }
    }
    chunks.push((cur_line, cur));

    let mut out = Vec::new();
    let mut doc = 0;
    for (line, chunk) in chunks {
        let has_content = chunk.lines().any(|l| {
            let t = l.trim();
            !(t.is_empty() || t.starts_with('#') || t == "---" || t == "..." || t.starts_with('%'))
        });
        if !has_content {
            continue;
        }
        doc += 1;
        match serde_saphyr::from_str_with_options::<Value>(&chunk, yaml_options()) {
            Ok(Value::Null) => {}
            Ok(v) => out.push(Ok((doc, v))),
            Err(e) => {
                let first = e.to_string().lines().next().unwrap_or("").to_string();
                let (line, message) = match e.location() {
                    Some(loc) if loc.line() > 0 => {
                        let at = line + loc.line() as usize - 1;
                        let message = first.replace(
                            &format!("line {}, column", loc.line()),
                            &format!("line {at}, column"),
                        );
                        (at, message)
                    }
                    _ => (line, first),
                };
                out.push(Err(InputError::Parse {
                    path: name.to_string(),
                    doc,
                    line,
                    format: "YAML",
                    message,
                }))
            }
        }
    }
    out
}

/// Check one document and replace a `*List` by its items.
fn expand(
    origin: Origin,
    value: Value,
    objects: &mut Vec<InputObject>,
    errors: &mut Vec<InputError>,
) {
    let skip = |origin: Origin, reason: String| InputError::Object { origin, reason };
    let Value::Object(map) = value else {
        errors.push(skip(
            origin,
            format!("not an object (found {})", json_type(&value)),
        ));
        return;
    };
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if kind.ends_with("List") && map.get("items").is_some_and(Value::is_array) {
        let api_version = map.get("apiVersion").cloned();
        let item_kind = kind
            .strip_suffix("List")
            .filter(|k| !k.is_empty())
            .map(str::to_string);
        let Some(Value::Array(items)) = map.get("items").cloned() else {
            return;
        };
        for (i, mut item) in items.into_iter().enumerate() {
            let item_origin = Origin {
                item: Some(i),
                ..origin.clone()
            };
            if let Value::Object(m) = &mut item {
                if !m.contains_key("kind")
                    && let Some(k) = &item_kind
                {
                    m.insert("kind".into(), Value::String(k.clone()));
                }
                if !m.contains_key("apiVersion")
                    && let Some(a) = &api_version
                {
                    m.insert("apiVersion".into(), a.clone());
                }
            }
            expand(item_origin, item, objects, errors);
        }
        return;
    }
    if kind.is_empty() {
        errors.push(skip(origin, "no kind".into()));
        return;
    }
    let has_name = map
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    if !has_name {
        errors.push(skip(origin, format!("{kind} has no metadata.name")));
        return;
    }
    let group = map
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|a| a.split_once('/'))
        .map(|(g, _)| g.to_string())
        .unwrap_or_default();
    objects.push(InputObject {
        origin,
        value: Value::Object(map),
        kind,
        group,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, ext: &str) -> (Vec<InputObject>, Vec<String>) {
        let (o, e) = read_bytes("f", text.as_bytes(), ext);
        (o, e.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn yaml_is_read_as_yaml_1_2() {
        let (o, e) = read(
            "kind: X\nmetadata: {name: a}\nspec:\n  a: yes\n  b: no\n  c: 2018-12-02T09:19:36Z\n  d: 1_000\n  e: on\n  f: 0o17\n  g: .inf\n  h: 010\n  i: true\n",
            "yaml",
        );
        assert!(e.is_empty(), "{e:?}");
        let spec = &o[0].value["spec"];
        assert_eq!(spec["a"], "yes");
        assert_eq!(spec["b"], "no");
        assert_eq!(spec["c"], "2018-12-02T09:19:36Z");
        assert_eq!(spec["d"], "1_000");
        assert_eq!(spec["e"], "on");
        assert_eq!(spec["f"].as_f64(), Some(15.0));
        assert_eq!(spec["g"], ".inf");
        assert_eq!(spec["h"].as_f64(), Some(10.0));
        assert_eq!(spec["i"], true);
    }

    #[test]
    fn multi_document_yaml_isolates_a_broken_document() {
        let text = "# c\n---\nkind: A\nmetadata: {name: a}\n---\nkind: B\nmetadata: {name: [b\n---\n\n---\nkind: C\nmetadata: {name: c}\n...\n";
        let (o, e) = read(text, "yaml");
        assert_eq!(
            o.iter().map(|o| o.kind.as_str()).collect::<Vec<_>>(),
            ["A", "C"]
        );
        assert_eq!(o[1].origin.doc, 3);
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("f (document 2, line 7): not valid YAML"),
            "{}",
            e[0]
        );
    }

    #[test]
    fn lists_are_replaced_by_items_which_inherit_kind_and_api_version() {
        let text = r#"{"apiVersion":"apps/v1","kind":"DeploymentList","items":[
            {"metadata":{"name":"a"}},
            {"kind":"Other","apiVersion":"x.io/v1","metadata":{"name":"b"}},
            {"metadata":{}}
        ]}"#;
        let (o, e) = read(text, "json");
        assert_eq!(o.len(), 2);
        assert_eq!(
            (o[0].kind.as_str(), o[0].group.as_str()),
            ("Deployment", "apps")
        );
        assert_eq!((o[1].kind.as_str(), o[1].group.as_str()), ("Other", "x.io"));
        assert_eq!(
            e,
            ["f (document 1, item 2): skipped: Deployment has no metadata.name"]
        );
        let (o, e) = read(
            "apiVersion: v1\nkind: List\nitems:\n- kind: Pod\n  metadata: {name: p}\n- metadata: {name: q}\n",
            "yaml",
        );
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].group, "");
        assert_eq!(e, ["f (document 1, item 1): skipped: no kind"]);
    }

    #[test]
    fn bad_documents_are_named() {
        let (_, e) = read("- 1\n- 2\n", "yaml");
        assert_eq!(
            e,
            ["f (document 1): skipped: not an object (found an array)"]
        );
        let (_, e) = read("{\"kind\": \"X\", ", "json");
        assert!(
            e[0].starts_with("f (document 1, line 1): not valid JSON"),
            "{e:?}"
        );
        let (_, e) = read_bytes("bin", b"kind: \xff\n", "yaml");
        assert_eq!(
            e[0].to_string(),
            "bin: not UTF-8 text (invalid byte at offset 6)"
        );
        let (_, e) = read("metadata: {name: x}\n", "yaml");
        assert_eq!(e, ["f (document 1): skipped: no kind"]);
        let (o, e) = read(
            "{\"kind\":\"A\",\"metadata\":{\"name\":\"a\"}}\n{\"kind\":\"B\",\"metadata\":{\"name\":\"b\"}}",
            "",
        );
        assert!(e.is_empty());
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!(
            "kind: X\nmetadata: {{name: a}}\nspec: {}1{}\n",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let (o, e) = read(&deep, "yaml");
        assert!(o.is_empty());
        assert_eq!(e.len(), 1);
        let deep = format!(
            "{{\"kind\":\"X\",\"metadata\":{{\"name\":\"a\"}},\"spec\":{}1{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let (o, e) = read(&deep, "json");
        assert!(o.is_empty());
        assert_eq!(e.len(), 1);
    }
}
