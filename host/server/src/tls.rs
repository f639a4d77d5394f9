//! TLS on the listeners: a certificate chain and key from PEM files, served
//! with rustls, and reloaded in place (`Tls::reload`, on SIGHUP) so a renewed
//! certificate takes effect without a restart. Connections already open keep
//! the certificate they started with.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A certificate or key that cannot be used; the message names the file.
#[derive(Debug, Error)]
#[error("{file}: {problem}")]
pub struct TlsError {
    /// The file.
    pub file: PathBuf,
    /// What is wrong with it.
    pub problem: String,
}

/// A listener's TLS: cheap to clone, reloadable.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    cert_file: PathBuf,
    key_file: PathBuf,
    resolver: Arc<Resolver>,
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("cert_file", &self.inner.cert_file)
            .field("key_file", &self.inner.key_file)
            .finish()
    }
}

/// Hands every handshake the current certificate.
#[derive(Debug)]
struct Resolver(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

impl Tls {
    /// Reads the PEM certificate chain (leaf first) and private key (PKCS#8,
    /// PKCS#1 or SEC1), and checks that they belong together.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self, TlsError> {
        let key = certified_key(cert_file, key_file)?;
        let resolver = Arc::new(Resolver(RwLock::new(key)));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError {
                file: cert_file.to_path_buf(),
                problem: format!("TLS setup: {e}"),
            })?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // HTTP/1.1 only: WebSocket upgrades and SSE ride on it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            inner: Arc::new(Inner {
                cert_file: cert_file.to_path_buf(),
                key_file: key_file.to_path_buf(),
                resolver,
                acceptor: TlsAcceptor::from(Arc::new(config)),
            }),
        })
    }

    /// Reads the files again; new connections get the new certificate. On an
    /// error the current one stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = certified_key(&self.inner.cert_file, &self.inner.key_file)?;
        *self
            .inner
            .resolver
            .0
            .write()
            .unwrap_or_else(|e| e.into_inner()) = key;
        Ok(())
    }

    /// The TLS handshake on an accepted connection.
    pub async fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        self.inner.acceptor.accept(tcp).await
    }
}

fn certified_key(cert_file: &Path, key_file: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_error = |problem: String| TlsError {
        file: cert_file.to_path_buf(),
        problem,
    };
    let key_error = |problem: String| TlsError {
        file: key_file.to_path_buf(),
        problem,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| cert_error(format!("cannot read certificates: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_error(format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(cert_error("holds no PEM certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key_file)
        .map_err(|e| key_error(format!("not a PEM private key: {e}")))?;
    let signing = rustls::crypto::aws_lc_rs::sign::any_supported_type(&key)
        .map_err(|e| key_error(format!("unsupported private key: {e}")))?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| {
        key_error(format!(
            "does not belong to the certificate in {}: {e}",
            cert_file.display()
        ))
    })?;
    Ok(Arc::new(certified))
}
