//! The demo binary as a process: the preview without an emulator, and the
//! whole demo against a moto server (what `bash scripts/demo.sh` runs).

#![allow(clippy::unwrap_used)]

use std::process::Command;

use hibernator_testkit::moto::MotoServer;

const BIN: &str = env!("CARGO_BIN_EXE_hibernator-demo");

#[test]
fn preview_runs_on_the_embedded_plan() {
    let out = Command::new(BIN)
        .args(["--at", "2026-11-23T12:00:00+01:00"])
        .env_remove("HIBERNATOR_DEMO_ENDPOINT")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("valid: 4 targets"), "{stdout}");
    assert!(stdout.contains("shutdown plan, strategy DAG"), "{stdout}");
    assert!(stdout.contains("run `bash scripts/demo.sh`"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hibernates_and_wakes_the_estate_exactly_as_it_was() {
    let moto = MotoServer::start().await.unwrap();
    let out = tokio::process::Command::new(BIN)
        .args(["--endpoint", moto.endpoint()])
        .env("AWS_ACCESS_KEY_ID", "demo")
        .env("AWS_SECRET_ACCESS_KEY", "demo")
        .env("AWS_REGION", "eu-central-1")
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("every resource is back exactly as it was"),
        "{stdout}"
    );
}

#[test]
fn refuses_an_endpoint_that_is_not_on_this_machine() {
    let out = Command::new(BIN)
        .args(["--endpoint", "https://ec2.eu-central-1.amazonaws.com"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("not a loopback address"), "{stderr}");
}
