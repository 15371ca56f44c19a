//! One test per rule of DESIGN.md §2, with exact expected lines.

use kube_field_exporter::encode;
use kube_field_exporter::flatten::{
    Allowlist, FlattenError, FlattenOptions, NameStyle, ResourceInfo, flatten,
};
use kube_field_exporter::schema::SchemaNode;
use regex::Regex;
use serde_json::{Value, json};

fn lines_with(obj: Value, opts: &FlattenOptions, schema: Option<&SchemaNode>) -> Vec<String> {
    let kind = obj["kind"].as_str().unwrap_or("Thing").to_string();
    let res = ResourceInfo::from_kind(&kind, "example.com");
    let flat = flatten(&obj, &res, schema, opts).expect("flatten");
    flat.samples
        .iter()
        .map(|s| {
            let mut b = Vec::new();
            encode::write_sample(&mut b, &s.name, &s.labels, s.value);
            String::from_utf8(b).unwrap().trim_end().to_string()
        })
        .collect()
}

fn lines(obj: Value) -> Vec<String> {
    lines_with(obj, &FlattenOptions::default(), None)
}

fn thing(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Thing",
           "metadata": {"name": "t", "namespace": "ns"}, "spec": spec})
}

const ID: &str = r#"namespace="ns",name="t""#;

fn l(s: &str) -> String {
    s.replace("ID", ID)
}

#[test]
fn kube_api_exporter_helloworld_names_are_identical() {
    let obj = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "helloworld", "namespace": "default", "generation": 2,
                     "uid": "1234", "resourceVersion": "99"},
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 2, "replicas": 1, "updatedReplicas": 1,
                   "availableReplicas": 1}
    });
    let id = r#"{namespace="default",name="helloworld"}"#;
    assert_eq!(
        lines(obj),
        [
            format!("k8s_deployment_metadata_generation{id} 2"),
            format!("k8s_deployment_spec_replicas{id} 1"),
            format!("k8s_deployment_status_availableReplicas{id} 1"),
            format!("k8s_deployment_status_observedGeneration{id} 2"),
            format!("k8s_deployment_status_replicas{id} 1"),
            format!("k8s_deployment_status_updatedReplicas{id} 1"),
        ]
    );
}

#[test]
fn cluster_scoped_objects_have_no_namespace_label() {
    let obj = json!({"kind": "Node", "metadata": {"name": "n1", "namespace": ""},
                     "status": {"capacity": {"cpu": "4", "memory": "8165556Ki", "pods": "110",
                                             "ephemeral-storage": "15625027559"}}});
    assert_eq!(
        lines(obj),
        [
            r#"k8s_node_status_capacity_cpu{name="n1"} 4"#,
            r#"k8s_node_status_capacity_ephemeral_storage{name="n1"} 15625027559"#,
            r#"k8s_node_status_capacity_memory{name="n1"} 8361529344"#,
            r#"k8s_node_status_capacity_pods{name="n1"} 110"#,
        ]
    );
}

#[test]
fn names_sanitize_keys_without_collapsing_and_snake_style_converts() {
    let obj = thing(
        json!({"a-.b": 1, "targetCPUUtilizationPercentage": 2, "podIPs": 3,
                           "9lives": 4}),
    );
    assert_eq!(
        lines(obj.clone()),
        [
            l("k8s_thing_spec_9lives{ID} 4"),
            l("k8s_thing_spec_a__b{ID} 1"),
            l("k8s_thing_spec_podIPs{ID} 3"),
            l("k8s_thing_spec_targetCPUUtilizationPercentage{ID} 2"),
        ]
    );
    let snake = FlattenOptions {
        name_style: NameStyle::Snake,
        prefix: "kube".into(),
        ..Default::default()
    };
    assert_eq!(
        lines_with(obj, &snake, None),
        [
            l("kube_thing_spec_9lives{ID} 4"),
            l("kube_thing_spec_a_b{ID} 1"),
            l("kube_thing_spec_pod_i_ps{ID} 3"),
            l("kube_thing_spec_target_cpu_utilization_percentage{ID} 2"),
        ]
    );
}

#[test]
fn kind_is_only_lower_cased_in_snake_style() {
    let obj = json!({"kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
                     "status": {"currentReplicas": 1}});
    let snake = FlattenOptions {
        name_style: NameStyle::Snake,
        ..Default::default()
    };
    assert_eq!(
        lines_with(obj, &snake, None),
        [r#"k8s_horizontalpodautoscaler_status_current_replicas{name="h"} 1"#]
    );
}

#[test]
fn value_rules() {
    let obj = thing(json!({
        "int": 3, "float": 1.5, "neg": -2, "yes": true, "no": false, "nothing": null,
        "emptyObj": {}, "emptyArr": [],
        "numStr": "4", "expStr": "-3e2", "trueStr": "true",
        "ts": "2026-02-09T10:15:00Z", "tsFrac": "2026-02-09T10:15:00.5+01:00",
        "dateOnly": "2026-02-09", "goTime": "2026-02-09 10:15:00 +0000 UTC",
        "dur": "1h30m", "durMs": "250ms", "durMix": "5m0s",
        "scrapeInterval": "10m", "cpu": "100m", "memory": "20Gi", "big": "1.5k",
        "maxSurge": "25%", "image": "nginx:1.25", "message": "all good",
    }));
    assert_eq!(
        lines(obj),
        [
            l("k8s_thing_spec_big{ID} 1500"),
            l("k8s_thing_spec_cpu{ID} 0.1"),
            l("k8s_thing_spec_dur{ID} 5400"),
            l("k8s_thing_spec_durMix{ID} 300"),
            l("k8s_thing_spec_durMs{ID} 0.25"),
            l("k8s_thing_spec_expStr{ID} -300"),
            l("k8s_thing_spec_float{ID} 1.5"),
            l("k8s_thing_spec_int{ID} 3"),
            l("k8s_thing_spec_maxSurge_ratio{ID} 0.25"),
            l("k8s_thing_spec_memory{ID} 21474836480"),
            l("k8s_thing_spec_neg{ID} -2"),
            l("k8s_thing_spec_no{ID} 0"),
            l("k8s_thing_spec_numStr{ID} 4"),
            l("k8s_thing_spec_scrapeInterval{ID} 600"),
            l("k8s_thing_spec_ts{ID} 1770632100"),
            l("k8s_thing_spec_tsFrac{ID} 1770628500.5"),
            l("k8s_thing_spec_yes{ID} 1"),
        ]
    );
}

#[test]
fn enum_like_strings_become_state_sets() {
    let obj = thing(
        json!({"type": "ClusterIP", "phase": "Running", "host": "web-1",
                           "nested": {"mode": "Fast"}}),
    );
    assert_eq!(
        lines(obj.clone()),
        [
            l(r#"k8s_thing_spec_nested_mode{ID,mode="Fast"} 1"#),
            l(r#"k8s_thing_spec_phase{ID,phase="Running"} 1"#),
            l(r#"k8s_thing_spec_type{ID,type="ClusterIP"} 1"#),
        ]
    );
    let off = FlattenOptions {
        enum_heuristic: false,
        ..Default::default()
    };
    assert!(lines_with(obj.clone(), &off, None).is_empty());
    // --enum-path makes any string an enum, even with the heuristic off.
    let path = FlattenOptions {
        enum_heuristic: false,
        enum_paths: ["spec.host".to_string()].into(),
        ..Default::default()
    };
    assert_eq!(
        lines_with(obj, &path, None),
        [l(r#"k8s_thing_spec_host{ID,host="web-1"} 1"#)]
    );
}

fn schema_with(path: &[&str], leaf: SchemaNode) -> SchemaNode {
    let mut node = leaf;
    for key in path.iter().rev() {
        let mut parent = SchemaNode::default();
        parent.properties.insert(key.to_string(), node);
        node = parent;
    }
    node
}

#[test]
fn schema_enums_list_every_value_and_add_unlisted_current_values() {
    let phases = SchemaNode {
        enum_values: vec![
            "New".into(),
            "InProgress".into(),
            "Completed".into(),
            "Failed".into(),
        ],
        description: Some("Phase is the current state of the Backup.\nMore text.".into()),
        ..Default::default()
    };
    let schema = schema_with(&["status", "phase"], phases);
    let obj = json!({"kind": "Backup", "metadata": {"name": "b", "namespace": "ns"},
                     "status": {"phase": "Completed"}});
    let id = r#"namespace="ns",name="b""#;
    assert_eq!(
        lines_with(obj, &FlattenOptions::default(), Some(&schema)),
        [
            format!(r#"k8s_backup_status_phase{{{id},phase="New"}} 0"#),
            format!(r#"k8s_backup_status_phase{{{id},phase="InProgress"}} 0"#),
            format!(r#"k8s_backup_status_phase{{{id},phase="Completed"}} 1"#),
            format!(r#"k8s_backup_status_phase{{{id},phase="Failed"}} 0"#),
        ]
    );
    let obj = json!({"kind": "Backup", "metadata": {"name": "b", "namespace": "ns"},
                     "status": {"phase": "weird value"}});
    let out = lines_with(obj, &FlattenOptions::default(), Some(&schema));
    assert_eq!(out.len(), 5);
    assert_eq!(
        out[4],
        format!(r#"k8s_backup_status_phase{{{id},phase="weird value"}} 1"#)
    );
    // HELP comes from the description's first sentence.
    let obj = json!({"kind": "Backup", "metadata": {"name": "b"}, "status": {"phase": "New"}});
    let flat = flatten(
        &obj,
        &ResourceInfo::from_kind("Backup", "velero.io"),
        Some(&schema),
        &FlattenOptions::default(),
    )
    .unwrap();
    assert_eq!(
        flat.samples[0].help,
        "Phase is the current state of the Backup."
    );
    assert!(!flat.samples[0].capped);
}

#[test]
fn schema_format_turns_off_the_heuristic_and_selects_durations() {
    let mut spec = SchemaNode::default();
    spec.properties.insert(
        "data".into(),
        SchemaNode {
            format: Some("byte".into()),
            ..Default::default()
        },
    );
    spec.properties.insert(
        "every".into(),
        SchemaNode {
            format: Some("duration".into()),
            ..Default::default()
        },
    );
    spec.properties.insert(
        "size".into(),
        SchemaNode {
            format: Some("duration".into()),
            ..Default::default()
        },
    );
    let mut root = SchemaNode::default();
    root.properties.insert("spec".into(), spec);
    let obj = thing(json!({"data": "SGVsbG8", "every": "2m", "size": "3m", "other": "3m"}));
    assert_eq!(
        lines_with(obj, &FlattenOptions::default(), Some(&root)),
        [
            l("k8s_thing_spec_every{ID} 120"),
            l("k8s_thing_spec_other{ID} 0.003"),
            l("k8s_thing_spec_size{ID} 180"),
        ]
    );
}

#[test]
fn conditions_status_is_a_known_triple_at_any_depth() {
    let obj = thing(json!({"sub": {"conditions": [
        {"type": "Ready", "status": "False", "reason": "Waiting",
         "lastTransitionTime": "2026-02-09T10:15:00Z", "message": "not yet"},
        {"type": "Synced", "status": "Maybe"}
    ]}}));
    assert_eq!(
        lines(obj),
        [
            l(r#"k8s_thing_spec_sub_conditions_lastTransitionTime{ID,type="Ready"} 1770632100"#),
            l(r#"k8s_thing_spec_sub_conditions_reason{ID,type="Ready",reason="Waiting"} 1"#),
            l(r#"k8s_thing_spec_sub_conditions_status{ID,type="Ready",status="True"} 0"#),
            l(r#"k8s_thing_spec_sub_conditions_status{ID,type="Ready",status="False"} 1"#),
            l(r#"k8s_thing_spec_sub_conditions_status{ID,type="Ready",status="Unknown"} 0"#),
            l(r#"k8s_thing_spec_sub_conditions_status{ID,type="Synced",status="Maybe"} 1"#),
        ]
    );
}

#[test]
fn arrays_of_objects_by_name_then_type_then_index() {
    let obj = thing(json!({
        "containers": [{"name": "nginx", "restartCount": 2}, {"name": "side", "restartCount": 0}],
        "byType": [{"type": "A", "n": 1}, {"type": "B", "n": 2}],
        "dupNames": [{"name": "x", "n": 1}, {"name": "x", "n": 2}],
        "noKeys": [{"n": 5}, {"n": 6}],
        "numNames": [{"name": 7, "n": 1}],
    }));
    assert_eq!(
        lines(obj),
        [
            l(r#"k8s_thing_spec_byType_n{ID,type="A"} 1"#),
            l(r#"k8s_thing_spec_byType_n{ID,type="B"} 2"#),
            l(r#"k8s_thing_spec_containers_restartCount{ID,containers_name="nginx"} 2"#),
            l(r#"k8s_thing_spec_containers_restartCount{ID,containers_name="side"} 0"#),
            l(r#"k8s_thing_spec_dupNames_n{ID,dupNames_index="0"} 1"#),
            l(r#"k8s_thing_spec_dupNames_n{ID,dupNames_index="1"} 2"#),
            l(r#"k8s_thing_spec_noKeys_n{ID,noKeys_index="0"} 5"#),
            l(r#"k8s_thing_spec_noKeys_n{ID,noKeys_index="1"} 6"#),
            l(r#"k8s_thing_spec_numNames_n{ID,numNames_name="7"} 1"#),
        ]
    );
}

#[test]
fn nested_arrays_label_outermost_first_with_collision_prefixes() {
    let obj = thing(json!({"containers": [{"name": "c", "ports": [
        {"name": "http", "containerPort": 80, "protocol": "TCP"}]}],
        "matrix": [[1, 2], [3]]}));
    assert_eq!(
        lines(obj),
        [
            l(
                r#"k8s_thing_spec_containers_ports_containerPort{ID,containers_name="c",ports_name="http"} 80"#
            ),
            l(
                r#"k8s_thing_spec_containers_ports_protocol{ID,containers_name="c",ports_name="http",protocol="TCP"} 1"#
            ),
            l(r#"k8s_thing_spec_matrix{ID,matrix_index="0",matrix_matrix_index="0"} 1"#),
            l(r#"k8s_thing_spec_matrix{ID,matrix_index="0",matrix_matrix_index="1"} 2"#),
            l(r#"k8s_thing_spec_matrix{ID,matrix_index="1",matrix_matrix_index="0"} 3"#),
        ]
    );
}

#[test]
fn enum_label_collisions_use_the_enclosing_key_or_field_at_the_root() {
    let obj = json!({"kind": "Thing", "metadata": {"name": "t"}, "name": "Top",
                     "spec": {"name": "Foo", "namespace": "Bar"}});
    assert_eq!(
        lines(obj),
        [
            r#"k8s_thing_name{name="t",field_name="Top"} 1"#,
            r#"k8s_thing_spec_name{name="t",spec_name="Foo"} 1"#,
            r#"k8s_thing_spec_namespace{name="t",namespace="Bar"} 1"#,
        ]
    );
    // Inside an array element the enclosing key is the array's key.
    let obj =
        thing(json!({"items": [{"type": "A", "name": "Same"}, {"type": "B", "name": "Same"}]}));
    assert_eq!(
        lines(obj),
        [
            l(r#"k8s_thing_spec_items_name{ID,type="A",items_name="Same"} 1"#),
            l(r#"k8s_thing_spec_items_name{ID,type="B",items_name="Same"} 1"#),
        ]
    );
}

#[test]
fn arrays_of_strings_numbers_and_booleans() {
    let obj = thing(json!({
        "accessModes": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteOnce", "lower"],
        "sizes": ["1Gi", "nope", "10%"],
        "nums": [1.5, 2],
        "flags": [true, false, null],
    }));
    assert_eq!(
        lines(obj),
        [
            l(r#"k8s_thing_spec_accessModes{ID,accessModes="ReadWriteOnce"} 1"#),
            l(r#"k8s_thing_spec_accessModes{ID,accessModes="ReadOnlyMany"} 1"#),
            l(r#"k8s_thing_spec_flags{ID,flags_index="0"} 1"#),
            l(r#"k8s_thing_spec_flags{ID,flags_index="1"} 0"#),
            l(r#"k8s_thing_spec_nums{ID,nums_index="0"} 1.5"#),
            l(r#"k8s_thing_spec_nums{ID,nums_index="1"} 2"#),
            l(r#"k8s_thing_spec_sizes{ID,sizes_index="0"} 1073741824"#),
            l(r#"k8s_thing_spec_sizes_ratio{ID,sizes_index="2"} 0.1"#),
        ]
    );
}

#[test]
fn string_array_with_schema_enum_lists_every_value() {
    let items = SchemaNode {
        enum_values: vec![
            "ReadWriteOnce".into(),
            "ReadOnlyMany".into(),
            "ReadWriteMany".into(),
        ],
        ..Default::default()
    };
    let schema = schema_with(
        &["spec", "accessModes"],
        SchemaNode {
            items: Some(Box::new(items)),
            ..Default::default()
        },
    );
    let obj = thing(json!({"accessModes": ["ReadWriteMany", "other"]}));
    assert_eq!(
        lines_with(obj, &FlattenOptions::default(), Some(&schema)),
        [
            l(r#"k8s_thing_spec_accessModes{ID,accessModes="ReadWriteOnce"} 0"#),
            l(r#"k8s_thing_spec_accessModes{ID,accessModes="ReadOnlyMany"} 0"#),
            l(r#"k8s_thing_spec_accessModes{ID,accessModes="ReadWriteMany"} 1"#),
            l(r#"k8s_thing_spec_accessModes{ID,accessModes="other"} 1"#),
        ]
    );
}

#[test]
fn arrays_are_cut_at_the_cap_and_the_cut_is_counted() {
    let elems: Vec<Value> = (0..10)
        .map(|i| json!({"name": format!("e{i}"), "v": i}))
        .collect();
    let obj = thing(json!({"list": elems}));
    let opts = FlattenOptions {
        array_cap: 3,
        ..Default::default()
    };
    let res = ResourceInfo::from_kind("Thing", "");
    let flat = flatten(&obj, &res, None, &opts).unwrap();
    assert_eq!(flat.samples.len(), 3);
    assert_eq!(flat.dropped.array_cap, 7);
    // The cap applies before identification: names are distinct in the kept part.
    let obj = thing(json!({"list": [{"name": "a"}, {"name": "b"}, {"name": "a", "v": 1}]}));
    let opts = FlattenOptions {
        array_cap: 2,
        ..Default::default()
    };
    let obj2 = thing(
        json!({"list": [{"name": "a", "v": 1}, {"name": "b", "v": 2}, {"name": "a", "v": 3}]}),
    );
    assert!(lines_with(obj, &opts, None).is_empty());
    assert_eq!(
        lines_with(obj2, &opts, None),
        [
            l(r#"k8s_thing_spec_list_v{ID,list_name="a"} 1"#),
            l(r#"k8s_thing_spec_list_v{ID,list_name="b"} 2"#),
        ]
    );
}

#[test]
fn default_exclusions() {
    let obj = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "ns", "uid": "U", "resourceVersion": "5",
                     "generation": 1, "labels": {"Tier": "Front"}, "annotations": {"a": "1"},
                     "managedFields": [{"manager": "M", "time": "2026-02-09T10:15:00Z"}],
                     "ownerReferences": [{"kind": "Owner", "name": "o", "controller": true}],
                     "finalizers": ["Foo"], "selfLink": "x", "generateName": "c-"},
        "data": {"n": "5", "Mode": "On"}, "binaryData": {"x": "AAAA"}, "stringData": {"y": "1"},
        "spec": {"selector": {"matchLabels": {"app": "X"}},
                 "template": {"metadata": {"labels": {"Tier": "Back"}}},
                 "nodeSelector": {"Zone": "A"}, "labels": 3}
    });
    assert_eq!(
        lines(obj),
        [
            r#"k8s_configmap_metadata_generation{namespace="ns",name="c"} 1"#,
            r#"k8s_configmap_spec_labels{namespace="ns",name="c"} 3"#,
        ]
    );
}

#[test]
fn include_and_exclude_regexes_on_dotted_paths() {
    let obj = thing(json!({"a": {"x": 1, "y": 2}, "b": 3, "c": [{"name": "n", "v": 4}]}));
    let re = |v: &[&str]| v.iter().map(|s| Regex::new(s).unwrap()).collect::<Vec<_>>();
    let opts = FlattenOptions {
        include: re(&[r"^spec\.a$", r"c\[\]\.v"]),
        exclude: re(&[r"\.y$"]),
        ..Default::default()
    };
    assert_eq!(
        lines_with(obj.clone(), &opts, None),
        [
            l("k8s_thing_spec_a_x{ID} 1"),
            l(r#"k8s_thing_spec_c_v{ID,c_name="n"} 4"#),
        ]
    );
    // An include on a default-excluded node's own path lifts the exclusion.
    let obj = json!({"kind": "Thing", "metadata": {"name": "t", "labels": {"team": "Core"}}});
    let opts = FlattenOptions {
        include: re(&[r"^metadata\.labels$"]),
        ..Default::default()
    };
    assert_eq!(
        lines_with(obj.clone(), &opts, None),
        [r#"k8s_thing_metadata_labels_team{name="t",team="Core"} 1"#]
    );
    // ...but not when the include matches only a descendant, and exclude wins.
    let opts = FlattenOptions {
        include: re(&[r"^metadata\.labels\.team$"]),
        ..Default::default()
    };
    assert!(lines_with(obj.clone(), &opts, None).is_empty());
    let opts = FlattenOptions {
        include: re(&[r"^metadata\.labels$"]),
        exclude: re(&["labels"]),
        ..Default::default()
    };
    assert!(lines_with(obj, &opts, None).is_empty());
}

#[test]
fn label_and_annotation_allowlists_give_info_series() {
    let obj = json!({"kind": "Deployment", "metadata": {"name": "d", "namespace": "ns",
        "labels": {"app": "web", "team": "core", "app.kubernetes.io/name": "w", "tier": "x"},
        "annotations": {"owner": "me"}}});
    let opts = FlattenOptions {
        labels_allowlist: Allowlist::parse("deployments=[app,team,app.kubernetes.io/name]")
            .unwrap(),
        annotations_allowlist: Allowlist::parse("deployment=[*]").unwrap(),
        ..Default::default()
    };
    assert_eq!(
        lines_with(obj.clone(), &opts, None),
        [
            r#"k8s_deployment_labels{namespace="ns",name="d",label_app="web",label_app_kubernetes_io_name="w",label_team="core"} 1"#,
            r#"k8s_deployment_annotations{namespace="ns",name="d",annotation_owner="me"} 1"#,
        ]
    );
    let other = FlattenOptions {
        labels_allowlist: Allowlist::parse("pods=[*]").unwrap(),
        ..Default::default()
    };
    assert!(lines_with(obj, &other, None).is_empty());
}

#[test]
fn duplicate_series_keep_the_first_and_are_counted() {
    let obj = thing(json!({"a-b": 1, "a_b": 2, "x": "50%", "x_ratio": 0.7}));
    let res = ResourceInfo::from_kind("Thing", "");
    let flat = flatten(&obj, &res, None, &FlattenOptions::default()).unwrap();
    let got: Vec<(String, f64)> = flat
        .samples
        .iter()
        .map(|s| (s.name.clone(), s.value))
        .collect();
    assert_eq!(
        got,
        [
            ("k8s_thing_spec_a_b".to_string(), 1.0),
            ("k8s_thing_spec_x_ratio".to_string(), 0.5),
        ]
    );
    assert_eq!(flat.dropped.duplicate, 2);
}

#[test]
fn help_defaults_to_kind_and_dotted_path() {
    let obj = thing(json!({"list": [{"name": "a", "v": 1}], "modes": ["Fast"]}));
    let res = ResourceInfo::from_kind("Thing", "");
    let flat = flatten(&obj, &res, None, &FlattenOptions::default()).unwrap();
    let helps: Vec<&str> = flat.samples.iter().map(|s| s.help.as_str()).collect();
    assert_eq!(
        helps,
        ["Thing field spec.list[].v", "Thing field spec.modes[]"]
    );
    assert!(
        flat.samples[1].capped,
        "heuristic enums count against the enum cap"
    );
}

#[test]
fn objects_without_a_name_are_errors_and_deep_nesting_is_cut() {
    let res = ResourceInfo::from_kind("Thing", "");
    let o = FlattenOptions::default();
    assert_eq!(
        flatten(&json!([1]), &res, None, &o),
        Err(FlattenError::NotAnObject("an array"))
    );
    assert_eq!(
        flatten(&json!({"kind": "Thing"}), &res, None, &o),
        Err(FlattenError::MissingName)
    );
    assert_eq!(
        flatten(&json!({"metadata": {"name": ""}}), &res, None, &o),
        Err(FlattenError::MissingName)
    );
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!({ "d": deep });
    }
    let flat = flatten(&thing(deep), &res, None, &o).unwrap();
    assert!(flat.samples.is_empty());
    assert_eq!(flat.dropped.depth, 1);
}

#[test]
fn label_values_are_escaped() {
    let obj = json!({"kind": "Thing", "metadata": {"name": "we\"ird\\na\nme"}, "spec": {"n": 1}});
    assert_eq!(
        lines(obj),
        [r#"k8s_thing_spec_n{name="we\"ird\\na\nme"} 1"#]
    );
}
