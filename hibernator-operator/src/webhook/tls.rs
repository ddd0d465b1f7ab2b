//! TLS for the webhook server: the certificate and key come from mounted PEM
//! files and are reloaded when the files change (cert-manager rotation).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Problems loading the serving certificate.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file holds no usable PEM certificate or key.
    #[error("{path}: {message}")]
    Pem {
        /// File path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The key does not match the certificate or is not supported.
    #[error("certificate {cert} with key {key}: {source}")]
    Key {
        /// Certificate path.
        cert: PathBuf,
        /// Key path.
        key: PathBuf,
        /// The rustls error.
        #[source]
        source: rustls::Error,
    },
    /// The TLS configuration cannot be built.
    #[error("cannot configure TLS: {0}")]
    Config(#[source] rustls::Error),
}

/// The raw file contents a [`CertifiedKey`] was built from.
struct Loaded {
    cert_pem: Vec<u8>,
    key_pem: Vec<u8>,
    certified: Arc<CertifiedKey>,
}

/// A [`ResolvesServerCert`] that re-reads the certificate and key files at
/// every handshake and rebuilds the served key when their contents changed.
/// When the new files are unusable (e.g. caught half-written) the previous
/// certificate keeps being served and the problem is logged.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: Mutex<Loaded>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

impl ReloadingCert {
    /// Loads the files now (failing when they are unusable).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let certified = build(cert_path, key_path, &cert_pem, &key_pem, &provider)?;
        Ok(Self {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: Mutex::new(Loaded {
                cert_pem,
                key_pem,
                certified,
            }),
        })
    }

    /// The key to serve: reloaded when the files changed and are usable.
    fn current(&self) -> Arc<CertifiedKey> {
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        let files = read(&self.cert_path).and_then(|c| Ok((c, read(&self.key_path)?)));
        match files {
            Ok((cert_pem, key_pem))
                if cert_pem != current.cert_pem || key_pem != current.key_pem =>
            {
                match build(
                    &self.cert_path,
                    &self.key_path,
                    &cert_pem,
                    &key_pem,
                    &self.provider,
                ) {
                    Ok(certified) => {
                        tracing::info!(cert = %self.cert_path.display(), "serving certificate reloaded");
                        *current = Loaded {
                            cert_pem,
                            key_pem,
                            certified,
                        };
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "new serving certificate is unusable; keeping the previous one");
                    }
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot re-read the serving certificate; keeping the previous one")
            }
        }
        current.certified.clone()
    }

    /// A rustls server configuration (HTTP/1.1) serving this certificate.
    pub fn into_server_config(self) -> Result<rustls::ServerConfig, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(self));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

fn build(
    cert_path: &Path,
    key_path: &Path,
    cert_pem: &[u8],
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Pem {
            path: cert_path.to_path_buf(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Pem {
            path: cert_path.to_path_buf(),
            message: "no CERTIFICATE block".to_string(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Pem {
        path: key_path.to_path_buf(),
        message: e.to_string(),
    })?;
    CertifiedKey::from_der(certs, key, provider)
        .map(Arc::new)
        .map_err(|source| TlsError::Key {
            cert: cert_path.to_path_buf(),
            key: key_path.to_path_buf(),
            source,
        })
}
