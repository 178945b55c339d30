//! HTTPS on the engine's port: the certificate to serve ([`TlsConfig`], set with
//! [`EngineBuilder::tls`](crate::EngineBuilder::tls)), what clients negotiated
//! ([`TlsConnections`]), and an AWS SDK HTTP client that trusts a given CA
//! ([`sdk_http_client`]).
//!
//! The engine speaks TLS 1.2 and 1.3 through rustls with the aws-lc-rs provider (the one the AWS
//! SDK for Rust uses), chosen explicitly, so a process that also links rustls' ring provider
//! does not panic over which to use. ALPN offers `h2` and `http/1.1`: clients that ask for
//! HTTP/2 (the Rust SDK always does, the Java SDK does for SubscribeToShard) get it, and the
//! rest (awscli, boto3) speak HTTP/1.1. The listener's limits apply as without TLS; the
//! handshake counts towards the header read timeout.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::Error;

/// The certificate the engine serves HTTPS with.
///
/// ```
/// # async fn demo() -> Result<(), core_engine::Error> {
/// use core_engine::{Engine, TlsConfig};
///
/// let engine = Engine::builder().tls(TlsConfig::self_signed()).build()?.start().await?;
/// assert!(engine.endpoint_url().starts_with("https://"));
/// // Hand this to the client: AWS_CA_BUNDLE, awscli --ca-bundle, boto3 verify=, or
/// // core_engine::tls::sdk_http_client.
/// let ca = engine.ca_certificate_pem().expect("self-signed engines have a CA");
/// assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"));
/// engine.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct TlsConfig {
    source: Source,
}

#[derive(Clone)]
enum Source {
    Files { cert: PathBuf, key: PathBuf },
    Pem { cert: Vec<u8>, key: Vec<u8> },
    SelfSigned { names: Vec<String> },
}

// By hand, so that a private key never reaches a log.
impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::Files { cert, key } => f
                .debug_struct("TlsConfig::Files")
                .field("cert", cert)
                .field("key", key)
                .finish(),
            Source::Pem { .. } => f.write_str("TlsConfig::Pem { .. }"),
            Source::SelfSigned { names } => f
                .debug_struct("TlsConfig::SelfSigned")
                .field("names", names)
                .finish(),
        }
    }
}

impl TlsConfig {
    /// Serves the certificate chain in the PEM file `cert` (the server's certificate first,
    /// then any intermediates) with the private key in the PEM file `key` (PKCS#8, PKCS#1 or
    /// SEC1). The files are read when the engine starts; a missing or malformed file, or a
    /// key that does not match the certificate, stops the start with [`Error::Config`].
    pub fn from_pem_files(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            source: Source::Files {
                cert: cert.into(),
                key: key.into(),
            },
        }
    }

    /// Serves a certificate chain and private key given as PEM text, as for
    /// [`from_pem_files`](Self::from_pem_files).
    pub fn from_pem(cert: impl Into<Vec<u8>>, key: impl Into<Vec<u8>>) -> Self {
        Self {
            source: Source::Pem {
                cert: cert.into(),
                key: key.into(),
            },
        }
    }

    /// Generates, at start, a fresh CA and a certificate it signs for the listen address's IP,
    /// `localhost`, `127.0.0.1` and `::1` (plus any [`name`](Self::name)s). Clients trust the
    /// CA, which [`EngineHandle::ca_certificate_pem`](crate::EngineHandle::ca_certificate_pem)
    /// gives; its key lives only in memory, so every start makes a new one.
    pub fn self_signed() -> Self {
        Self {
            source: Source::SelfSigned { names: Vec::new() },
        }
    }

    /// One more DNS name or IP address for a [`self_signed`](Self::self_signed) certificate,
    /// such as the host name other machines or containers reach the engine by. Ignored for
    /// certificates given as files or PEM.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        if let Source::SelfSigned { names } = &mut self.source {
            names.push(name.into());
        }
        self
    }

    /// Loads or generates the certificate, for an engine listening on `listen`.
    pub(crate) fn load(&self, listen: SocketAddr) -> Result<LoadedTls, Error> {
        let (chain, key, ca_pem) = match &self.source {
            Source::Files { cert, key } => {
                let (chain, key) = parse_pem(
                    &read(cert, "certificate")?,
                    &read(key, "private key")?,
                    || (cert.display().to_string(), key.display().to_string()),
                )?;
                (chain, key, None)
            }
            Source::Pem { cert, key } => {
                let (chain, key) = parse_pem(cert, key, || {
                    ("(given as PEM)".into(), "(given as PEM)".into())
                })?;
                (chain, key, None)
            }
            Source::SelfSigned { names } => {
                let generated = generate(listen.ip(), names)
                    .map_err(|e| tls_error(format!("cannot generate a certificate: {e}")))?;
                (generated.chain, generated.key, Some(generated.ca_pem))
            }
        };
        LoadedTls::new(chain, key, ca_pem)
    }
}

fn tls_error(message: String) -> Error {
    Error::Config(format!("TLS: {message}"))
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| tls_error(format!("cannot read {what} {}: {e}", path.display())))
}

/// Parses a PEM certificate chain and private key; `names` says where they came from, for the
/// error message.
fn parse_pem(
    cert: &[u8],
    key: &[u8],
    names: impl Fn() -> (String, String),
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("certificate {}: {e}", names().0)))?;
    if chain.is_empty() {
        return Err(tls_error(format!(
            "certificate {}: no PEM CERTIFICATE block found",
            names().0
        )));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
        let why = match e {
            pem::Error::NoItemsFound => {
                "no PEM private key found (PKCS#8, PKCS#1 or SEC1)".to_string()
            }
            other => other.to_string(),
        };
        tls_error(format!("private key {}: {why}", names().1))
    })?;
    Ok((chain, key))
}

/// A generated CA and the server certificate it signed.
struct Generated {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    ca_pem: String,
}

fn generate(listen: IpAddr, extra: &[String]) -> Result<Generated, rcgen::Error> {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::default();
    // A name of its own, so that a client holding another start's CA is told "unknown issuer".
    let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
    ca.distinguished_name
        .push(DnType::CommonName, format!("core-engine local CA {id}"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    // The listen address even when unspecified (0.0.0.0), since endpoint_url() names it.
    let mut ips = vec![listen];
    let mut dns = vec!["localhost".to_string()];
    let loopback = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ];
    for name in loopback
        .iter()
        .map(IpAddr::to_string)
        .chain(extra.iter().cloned())
    {
        match name.parse::<IpAddr>() {
            Ok(ip) if ips.contains(&ip) => {}
            Ok(ip) => ips.push(ip),
            Err(_) if dns.contains(&name) => {}
            Err(_) => dns.push(name),
        }
    }
    let mut leaf = CertificateParams::new(dns)?;
    leaf.subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    leaf.distinguished_name
        .push(DnType::CommonName, "core-engine");
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // OpenSSL's strict mode (Python 3.13's default) wants it on certificates a CA signed.
    leaf.use_authority_key_identifier_extension = true;
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(Generated {
        chain: vec![leaf_cert.der().clone(), ca_cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        ca_pem: ca_cert.pem(),
    })
}

/// A certificate ready to serve.
pub(crate) struct LoadedTls {
    /// Offers `h2` and `http/1.1`.
    pub(crate) config: Arc<rustls::ServerConfig>,
    /// Offers `http/1.1` only, to answer connections over the limit with an HTTP/1.1 503.
    pub(crate) http1_config: Arc<rustls::ServerConfig>,
    /// The generated CA's certificate, for a self-signed engine.
    pub(crate) ca_pem: Option<String>,
}

impl fmt::Debug for LoadedTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedTls")
            .field("self_signed", &self.ca_pem.is_some())
            .finish_non_exhaustive()
    }
}

impl LoadedTls {
    fn new(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        ca_pem: Option<String>,
    ) -> Result<Self, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| tls_error(format!("the certificate and key do not work together: {e}")))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http1_config = Arc::new(config.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            http1_config,
            ca_pem,
        })
    }
}

/// How many TLS connections negotiated each protocol through ALPN, since the engine started;
/// from [`EngineHandle::tls_connections`](crate::EngineHandle::tls_connections).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsConnections {
    /// Connections that chose HTTP/2 (`h2`).
    pub h2: u64,
    /// Connections that chose HTTP/1.1 (`http/1.1`).
    pub http1: u64,
    /// Connections whose client offered no ALPN (served as HTTP/1.1 or HTTP/2 by what it sends).
    pub no_alpn: u64,
}

/// An HTTP client for the AWS SDKs for Rust that trusts only the CA certificates in `ca_pem`
/// (such as [`EngineHandle::ca_certificate_pem`](crate::EngineHandle::ca_certificate_pem)), and
/// is otherwise the SDK's default client: rustls with aws-lc-rs, offering `h2` and `http/1.1`
/// through ALPN. Give it to `aws_config::defaults(..).http_client(..)` or a service config's
/// `.http_client(..)`.
///
/// Fails with [`Error::Config`] if `ca_pem` holds no PEM certificate (the SDK itself would
/// panic on its first connection).
pub fn sdk_http_client(ca_pem: impl AsRef<[u8]>) -> Result<SharedHttpClient, Error> {
    let ca_pem = ca_pem.as_ref();
    let certificates = CertificateDer::pem_slice_iter(ca_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("CA certificate: {e}")))?;
    if certificates.is_empty() {
        return Err(tls_error(
            "CA certificate: no PEM CERTIFICATE block found".into(),
        ));
    }
    let context = TlsContext::builder()
        .with_trust_store(TrustStore::empty().with_pem_certificate(ca_pem))
        .build()
        .map_err(|e| tls_error(e.to_string()))?;
    Ok(aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
        .tls_context(context)
        .build_https())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_a_clear_error() {
        let error = TlsConfig::from_pem("not a certificate", "not a key")
            .load(SocketAddr::from(([127, 0, 0, 1], 0)))
            .unwrap_err()
            .to_string();
        assert!(error.contains("no PEM CERTIFICATE block found"), "{error}");
        assert!(sdk_http_client("nothing").is_err());
    }

    #[test]
    fn the_key_is_never_printed() {
        let config = TlsConfig::from_pem("cert", "SECRET KEY");
        assert!(!format!("{config:?}").contains("SECRET"));
    }
}
