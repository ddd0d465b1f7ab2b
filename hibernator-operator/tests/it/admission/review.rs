//! AdmissionReviews through the router, as the API server sends them.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use hibernator_operator::webhook::router;
use serde_json::{Value, json};
use tower::ServiceExt;

fn review(kind: &str, group: &str, operation: &str, object: Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": "v1alpha1", "kind": kind},
            "resource": {"group": group, "version": "v1alpha1", "resource": format!("{}s", kind.to_lowercase())},
            "name": object["metadata"]["name"],
            "namespace": "team-a",
            "operation": operation,
            "userInfo": {"username": "admin"},
            "object": object,
            "oldObject": null,
            "dryRun": false,
        }
    })
}

async fn post(body: Value) -> (StatusCode, Value) {
    let response = router()
        .oneshot(
            Request::post("/validate")
                .header("content-type", "application/json")
                .body(Body::from(body.to_string()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn plan(targets: Value, strategy: Value) -> Value {
    json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernatePlan",
        "metadata": {"name": "nightly", "namespace": "team-a"},
        "spec": {
            "schedule": {"timezone": "Europe/Berlin", "offHours": [
                {"start": "20:00", "end": "06:00", "daysOfWeek": ["MON", "TUE", "WED", "THU", "FRI"]},
            ]},
            "execution": {"strategy": strategy},
            "targets": targets,
        },
    })
}

fn ec2_target(name: &str) -> Value {
    json!({"name": name, "type": "ec2", "connectorRef": {"kind": "CloudProvider", "name": "aws"},
           "parameters": {"selector": {"tags": {"env": "dev"}}}})
}

#[tokio::test]
async fn valid_plan_is_allowed_with_the_request_uid() {
    let body = review(
        "HibernatePlan",
        "hibernator.dev",
        "CREATE",
        plan(json!([ec2_target("a")]), json!({"type": "Sequential"})),
    );
    let (status, out) = post(body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["kind"], "AdmissionReview");
    assert_eq!(out["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(
        out["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(out["response"]["allowed"], true, "{out}");
}

#[tokio::test]
async fn invalid_plan_is_denied_listing_every_error_with_its_field() {
    let object = plan(
        json!([ec2_target("a"), ec2_target("a"), {
            "name": "db", "type": "rds", "connectorRef": {"kind": "CloudProvider", "name": "aws"},
            "parameters": {"selector": {"instanceIds": ["x"]}, "bogus": 1},
        }]),
        json!({"type": "DAG", "dependencies": [{"from": "a", "to": "missing"}]}),
    );
    let (_, out) = post(review("HibernatePlan", "hibernator.dev", "UPDATE", object)).await;
    let response = &out["response"];
    assert_eq!(response["allowed"], false, "{out}");
    let message = response["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("HibernatePlan \"nightly\" is invalid"),
        "{message}"
    );
    assert!(message.contains("spec.targets[1].name"), "{message}");
    assert!(message.contains("missing"), "{message}");
    let count: usize = message
        .split(" is invalid (")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(count, 2, "{message}");
    assert_eq!(message.matches("; ").count() + 1, count, "{message}");
}

#[tokio::test]
async fn type_errors_name_their_field() {
    let mut object = plan(json!([ec2_target("a")]), json!({"type": "Sequential"}));
    object["spec"]["behavior"] = json!({"retries": "many"});
    let (_, out) = post(review("HibernatePlan", "hibernator.dev", "CREATE", object)).await;
    assert_eq!(out["response"]["allowed"], false);
    let message = out["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("spec.behavior.retries"), "{message}");
}

#[tokio::test]
async fn warnings_are_admission_warnings() {
    // A parallel plan without maxConcurrency is allowed; any warning the
    // validation emits comes back as an admission warning with its field.
    let object = plan(
        json!([ec2_target("a"), ec2_target("b")]),
        json!({"type": "Sequential", "maxConcurrency": 4}),
    );
    let (_, out) = post(review(
        "HibernatePlan",
        "hibernator.dev",
        "CREATE",
        object.clone(),
    ))
    .await;
    assert_eq!(out["response"]["allowed"], true, "{out}");
    let plan: hibernator_core::types::HibernatePlan = serde_json::from_value(object).unwrap();
    let expected = hibernator_core::validation::validate_plan(
        &plan,
        &hibernator_executors::ExecutorSet::new().catalog(),
    );
    assert!(
        !expected.warnings.is_empty(),
        "fixture must produce a warning"
    );
    let warnings: Vec<String> = out["response"]["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap().to_string())
        .collect();
    assert_eq!(warnings.len(), expected.warnings.len());
    for (w, d) in warnings.iter().zip(&expected.warnings) {
        assert!(w.starts_with(&d.field), "{w} / {d}");
        assert!(w.contains(&d.message), "{w} / {d}");
    }
}

#[tokio::test]
async fn connectors_and_exceptions_are_validated() {
    let provider = json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "CloudProvider",
        "metadata": {"name": "aws", "namespace": "team-a"},
        "spec": {"type": "aws", "aws": {"accountId": "12", "region": "eu-central-1"}},
    });
    let (_, out) = post(review(
        "CloudProvider",
        "hibernator.dev",
        "CREATE",
        provider,
    ))
    .await;
    assert_eq!(out["response"]["allowed"], false, "{out}");
    assert!(
        out["response"]["status"]["message"]
            .as_str()
            .unwrap()
            .contains("spec.aws.accountId")
    );

    let cluster = json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "K8SCluster",
        "metadata": {"name": "c", "namespace": "team-a"},
        "spec": {"k8s": {"inCluster": true}, "eks": {"name": "x", "region": "eu-central-1"}},
    });
    let (_, out) = post(review("K8SCluster", "hibernator.dev", "CREATE", cluster)).await;
    assert_eq!(out["response"]["allowed"], false, "{out}");

    let exception = json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "ScheduleException",
        "metadata": {"name": "e", "namespace": "team-a"},
        "spec": {"planRef": {"name": "nightly"}, "type": "suspend",
                 "validFrom": "2026-12-03T00:00:00Z", "validUntil": "2026-12-01T00:00:00Z"},
    });
    let (_, out) = post(review(
        "ScheduleException",
        "hibernator.dev",
        "CREATE",
        exception,
    ))
    .await;
    assert_eq!(out["response"]["allowed"], false, "{out}");
}

#[tokio::test]
async fn other_kinds_and_deletes_are_allowed_untouched() {
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}});
    let (_, out) = post(review("Pod", "", "CREATE", pod)).await;
    assert_eq!(out["response"]["allowed"], true);
    assert!(out["response"].get("warnings").is_none());

    let broken = plan(json!([]), json!({"type": "Nope"}));
    let (_, out) = post(review("HibernatePlan", "hibernator.dev", "DELETE", broken)).await;
    assert_eq!(out["response"]["allowed"], true);
}

#[tokio::test]
async fn malformed_reviews_are_rejected() {
    let (status, out) =
        post(json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(out["response"]["allowed"], false);
    let (status, _) = post(json!({"hello": 1})).await;
    assert!(status.is_client_error() || status == StatusCode::OK);
}

fn calendar(spec: Value) -> Value {
    json!({
        "apiVersion": "hibernator.dev/v1alpha1", "kind": "HolidayCalendar",
        "metadata": {"name": "company", "namespace": "team-a"},
        "spec": spec,
    })
}

#[tokio::test]
async fn holiday_calendars_are_checked_and_previewed() {
    // Bad input is denied, naming the fields.
    let (_, out) = post(review(
        "HolidayCalendar",
        "hibernator.dev",
        "CREATE",
        calendar(json!({
            "dates": ["2026-12-24", "24.12.2026"],
            "publicHolidays": [{"country": "DE", "subdivision": "ZZ"}],
        })),
    ))
    .await;
    assert_eq!(out["response"]["allowed"], false, "{out}");
    let message = out["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("spec.dates[1]"), "{message}");
    assert!(
        message.contains("spec.publicHolidays[0].subdivision"),
        "{message}"
    );

    // A good calendar is allowed; the warnings list its next days, and one
    // whose days end soon says so.
    let today = chrono::Utc::now().date_naive();
    let soon = today + chrono::Duration::days(3);
    let (_, out) = post(review(
        "HolidayCalendar",
        "hibernator.dev",
        "CREATE",
        calendar(json!({"dates": [soon.to_string()]})),
    ))
    .await;
    assert_eq!(out["response"]["allowed"], true, "{out}");
    let warnings = out["response"]["warnings"].to_string();
    assert!(warnings.contains(&soon.to_string()), "{warnings}");
    let covered_to_year_end = soon.format("%Y").to_string() + "-12-31";
    if (chrono::NaiveDate::parse_from_str(&covered_to_year_end, "%Y-%m-%d").unwrap() - today)
        .num_days()
        < 90
    {
        assert!(warnings.contains("covers"), "{warnings}");
    }
    // A list of past days covers nothing ahead: admission says so.
    let (_, out) = post(review(
        "HolidayCalendar",
        "hibernator.dev",
        "CREATE",
        calendar(json!({"dates": ["2020-05-01"]})),
    ))
    .await;
    assert_eq!(out["response"]["allowed"], true, "{out}");
    let warnings = out["response"]["warnings"].to_string();
    assert!(
        warnings.contains("covers 2020-01-01 to 2020-12-31 only"),
        "{warnings}"
    );
}

#[tokio::test]
async fn notifications_are_validated_naming_the_template_field() {
    let notification = |template: &str| {
        json!({
            "apiVersion": "hibernator.dev/v1alpha1", "kind": "HibernateNotification",
            "metadata": {"name": "ops", "namespace": "team-a"},
            "spec": {
                "selector": {"planSelector": {}},
                "sinks": [
                    {"name": "chat", "type": "Slack", "urlSecretRef": {"name": "s", "key": "url"}},
                    {"name": "hook", "type": "Webhook", "urlSecretRef": {"name": "s", "key": "url"},
                     "signingSecretRef": {"name": "s", "key": "key"}, "template": template},
                ],
            },
        })
    };
    let (_, out) = post(review(
        "HibernateNotification",
        "hibernator.dev",
        "CREATE",
        notification(r#"{"plan": {{ plan|tojson }}}"#),
    ))
    .await;
    assert_eq!(out["response"]["allowed"], true, "{out}");
    for (template, says) in [
        ("{\"plan\": {{ plan ", "syntax"),
        ("plan {{ plan }}", "not JSON"),
    ] {
        let (_, out) = post(review(
            "HibernateNotification",
            "hibernator.dev",
            "UPDATE",
            notification(template),
        ))
        .await;
        assert_eq!(out["response"]["allowed"], false, "{out}");
        let message = out["response"]["status"]["message"].as_str().unwrap();
        assert!(message.contains("spec.sinks[1].template"), "{message}");
        assert!(message.contains(says), "{message}");
    }
    // a Webhook sink without a signing key
    let mut unsigned = notification("{}");
    unsigned["spec"]["sinks"][1]
        .as_object_mut()
        .unwrap()
        .remove("signingSecretRef");
    let (_, out) = post(review(
        "HibernateNotification",
        "hibernator.dev",
        "CREATE",
        unsigned,
    ))
    .await;
    let message = out["response"]["status"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.sinks[1].signingSecretRef"),
        "{message}"
    );
}
