//! The gRPC listener. It accepts TCP connections and, when TLS is on, does
//! the TLS handshake itself (rustls) instead of leaving it to tonic, so that
//! a connection from the pod's own loopback (`kubectl port-forward` arrives
//! there) may also speak plaintext: `grpcurl -plaintext localhost:50051 …`
//! then works through a port-forward whatever the TLS setting. A connection
//! is taken as TLS when its first byte is a TLS handshake record (`0x16`);
//! plaintext from any other peer is closed, as a TLS-only server would.
//!
//! Every connection reports its peer as tonic's [`TcpConnectInfo`], so
//! `Request::remote_addr()` works for plaintext and TLS alike.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::ServerError;

/// How long a client may take to send its first byte and finish the TLS
/// handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// First byte of a TLS record carrying a handshake message (ClientHello).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// Whether `addr` is where `kubectl port-forward` connects from: the pod's
/// `localhost`, `127.0.0.1` or `::1` (also as an IPv4-mapped IPv6 address,
/// which a dual-stack listener reports). Other `127.0.0.0/8` addresses are
/// not: service-mesh sidecars (Istio's `127.0.0.6`) relay remote peers from
/// there.
pub fn is_loopback_peer(addr: &SocketAddr) -> bool {
    match addr.ip().to_canonical() {
        IpAddr::V4(ip) => ip == std::net::Ipv4Addr::LOCALHOST,
        IpAddr::V6(ip) => ip == std::net::Ipv6Addr::LOCALHOST,
    }
}

/// An accepted connection: plaintext or TLS.
pub enum Conn {
    /// Plaintext (TLS off, or a loopback peer that did not start TLS).
    Plain(TcpStream, TcpConnectInfo),
    /// After a completed TLS handshake.
    Tls(Box<TlsStream<TcpStream>>, TcpConnectInfo),
}

impl Connected for Conn {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        match self {
            Self::Plain(_, info) | Self::Tls(_, info) => info.clone(),
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s, _) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s, _) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s, _) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s, _) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s, _) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s, _) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s, _) => s.is_write_vectored(),
            Self::Tls(s, _) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s, _) => Pin::new(s).poll_flush(cx),
            Self::Tls(s, _) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s, _) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s, _) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The TLS side of the listener.
#[derive(Clone)]
pub struct ListenerTls {
    acceptor: TlsAcceptor,
}

impl ListenerTls {
    /// A server configuration from PEM contents: the certificate chain and
    /// key, and when given the CA whose client certificates are required.
    /// Offers ALPN `h2` (gRPC).
    pub fn from_pem(
        cert: &[u8],
        key: &[u8],
        client_ca: Option<&[u8]>,
    ) -> Result<Self, ServerError> {
        let tls = |message: String| ServerError::Tls { message };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<_, _>>()
            .map_err(|e| tls(format!("certPath: {e}")))?;
        if chain.is_empty() {
            return Err(tls("certPath holds no PEM CERTIFICATE".into()));
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| tls(format!("keyPath: {e}")))?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls(e.to_string()))?;
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem) {
                    let cert = cert.map_err(|e| tls(format!("clientCaPath: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| tls(format!("clientCaPath: {e}")))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| tls(format!("clientCaPath: {e}")))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(chain, key)
            .map_err(|e| tls(format!("certPath/keyPath: {e}")))?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Accepts connections on `listener` until the returned stream is dropped.
/// With `tls`, connections are TLS, except that loopback peers may speak
/// plaintext when `local_plaintext` is set.
pub fn incoming(
    listener: TcpListener,
    tls: Option<ListenerTls>,
    local_plaintext: bool,
) -> ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                () = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    let tx = tx.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        if let Some(conn) = establish(stream, peer, tls, local_plaintext).await {
                            let _ = tx.send(Ok(conn)).await;
                        }
                    });
                }
                Err(error) => {
                    // Out of file descriptors and the like: do not spin.
                    tracing::warn!(%error, "gRPC listener: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    ReceiverStream::new(rx)
}

async fn establish(
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<ListenerTls>,
    local_plaintext: bool,
) -> Option<Conn> {
    let _ = stream.set_nodelay(true);
    let info = TcpConnectInfo {
        local_addr: stream.local_addr().ok(),
        remote_addr: Some(peer),
    };
    let Some(tls) = tls else {
        return Some(Conn::Plain(stream, info));
    };
    if local_plaintext && is_loopback_peer(&peer) && !starts_tls(&stream).await {
        return Some(Conn::Plain(stream, info));
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(Conn::Tls(Box::new(stream), info)),
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "gRPC TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!(%peer, "gRPC TLS handshake timed out");
            None
        }
    }
}

/// Whether the client's first byte opens a TLS handshake (also when it
/// sends nothing in time: the TLS handshake then times out as usual).
async fn starts_tls(stream: &TcpStream) -> bool {
    let mut first = [0u8; 1];
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.peek(&mut first)).await {
        Ok(Ok(1)) => first[0] == TLS_HANDSHAKE_RECORD,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_peers_include_mapped_addresses() {
        for addr in ["127.0.0.1:1", "[::1]:1", "[::ffff:127.0.0.1]:1"] {
            assert!(is_loopback_peer(&addr.parse().unwrap()), "{addr}");
        }
        // 127.0.0.6: Istio's inbound passthrough source, a remote peer.
        for addr in [
            "10.0.0.5:1",
            "[fd00::2]:1",
            "[::ffff:10.0.0.5]:1",
            "0.0.0.0:1",
            "127.0.0.6:1",
        ] {
            assert!(!is_loopback_peer(&addr.parse().unwrap()), "{addr}");
        }
    }
}
