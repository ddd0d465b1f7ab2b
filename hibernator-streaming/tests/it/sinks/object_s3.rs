//! Object storage sink on S3 (moto server).

use std::sync::Arc;

use hibernator_streaming::sink::object::store_from_config;
use hibernator_streaming::sink::{
    BackendKind, LogSink, ObjectStoreSink, PersistenceConfig, S3Config,
};
use hibernator_testkit::moto::MotoServer;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::sinks::common::{at, record};

const BUCKET: &str = "hibernator-execution-logs";

fn env(name: &str) -> Option<String> {
    match name {
        "AWS_ACCESS_KEY_ID" => Some("AKIAIOSFODNN7EXAMPLE".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_string()),
        _ => None,
    }
}

async fn s3(moto: &MotoServer) -> (PersistenceConfig, Arc<dyn ObjectStore>) {
    let created = reqwest::Client::new()
        .put(format!("{}/{BUCKET}", moto.endpoint()))
        .send()
        .await
        .unwrap();
    assert!(
        created.status().is_success(),
        "create bucket: {}",
        created.status()
    );
    let config = PersistenceConfig {
        enabled: true,
        backend: BackendKind::S3,
        s3: Some(S3Config {
            bucket: BUCKET.to_string(),
            prefix: "hibernation/".to_string(),
            retention: Some(90),
            region: Some("eu-west-1".to_string()),
            endpoint: Some(moto.endpoint().to_string()),
            allow_http: true,
            conditional_writes: None,
        }),
        ..PersistenceConfig::default()
    };
    let store = store_from_config(&config, &env).unwrap();
    (config, store)
}

async fn content(store: &Arc<dyn ObjectStore>, key: &str) -> String {
    let bytes = store
        .get(&Path::from(key))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn persists_batches_to_s3_and_applies_retention() {
    let moto = MotoServer::start().await.unwrap();
    let (config, store) = s3(&moto).await;
    let sink = ObjectStoreSink::new(store.clone(), config.to_options().unwrap());
    sink.write_batch(&[
        record("exec-123", at(2026, 2, 1, 20, 5, 0), "Execution started"),
        record(
            "exec-123",
            at(2026, 2, 1, 20, 5, 35),
            "Execution completed successfully",
        ),
    ])
    .await
    .unwrap();
    sink.flush().await.unwrap();
    sink.write_batch(&[record("exec-123", at(2026, 2, 1, 20, 6, 0), "Job finished")])
        .await
        .unwrap();
    sink.flush().await.unwrap();
    let key = "hibernation/2026-02-01/prod-offhours-ec2-exec-123.log";
    assert_eq!(
        content(&store, key).await,
        "2026-02-01T20:05:00Z [INFO] Execution started\n\
         2026-02-01T20:05:35Z [INFO] Execution completed successfully\n\
         2026-02-01T20:06:00Z [INFO] Job finished\n"
    );

    store
        .put(
            &Path::from("hibernation/2025-10-01/old-plan-ec2-exec-1.log"),
            PutPayload::from_static(b"old\n"),
        )
        .await
        .unwrap();
    let deleted = sink.apply_retention(at(2026, 2, 2, 0, 0, 0)).await.unwrap();
    assert_eq!(deleted, 1);
    assert!(
        store
            .head(&Path::from(
                "hibernation/2025-10-01/old-plan-ec2-exec-1.log"
            ))
            .await
            .is_err()
    );
    assert!(store.head(&Path::from(key)).await.is_ok());
}

#[tokio::test]
async fn a_missing_bucket_is_a_transient_error_and_keeps_the_lines() {
    let moto = MotoServer::start().await.unwrap();
    let config = PersistenceConfig {
        enabled: true,
        backend: BackendKind::S3,
        s3: Some(S3Config {
            bucket: "no-such-bucket".to_string(),
            prefix: String::new(),
            retention: None,
            region: None,
            endpoint: Some(moto.endpoint().to_string()),
            allow_http: true,
            conditional_writes: None,
        }),
        ..PersistenceConfig::default()
    };
    let store = store_from_config(&config, &env).unwrap();
    let sink = ObjectStoreSink::new(store.clone(), config.to_options().unwrap());
    sink.write_batch(&[record("exec-1", at(2026, 2, 1, 20, 0, 0), "kept")])
        .await
        .unwrap();
    let error = sink.flush().await.unwrap_err();
    assert!(!error.to_string().contains("wJalrXUtnFEMI"), "{error}");
    // Once the bucket exists the pending line is written.
    reqwest::Client::new()
        .put(format!("{}/no-such-bucket", moto.endpoint()))
        .send()
        .await
        .unwrap();
    sink.flush().await.unwrap();
    assert_eq!(
        content(&store, "2026-02-01/prod-offhours-ec2-exec-1.log").await,
        "2026-02-01T20:00:00Z [INFO] kept\n"
    );
}

#[tokio::test]
async fn two_replicas_writing_one_execution_on_s3_lose_nothing() {
    let moto = MotoServer::start().await.unwrap();
    let (config, store) = s3(&moto).await;
    let a = ObjectStoreSink::new(store.clone(), config.to_options().unwrap());
    let b = ObjectStoreSink::new(store.clone(), config.to_options().unwrap());
    for i in 0..6u32 {
        let sink = if i % 2 == 0 { &a } else { &b };
        sink.write_batch(&[record(
            "exec-9",
            at(2026, 2, 1, 20, 0, i),
            &format!("line {i}"),
        )])
        .await
        .unwrap();
        sink.flush().await.unwrap();
    }
    let text = content(
        &store,
        "hibernation/2026-02-01/prod-offhours-ec2-exec-9.log",
    )
    .await;
    let messages: Vec<&str> = text
        .lines()
        .map(|l| l.split("[INFO] ").nth(1).unwrap())
        .collect();
    assert_eq!(
        messages,
        vec!["line 0", "line 1", "line 2", "line 3", "line 4", "line 5"]
    );
}
