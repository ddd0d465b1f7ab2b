//! The CA bundle runners trust for gRPC TLS: read and checked on the
//! controller (`streaming.grpc.tls.caPath`), passed to runner Jobs inline
//! (`HIBERNATOR_GRPC_TLS_CA_PEM`) and checked again by the runner.

use std::path::Path;

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::ConfigError;

/// Checks that `pem` holds at least one PEM `CERTIFICATE` block and that
/// every such block is a certificate usable as a trust anchor; returns how
/// many there are. Other PEM sections (e.g. a key) are ignored.
pub fn check_ca_pem(pem: &[u8]) -> Result<usize, String> {
    let mut roots = RootCertStore::empty();
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        count += 1;
        let cert = cert.map_err(|e| format!("certificate {count} is not valid PEM: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("certificate {count} cannot be a trust root: {e}"))?;
    }
    if count == 0 {
        return Err("no PEM CERTIFICATE block".to_string());
    }
    Ok(count)
}

/// Largest CA bundle passed to runner Jobs: it travels as one environment
/// variable in every Job spec (Linux refuses a single string over 128 KiB at
/// `exec`).
pub const MAX_RUNNER_CA_BYTES: usize = 64 * 1024;

/// Reads the CA bundle runners must trust and checks it with
/// [`check_ca_pem`] (at most [`MAX_RUNNER_CA_BYTES`]); errors name
/// `streaming.grpc.tls.caPath` and the file.
pub fn read_runner_ca(path: &Path) -> Result<String, ConfigError> {
    let error = |message: String| ConfigError::RunnerCa {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| error(format!("cannot be read: {e}")))?;
    if bytes.len() > MAX_RUNNER_CA_BYTES {
        return Err(error(format!(
            "is {} bytes; runners get it in an environment variable, at most {MAX_RUNNER_CA_BYTES} \
             bytes: point caPath at just the CA that signed the gRPC certificate",
            bytes.len()
        )));
    }
    check_ca_pem(&bytes).map_err(error)?;
    String::from_utf8(bytes).map_err(|_| error("is not UTF-8 text".to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn counts_certificates_and_ignores_other_sections() {
        let one = ca_pem();
        assert_eq!(check_ca_pem(one.as_bytes()), Ok(1));
        let bundle = format!("{one}{}", ca_pem());
        assert_eq!(check_ca_pem(bundle.as_bytes()), Ok(2));
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        assert_eq!(check_ca_pem(format!("{key}{one}").as_bytes()), Ok(1));
    }

    #[test]
    fn rejects_what_is_not_a_certificate() {
        let key = rcgen::KeyPair::generate().unwrap().serialize_pem();
        for bad in ["", "not pem at all", key.as_str()] {
            let error = check_ca_pem(bad.as_bytes()).unwrap_err();
            assert!(error.contains("no PEM CERTIFICATE"), "{bad:?}: {error}");
        }
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let error = check_ca_pem(garbage.as_bytes()).unwrap_err();
        assert!(error.contains("certificate 1"), "{error}");
    }

    #[test]
    fn an_oversized_bundle_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.crt");
        let one = ca_pem();
        let bundle = one.repeat(MAX_RUNNER_CA_BYTES / one.len() + 1);
        assert!(check_ca_pem(bundle.as_bytes()).is_ok());
        std::fs::write(&path, &bundle).unwrap();
        let error = read_runner_ca(&path).unwrap_err().to_string();
        assert!(
            error.contains("caPath") && error.contains("at most"),
            "{error}"
        );
        std::fs::write(&path, &one).unwrap();
        assert_eq!(read_runner_ca(&path).unwrap(), one);
    }

    #[test]
    fn read_errors_name_the_field_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.crt");
        let error = read_runner_ca(&missing).unwrap_err().to_string();
        assert!(error.contains("streaming.grpc.tls.caPath"), "{error}");
        assert!(error.contains(&missing.display().to_string()), "{error}");

        let junk = dir.path().join("junk.crt");
        std::fs::write(&junk, "hello").unwrap();
        let error = read_runner_ca(&junk).unwrap_err().to_string();
        assert!(error.contains("streaming.grpc.tls.caPath"), "{error}");
        assert!(error.contains("junk.crt"), "{error}");
        assert!(error.contains("no PEM CERTIFICATE"), "{error}");

        let good = dir.path().join("ca.crt");
        let pem = ca_pem();
        std::fs::write(&good, &pem).unwrap();
        assert_eq!(read_runner_ca(&good).unwrap(), pem);
    }
}
