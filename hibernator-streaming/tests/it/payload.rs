//! The webhook payload parsers never panic, whatever the bytes.

use hibernator_streaming::wire::payload::{parse_completion, parse_logs, parse_progress};
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        ".{0,20}".prop_map(serde_json::Value::from),
        prop_oneof![
            Just("executionId"),
            Just("message"),
            Just("progress"),
            Just("2026-02-01T20:05:30Z")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("executionId".to_string()),
                    Just("message".to_string()),
                    Just("level".to_string()),
                    Just("timestamp".to_string()),
                    Just("fields".to_string()),
                    Just("progress".to_string()),
                    Just("success".to_string()),
                    Just("durationSeconds".to_string()),
                    ".{0,8}",
                ],
                inner,
                0..7,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_logs(&bytes);
        let _ = parse_progress(&bytes);
        let _ = parse_completion(&bytes);
    }

    #[test]
    fn arbitrary_json_never_panics_and_accepted_logs_are_complete(value in json_value()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        if let Ok(logs) = parse_logs(&bytes) {
            prop_assert!(!logs.is_empty());
            prop_assert!(logs.iter().all(|l| !l.execution_id.is_empty()));
        }
        if let Ok(p) = parse_progress(&bytes) {
            prop_assert!(p.progress <= 100);
        }
        let _ = parse_completion(&bytes);
    }
}
