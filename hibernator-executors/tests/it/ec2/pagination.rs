//! `DescribeInstances` pagination against a tiny paginating endpoint (moto
//! ignores `MaxResults` and never returns a `NextToken`).

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use serde_json::json;

use super::client;

/// A minimal EC2 endpoint serving two `DescribeInstances` pages linked by a
/// `NextToken` (moto never paginates); returns its URL and the request bodies.
async fn paginating_endpoint() -> (String, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = stream.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + length {
                        break Some(text[end + 4..end + 4 + length].to_string());
                    }
                }
            };
            let Some(body) = body else { continue };
            let second = body.contains("NextToken=page-2");
            seen.lock().unwrap().push(body);
            let (id, token) = if second {
                ("i-00000002", "")
            } else {
                ("i-00000001", "<nextToken>page-2</nextToken>")
            };
            let xml = format!(
                "<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
                 <requestId>r</requestId><reservationSet><item><reservationId>r-1</reservationId>\
                 <instancesSet><item><instanceId>{id}</instanceId><instanceState><code>16</code>\
                 <name>running</name></instanceState></item></instancesSet></item></reservationSet>\
                 {token}</DescribeInstancesResponse>"
            );
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{xml}",
                xml.len()
            );
            stream.write_all(response.as_bytes()).await.unwrap();
            let _ = stream.shutdown().await;
        }
    });
    (url, bodies)
}

#[tokio::test]
async fn describe_follows_next_tokens_with_max_results() {
    use hibernator_executors::aws::ec2::describe::{LIVE_STATES, describe_all, selector_queries};
    let (url, bodies) = paginating_endpoint().await;
    let client = client(&url).await;
    let params: hibernator_executors::ec2::Parameters =
        serde_json::from_value(json!({"selector": {"tags": {"env": "dev"}}})).unwrap();
    let instances = describe_all(&client, selector_queries(&params.selector, &LIVE_STATES))
        .await
        .unwrap();
    let ids: Vec<_> = instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["i-00000001", "i-00000002"]);
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    for body in &bodies {
        assert!(body.contains("MaxResults=1000"), "{body}");
        assert!(body.contains("Filter.1.Name=tag%3Aenv"), "{body}");
        assert!(body.contains("Filter.2.Name=instance-state-name"), "{body}");
    }
    assert!(!bodies[0].contains("NextToken"));
    assert!(bodies[1].contains("NextToken=page-2"));
}
