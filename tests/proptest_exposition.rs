//! Property tests: random JSON objects flatten to a valid exposition with no duplicate
//! series, in both name styles, and flattening never panics; the live renderer (which
//! encodes series as the walker emits them) gives exactly the lines of the samples
//! `flatten` returns, after the same enum cap.

mod support;

use kube_field_exporter::encode;
use kube_field_exporter::exposition::{Admission, EnumCap, Exposition};
use kube_field_exporter::flatten::{FlattenOptions, NameStyle, ResourceInfo, Sample, flatten};
use kube_field_exporter::store::Renderer;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("name".to_string()),
        Just("type".to_string()),
        Just("status".to_string()),
        Just("conditions".to_string()),
        Just("labels".to_string()),
        Just("namespace".to_string()),
        Just("__name__".to_string()),
        Just("".to_string()),
        "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
        "[a-z]{1,4}[-./ ][A-Z0-9]{1,4}",
        "\\PC{1,6}",
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop_oneof![
            Just("True"),
            Just("False"),
            Just("Unknown"),
            Just("Running"),
            Just("10m"),
            Just("25%"),
            Just("1Gi"),
            Just("1h30m"),
            Just("2026-02-09T10:15:00Z"),
            Just("4"),
        ]
        .prop_map(|s| json!(s)),
        "\\PC{0,12}".prop_map(Value::String),
        "[\"\\\\\n a-zA-Z]{0,8}".prop_map(Value::String),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn object() -> impl Strategy<Value = Value> {
    (
        key(),
        "\\PC{1,10}",
        prop::option::of("[a-z\"\\\\\n]{0,6}"),
        value(),
        value(),
    )
        .prop_map(|(extra, name, ns, spec, status)| {
            let mut meta = json!({"name": name});
            if let Some(ns) = ns {
                meta["namespace"] = json!(ns);
            }
            json!({"kind": "Thing", "metadata": meta, "spec": spec, "status": status, extra: spec})
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn flattening_random_objects_gives_a_valid_exposition(objs in prop::collection::vec(object(), 1..4), snake in any::<bool>()) {
        let opts = FlattenOptions {
            name_style: if snake { NameStyle::Snake } else { NameStyle::AsWritten },
            array_cap: 4,
            ..Default::default()
        };
        let res = ResourceInfo::from_kind("Thing", "example.com");
        let mut expo = Exposition::new(opts.enum_cap);
        for o in &objs {
            let flat = flatten(o, &res, None, &opts).expect("named object");
            // Within one object no series repeats.
            let mut keys = std::collections::HashSet::new();
            for s in &flat.samples {
                prop_assert!(keys.insert(kube_field_exporter::flatten::series_key(&s.name, &s.labels)));
            }
            expo.add(flat);
        }
        let text = String::from_utf8(expo.render()).unwrap();
        let parsed = support::exposition::parse(&text);
        prop_assert!(parsed.is_ok(), "{:?}\n{}", parsed.err(), text);
    }
}

/// What the renderer must produce, computed the slow way from `flatten`'s samples: the
/// enum cap applied in walk order, then samples grouped by family (sorted by name here;
/// the renderer's family order is free), each family's lines in walk order, HELP from
/// its first sample.
fn reference(samples: Vec<Sample>, cap: &mut EnumCap) -> (Vec<(String, String, String)>, u64) {
    let mut dropped = 0;
    let mut kept: Vec<Sample> = samples
        .into_iter()
        .filter(|s| {
            let value = s.labels.last().map_or("", |(_, v)| v.as_str());
            let keep = !s.capped || cap.admit(&s.name, value) == Admission::Admitted;
            dropped += u64::from(!keep);
            keep
        })
        .collect();
    kept.sort_by(|a, b| a.name.cmp(&b.name));
    let mut families: Vec<(String, String, String)> = Vec::new();
    for s in kept {
        let mut line = Vec::new();
        encode::write_sample(&mut line, &s.name, &s.labels, s.value);
        let line = String::from_utf8(line).expect("utf-8");
        match families.last_mut() {
            Some(f) if f.0 == s.name => f.2.push_str(&line),
            _ => families.push((s.name, s.help, line)),
        }
    }
    (families, dropped)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn rendering_equals_the_encoded_samples(objs in prop::collection::vec(object(), 1..6), snake in any::<bool>()) {
        let opts = FlattenOptions {
            name_style: if snake { NameStyle::Snake } else { NameStyle::AsWritten },
            array_cap: 4,
            enum_cap: 2,
            ..Default::default()
        };
        let res = ResourceInfo::from_kind("Thing", "example.com");
        let renderer = Renderer::new(opts.clone());
        let mut cap = EnumCap::new(opts.enum_cap);
        for o in &objs {
            let flat = flatten(o, &res, None, &opts).expect("named object");
            let walk_dropped = flat.dropped;
            let (expected, capped) = reference(flat.samples, &mut cap);
            let (rendered, _) = renderer.render(o, &res, None).expect("renders");
            let mut got: Vec<(String, String, String)> = rendered
                .families
                .iter()
                .map(|f| {
                    let lines = String::from_utf8(f.lines.to_vec()).expect("utf-8");
                    (f.name.to_string(), f.help.clone(), lines)
                })
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(&got, &expected);
            prop_assert_eq!(rendered.series, expected.iter().map(|f| f.2.lines().count()).sum::<usize>());
            prop_assert_eq!(rendered.dropped.duplicate, walk_dropped.duplicate);
            prop_assert_eq!(rendered.dropped.enum_cap, capped);
        }
    }
}
