//! TLS to pools the way pool users expect it. The webpki roots, plus what the user gave:
//!
//! - `--ca-file PEM`: CA certificates to trust, *and* certificates to pin. A small pool's
//!   certificate is usually made by `openssl req -x509`, which marks it `CA:TRUE`; webpki
//!   refuses such a certificate as a server's (`CaUsedAsEndEntity`), yet curl and OpenSSL
//!   trust the certificate they were given. So a server certificate that is byte for byte one
//!   of the file's is trusted as itself, still checked for its dates and the host name.
//! - `--pool-cert-sha256 HEX`: only the certificate with this SHA-256 fingerprint (openssl's
//!   `x509 -fingerprint -sha256`) is taken, with the same checks of dates and name.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use pki_types::pem::PemObject;
use pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{WebPkiServerVerifier, verify_server_name};
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

/// What a pool's certificate is checked against, besides the webpki roots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trust {
    /// PEM certificates: CAs to trust and server certificates to pin.
    pub ca_file: Option<PathBuf>,
    /// The SHA-256 of the one server certificate to take.
    pub cert_sha256: Option<[u8; 32]>,
}

/// TLS settings that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("not hex: {0}")]
    FingerprintHex(String),
    #[error("a SHA-256 fingerprint is 32 bytes, got {0}")]
    FingerprintLength(usize),
    #[error("CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("TLS settings: {0}")]
    Settings(String),
}

/// Reads `--pool-cert-sha256`: 64 hex digits, colons allowed as openssl prints them.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], TlsError> {
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    let bytes = crate::work::hex_decode(&hex).map_err(|e| TlsError::FingerprintHex(e.to_string()))?;
    bytes.try_into().map_err(|b: Vec<u8>| TlsError::FingerprintLength(b.len()))
}

/// The client settings for `trust`.
pub fn client_config(trust: &Trust) -> Result<rustls::ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let pinned = match &trust.ca_file {
        Some(path) => read_pem(path)?,
        None => Vec::new(),
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in &pinned {
        // A certificate webpki cannot take as a root is still pinned below.
        let _ = roots.add(cert.clone());
    }
    let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Settings(format!("roots: {e}")))?;
    let verifier = PinningVerifier {
        webpki,
        pinned,
        cert_sha256: trust.cert_sha256,
        algorithms: provider.signature_verification_algorithms,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Settings(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(config)
}

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let error = |reason: String| TlsError::CaFile { path: path.to_path_buf(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| error(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(e.to_string()))?;
    if certs.is_empty() {
        return Err(error("no PEM certificate in it".into()));
    }
    Ok(certs)
}

#[derive(Debug)]
struct PinningVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
    cert_sha256: Option<[u8; 32]>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinningVerifier {
    /// A pinned certificate is its own trust anchor. webpki checks a certificate's dates
    /// before its basic constraints (verify_cert.rs, check_issuer_independent_properties), so
    /// `CaUsedAsEndEntity` from a path to itself means the dates passed; `UnknownIssuer` does
    /// too, for a pinned leaf that some CA issued.
    fn verify_pinned(
        &self,
        end_entity: &CertificateDer<'_>,
        server_name: &ServerName<'_>,
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = webpki::EndEntityCert::try_from(end_entity).map_err(pki_error)?;
        let anchor = webpki::anchor_from_trusted_cert(end_entity).map_err(pki_error)?;
        let usage = webpki::KeyUsage::server_auth();
        match cert.verify_for_usage(self.algorithms.all, &[anchor], &[], now, usage, None, None) {
            Ok(_) | Err(webpki::Error::CaUsedAsEndEntity | webpki::Error::UnknownIssuer) => {}
            Err(e) => return Err(pki_error(e)),
        }
        verify_server_name(&rustls::server::ParsedCertificate::try_from(end_entity)?, server_name)?;
        Ok(ServerCertVerified::assertion())
    }
}

fn pki_error(e: webpki::Error) -> rustls::Error {
    match e {
        webpki::Error::CertExpired { .. } => CertificateError::Expired.into(),
        webpki::Error::CertNotValidYet { .. } => CertificateError::NotValidYet.into(),
        other => rustls::Error::General(format!("pinned certificate: {other}")),
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(expected) = self.cert_sha256 {
            let actual: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
            if actual != expected {
                return Err(rustls::Error::General(format!(
                    "the pool's certificate has SHA-256 {}, not the one --pool-cert-sha256 names",
                    bitcoin::hex::DisplayHex::to_lower_hex_string(&actual[..])
                )));
            }
            return self.verify_pinned(end_entity, server_name, now);
        }
        if self.pinned.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return self.verify_pinned(end_entity, server_name, now);
        }
        self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_read_as_openssl_prints_them() {
        let hex = "AB:CD:".to_string() + &"00".repeat(30);
        assert_eq!(parse_fingerprint(&hex).unwrap()[..2], [0xab, 0xcd]);
        assert_eq!(parse_fingerprint(&"11".repeat(32)).unwrap(), [0x11; 32]);
        assert_eq!(parse_fingerprint("abcd"), Err(TlsError::FingerprintLength(2)));
        assert!(parse_fingerprint(&"zz".repeat(32)).is_err());
    }
}
