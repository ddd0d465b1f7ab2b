//! The API server's HTTPS side: a per-server CA and serving certificate
//! (valid for `127.0.0.1`, `localhost` and the in-cluster names), and the
//! TLS accept loop, so that clients with in-cluster config
//! (`KUBERNETES_SERVICE_HOST`/`PORT` plus `ca.crt`) reach the same router as
//! plain-HTTP test clients.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::error::ApiServerError;

/// Names the serving certificate is valid for (as a real API server's is:
/// its Service names and the loopback address tests dial).
const SERVING_NAMES: &[&str] = &[
    "127.0.0.1",
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
];

/// A CA (its PEM goes into the pods' `ca.crt`) and the serving config.
pub(crate) struct ServingCert {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The server's rustls configuration (HTTP/1.1).
    pub config: rustls::ServerConfig,
}

fn tls_error(message: impl std::fmt::Display) -> ApiServerError {
    ApiServerError::Tls(message.to_string())
}

/// Generates a fresh CA and a serving certificate signed by it.
pub(crate) fn serving_cert() -> Result<ServingCert, ApiServerError> {
    let ca_key = rcgen::KeyPair::generate().map_err(tls_error)?;
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls_error)?;
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "testkit-ca");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).map_err(tls_error)?;

    let key = rcgen::KeyPair::generate().map_err(tls_error)?;
    let mut params = rcgen::CertificateParams::new(
        SERVING_NAMES
            .iter()
            .map(|n| (*n).to_string())
            .collect::<Vec<_>>(),
    )
    .map_err(tls_error)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "kube-apiserver");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let cert = params.signed_by(&key, &ca).map_err(tls_error)?;

    let chain = vec![CertificateDer::from(cert.der().to_vec())];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(tls_error)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServingCert {
        ca_pem: ca.pem(),
        config,
    })
}

/// Serves `app` over TLS on `listener` until the task is aborted.
pub(crate) async fn serve(listener: TcpListener, config: rustls::ServerConfig, app: Router) {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(error = %e, "testkit API server: accept failed");
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(connection(acceptor, stream, peer, app));
    }
}

async fn connection(
    acceptor: TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
) {
    let tls = match acceptor.accept(stream).await {
        Ok(tls) => tls,
        Err(e) => {
            tracing::debug!(%peer, error = %e, "testkit API server: TLS handshake failed");
            return;
        }
    };
    let service = TowerToHyperService::new(app);
    if let Err(e) = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), service)
        .await
    {
        tracing::debug!(%peer, error = %e, "testkit API server: connection ended with an error");
    }
}
