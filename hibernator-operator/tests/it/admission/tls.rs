//! The webhook over TLS: the serving certificate is reloaded when the mounted
//! files change.

use std::path::Path;
use std::sync::Arc;

use hibernator_operator::webhook::{ReloadingCert, router, serve};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;

/// A self-signed certificate for `localhost`: (cert PEM, key PEM, cert DER).
fn certificate() -> (String, String, CertificateDer<'static>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem(), cert.der().clone())
}

fn write(dir: &Path, cert: &str, key: &str) {
    // Write the key first, then the certificate, as a rotation would.
    std::fs::write(dir.join("tls.key"), key).unwrap();
    std::fs::write(dir.join("tls.crt"), cert).unwrap();
}

/// Connects trusting `trusted`, sends `GET /healthz`; returns the presented
/// certificate and the response.
async fn handshake(
    port: u16,
    trusted: &[CertificateDer<'static>],
) -> (CertificateDer<'static>, String) {
    let mut roots = rustls::RootCertStore::empty();
    for cert in trusted {
        roots.add(cert.clone()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    tls.read_to_string(&mut response).await.unwrap_or_default();
    (presented, response)
}

#[tokio::test]
async fn rotated_certificates_are_served_at_the_next_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let (cert1, key1, der1) = certificate();
    let (cert2, key2, der2) = certificate();
    write(dir.path(), &cert1, &key1);
    let tls = ReloadingCert::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key"))
        .unwrap()
        .into_server_config()
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(serve(listener, tls, router()));
    let trusted = [der1.clone(), der2.clone()];

    let (presented, response) = handshake(port, &trusted).await;
    assert_eq!(presented, der1);
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("ok"), "{response}");

    write(dir.path(), &cert2, &key2);
    let (presented, _) = handshake(port, &trusted).await;
    assert_eq!(presented, der2, "the rotated certificate is served");

    // A broken rotation keeps the last good certificate.
    std::fs::write(dir.path().join("tls.crt"), "garbage").unwrap();
    let (presented, _) = handshake(port, &trusted).await;
    assert_eq!(presented, der2);
    server.abort();
}

#[test]
fn unusable_files_fail_at_start_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = certificate();
    let (_, other_key, _) = certificate();
    let missing = ReloadingCert::load(&dir.path().join("nope.crt"), &dir.path().join("nope.key"))
        .unwrap_err();
    assert!(missing.to_string().contains("nope.crt"), "{missing}");
    write(dir.path(), &cert, &other_key);
    let mismatch =
        ReloadingCert::load(&dir.path().join("tls.crt"), &dir.path().join("tls.key")).unwrap_err();
    assert!(mismatch.to_string().contains("tls.crt"), "{mismatch}");
}
