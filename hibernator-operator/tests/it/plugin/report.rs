//! `report`: the monthly accounting in status, live open intervals, the
//! price table, and the three output formats.

use std::collections::BTreeMap;

use hibernator_operator::plugin::PluginError;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::{ObjectMeta, PostParams};
use serde_json::json;

use super::Env;

/// November 2026 (Europe/Berlin) closed, December open with one target
/// hibernated since 2026-12-01T19:00Z, accounted until 20:00Z.
fn accounting() -> serde_json::Value {
    json!({
        "accountedUntil": "2026-12-01T20:00:00Z",
        "timezone": "Europe/Berlin",
        "hibernated": [
            {"target": "batch-workers", "type": "ec2", "since": "2026-12-01T19:00:00Z",
             "resources": 4, "classes": {"ec2.m5.large": 2, "ec2.c5.xlarge": 2}}
        ],
        "months": [
            {"month": "2026-12", "scheduledSeconds": 3600, "hibernatedSeconds": 0,
             "coveredSeconds": 0, "reEnforcements": 0,
             "targets": [{"target": "batch-workers", "type": "ec2", "hibernatedSeconds": 3600,
                          "resources": 4,
                          "resourceSeconds": {"ec2.m5.large": 7200, "ec2.c5.xlarge": 7200}}]},
            {"month": "2026-11", "scheduledSeconds": 360000, "hibernatedSeconds": 324000,
             "coveredSeconds": 316800, "reEnforcements": 3,
             "targets": [
                {"target": "app-nodes", "type": "eks", "hibernatedSeconds": 324000, "resources": 2,
                 "resourceSeconds": {"unclassified": 648000}},
                {"target": "batch-workers", "type": "ec2", "hibernatedSeconds": 330000, "resources": 4,
                 "resourceSeconds": {"ec2.m5.large": 720000, "ec2.c5.xlarge": 600000}},
                {"target": "orders-db", "type": "rds", "hibernatedSeconds": 324000, "resources": 1,
                 "resourceSeconds": {"rds.db.r6g.large": 324000}},
                {"target": "analytics-db", "type": "rds", "hibernatedSeconds": 324000, "resources": 1,
                 "resourceSeconds": {"rds.db.t4g.medium": 324000}}
             ]}
        ]
    })
}

async fn prices(env: &Env, name: &str, data: &[(&str, &str)]) {
    let data: BTreeMap<String, String> = data
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect();
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(env.tc.client(), env.ns())
        .create(&PostParams::default(), &cm)
        .await
        .unwrap();
}

#[tokio::test]
async fn report_shows_coverage_re_enforcements_and_savings() {
    let env = Env::start("plugin-report").await;
    env.create_plan("alpha").await;
    env.create_plan("beta").await;
    env.set_status(
        "alpha",
        json!({"phase": "Hibernated", "accounting": accounting()}),
    )
    .await;
    prices(
        &env,
        "prices",
        &[
            ("ec2.m5.large", "0.096"),
            ("ec2.c5.xlarge", "0.17"),
            ("rds.db.r6g.large", "0.26"),
        ],
    )
    .await;
    let november = [
        "report",
        "--month",
        "2026-11",
        "--as-of",
        "2026-12-02T00:00:00Z",
        "--prices",
        "prices",
    ];

    let mut args = november.to_vec();
    args.extend(["-o", "json"]);
    let report = env.json(&args).await;
    assert_eq!(report["asOf"], "2026-12-02T00:00:00Z");
    let plans = report["plans"].as_array().unwrap();
    assert_eq!(plans.len(), 2);
    let alpha = &plans[0];
    assert_eq!(alpha["plan"], "alpha");
    assert_eq!(alpha["month"], "2026-11");
    assert_eq!(alpha["timezone"], "Europe/Berlin");
    assert_eq!(alpha["scheduledSeconds"], 360000);
    assert_eq!(alpha["hibernatedSeconds"], 324000);
    assert_eq!(alpha["coverage"], 0.88);
    assert_eq!(alpha["reEnforcements"], 3);
    // analytics-db's class has no price: the plan's total is unknown
    assert_eq!(alpha["estimatedSavings"]["amount"], serde_json::Value::Null);
    assert_eq!(
        alpha["estimatedSavings"]["unpricedClasses"],
        json!(["rds.db.t4g.medium", "unclassified"])
    );
    let targets = alpha["targets"].as_array().unwrap();
    let names: Vec<&str> = targets
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["app-nodes", "batch-workers", "orders-db", "analytics-db"]
    );
    // 200 h × 0.096 + 166.67 h × 0.17
    assert_eq!(targets[1]["estimatedSavings"]["amount"], 47.53);
    assert_eq!(targets[1]["hibernatedNow"], true);
    assert_eq!(targets[2]["estimatedSavings"]["amount"], 23.4);
    assert_eq!(
        targets[3]["estimatedSavings"]["amount"],
        serde_json::Value::Null
    );
    assert_eq!(plans[1]["plan"], "beta");
    assert_eq!(plans[1]["accounted"], false);
    assert_eq!(
        plans[1]["targets"][0]["hibernatedSeconds"],
        serde_json::Value::Null
    );

    // December: the open interval is added live (19:00Z → as-of)
    let dec = env
        .json(&[
            "report",
            "--month",
            "2026-12",
            "--as-of",
            "2026-12-02T00:00:00Z",
            "-o",
            "json",
        ])
        .await;
    let alpha = &dec["plans"][0];
    assert_eq!(alpha["targets"][1]["hibernatedSeconds"], 5 * 3600);
    // Tue 21:00 → Wed 01:00 Berlin is off-hours: 1 h stored + 4 h live
    assert_eq!(alpha["scheduledSeconds"], 5 * 3600);
    assert_eq!(alpha["estimatedSavings"], serde_json::Value::Null);

    // -A: every namespace (other tests' plans too); ours are there, sorted
    let all = env
        .json(&[
            "report",
            "-A",
            "--month",
            "2026-11",
            "--as-of",
            "2026-12-02T00:00:00Z",
            "-o",
            "json",
        ])
        .await;
    let ours: Vec<&serde_json::Value> = all["plans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["namespace"] == env.ns())
        .collect();
    assert_eq!(ours.len(), 2, "{all}");
    assert_eq!(ours[0]["plan"], "alpha");
    assert_eq!(ours[0]["coverage"], 0.88);
    assert_eq!(all["prices"], serde_json::Value::Null);

    let mut args = november.to_vec();
    args.extend(["-o", "csv"]);
    let csv = env.run(&args).await;
    let ns = env.ns();
    let expected = format!(
        "namespace,plan,target,type,month,scheduled_hours,hibernated_hours,coverage_percent,re_enforcements,resources,estimated_savings_usd,unpriced_classes
{ns},alpha,,,2026-11,100.00,90.00,88.0,3,8,,rds.db.t4g.medium unclassified
{ns},alpha,app-nodes,eks,2026-11,,90.00,,,2,,unclassified
{ns},alpha,batch-workers,ec2,2026-11,,91.67,,,4,47.53,
{ns},alpha,orders-db,rds,2026-11,,90.00,,,1,23.40,
{ns},alpha,analytics-db,rds,2026-11,,90.00,,,1,,rds.db.t4g.medium
{ns},beta,,,2026-11,,,,,0,,
{ns},beta,app-nodes,eks,2026-11,,,,,0,,
{ns},beta,batch-workers,ec2,2026-11,,,,,0,,
{ns},beta,orders-db,rds,2026-11,,,,,0,,
{ns},beta,analytics-db,rds,2026-11,,,,,0,,
"
    );
    assert_eq!(csv, expected);

    let table = env.run(&november).await;
    for needle in [
        "100.00",
        "88.0%",
        "$47.53",
        "$23.40",
        "unknown (no price for rds.db.t4g.medium)",
        "batch-workers (ec2) *",
        "not accounted yet",
    ] {
        assert!(table.contains(needle), "missing {needle:?} in\n{table}");
    }
    println!("{table}");
}

#[tokio::test]
async fn report_rejects_bad_prices_and_months_naming_them() {
    let env = Env::start("plugin-report-bad").await;
    env.create_plan("alpha").await;
    prices(&env, "prices", &[("ec2.m5.large", "0,096")]).await;
    let error = env
        .try_run(&["report", "--prices", "prices"])
        .await
        .unwrap_err();
    assert!(matches!(error, PluginError::InvalidPrice { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.contains("ec2.m5.large") && text.contains("0,096"),
        "{text}"
    );
    let error = env
        .try_run(&["report", "--prices", "missing"])
        .await
        .unwrap_err();
    assert!(matches!(error, PluginError::NotFound { .. }), "{error}");
    let error = env
        .try_run(&["report", "--month", "2026-13"])
        .await
        .unwrap_err();
    assert!(error.to_string().contains("--month \"2026-13\""), "{error}");
}
