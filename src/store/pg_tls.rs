//! TLS to PostgreSQL over rustls (the crate the HTTP client already uses), with libpq's
//! `sslmode` meanings, which tokio-postgres only partly parses:
//!
//! - `disable`: never; `allow`/`prefer` (the default): TLS when the server offers it,
//!   certificate not checked (as libpq); `require`: TLS or no connection, certificate not
//!   checked unless `sslrootcert` is given (then as `verify-ca`, as libpq);
//! - `verify-ca`: the chain must lead to `sslrootcert` (a PEM file; absent or `system`: the
//!   system's roots); `verify-full`: that and the host name (or IP) in the certificate.
//!
//! The handshake's signatures are verified in every mode. No channel binding is offered
//! (the SCRAM exchange says so), since `tls-server-end-point` needs the certificate's own
//! hash algorithm and a wrong guess fails authentication.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::config::SslMode;

/// What a connection asks of the server's certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verify {
    /// Encrypt, but take any certificate (libpq's `prefer` and `require`).
    Nothing,
    /// The chain must lead to a trusted root; the name is not checked.
    Ca(Roots),
    /// The chain and the host name.
    Full(Roots),
}

/// Where trusted roots come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Roots {
    /// The system's store (as the HTTP client).
    System,
    /// A PEM file of one or more certificates (`sslrootcert`).
    File(PathBuf),
}

/// The TLS part of a PostgreSQL URL, taken out of it before tokio-postgres parses the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsParams {
    /// tokio-postgres' negotiation mode.
    pub mode: SslMode,
    /// What is checked of the certificate.
    pub verify: Verify,
}

/// Splits `sslmode` and `sslrootcert` off `url`'s query: the URL left for tokio-postgres,
/// and what they ask for. Where the URL names neither, `$PGSSLMODE` and `$PGSSLROOTCERT`
/// do, as for libpq.
pub fn split_url(url: &str) -> Result<(String, TlsParams), String> {
    split_url_with(url, |name| std::env::var(name).ok())
}

/// [`split_url`] with the environment read through `env`.
pub fn split_url_with(url: &str, env: impl Fn(&str) -> Option<String>) -> Result<(String, TlsParams), String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, q),
        None => (url, ""),
    };
    let mut rest = Vec::new();
    let mut mode = None;
    let mut rootcert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = || {
            url::form_urlencoded::parse(format!("v={value}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        match key {
            "sslmode" => mode = Some(decoded()),
            "sslrootcert" => rootcert = Some(decoded()),
            _ => rest.push(pair),
        }
    }
    let mode = mode.or_else(|| env("PGSSLMODE"));
    let rootcert = rootcert.or_else(|| env("PGSSLROOTCERT"));
    let roots = match rootcert.as_deref() {
        None | Some("system") | Some("") => Roots::System,
        Some(path) => Roots::File(PathBuf::from(path)),
    };
    let given = rootcert.is_some_and(|r| !r.is_empty());
    let params = match mode.as_deref().unwrap_or("prefer") {
        "disable" => TlsParams { mode: SslMode::Disable, verify: Verify::Nothing },
        "allow" | "prefer" => TlsParams { mode: SslMode::Prefer, verify: Verify::Nothing },
        "require" if given => TlsParams { mode: SslMode::Require, verify: Verify::Ca(roots) },
        "require" => TlsParams { mode: SslMode::Require, verify: Verify::Nothing },
        "verify-ca" => TlsParams { mode: SslMode::Require, verify: Verify::Ca(roots) },
        "verify-full" => TlsParams { mode: SslMode::Require, verify: Verify::Full(roots) },
        other => {
            return Err(format!("sslmode={other}: not one of disable, allow, prefer, require, verify-ca, verify-full"))
        }
    };
    let url = if rest.is_empty() { base.to_string() } else { format!("{base}?{}", rest.join("&")) };
    Ok((url, params))
}

/// Builds the connector for `params`: reads `sslrootcert` now, so a missing or broken file
/// is an error at start, with its path.
pub fn connector(params: &TlsParams) -> anyhow::Result<Tls> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match &params.verify {
        Verify::Nothing => Arc::new(AnyCert(provider.clone())),
        Verify::Ca(roots) => Arc::new(AnyName(chain_verifier(roots, &provider)?)),
        Verify::Full(roots) => chain_verifier(roots, &provider)?,
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Tls(Arc::new(config)))
}

fn chain_verifier(roots: &Roots, provider: &Arc<CryptoProvider>) -> anyhow::Result<Arc<dyn ServerCertVerifier>> {
    use anyhow::Context as _;
    match roots {
        Roots::System => Ok(Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone()).context("loading the system's TLS roots")?,
        )),
        Roots::File(path) => {
            let what = || format!("reading sslrootcert {}", path.display());
            let mut store = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(path).with_context(what)? {
                store.add(cert.with_context(what)?).with_context(what)?;
            }
            if store.is_empty() {
                anyhow::bail!("sslrootcert {}: no certificate in the file", path.display());
            }
            let verifier =
                rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
                    .build()
                    .with_context(what)?;
            Ok(verifier)
        }
    }
}

/// Takes any certificate, but still checks that the server holds its key.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A chain verifier whose only complaint that does not count is the name.
#[derive(Debug)]
struct AnyName(Arc<dyn ServerCertVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// tokio-postgres' TLS maker over rustls.
#[derive(Clone)]
pub struct Tls(Arc<rustls::ClientConfig>);

/// One connection's TLS handshake, for the host it was made for.
pub struct Connect {
    config: Arc<rustls::ClientConfig>,
    name: Result<ServerName<'static>, String>,
}

/// A TLS-wrapped connection to PostgreSQL.
pub struct Stream(tokio_rustls::client::TlsStream<tokio_postgres::Socket>);

impl tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket> for Tls {
    type Stream = Stream;
    type TlsConnect = Connect;
    type Error = std::convert::Infallible;

    fn make_tls_connect(&mut self, domain: &str) -> Result<Connect, Self::Error> {
        let name = ServerName::try_from(domain.to_string()).map_err(|e| format!("host {domain:?}: {e}"));
        Ok(Connect { config: self.0.clone(), name })
    }
}

impl tokio_postgres::tls::TlsConnect<tokio_postgres::Socket> for Connect {
    type Stream = Stream;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, Self::Error>> + Send>>;

    fn connect(self, socket: tokio_postgres::Socket) -> Self::Future {
        Box::pin(async move {
            let name = self.name?;
            let tls = tokio_rustls::TlsConnector::from(self.config).connect(name, socket).await?;
            Ok(Stream(tls))
        })
    }
}

impl tokio_postgres::tls::TlsStream for Stream {
    fn channel_binding(&self) -> tokio_postgres::tls::ChannelBinding {
        tokio_postgres::tls::ChannelBinding::none()
    }
}

impl AsyncRead for Stream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_follows_libpq() {
        let (url, p) = split_url("postgres://u@h/db").unwrap();
        assert_eq!((url.as_str(), p.mode, p.verify), ("postgres://u@h/db", SslMode::Prefer, Verify::Nothing));
        let (url, p) = split_url("postgres://u@h/db?sslmode=require&connect_timeout=3").unwrap();
        assert_eq!(
            (url.as_str(), p.mode, p.verify),
            ("postgres://u@h/db?connect_timeout=3", SslMode::Require, Verify::Nothing)
        );
        let (_, p) = split_url("postgres://u@h/db?sslmode=require&sslrootcert=%2Fetc%2Fca.pem").unwrap();
        assert_eq!(p.verify, Verify::Ca(Roots::File("/etc/ca.pem".into())));
        let (_, p) = split_url("postgres://u@h/db?sslmode=verify-full").unwrap();
        assert_eq!((p.mode, p.verify), (SslMode::Require, Verify::Full(Roots::System)));
        let (_, p) = split_url("postgres://u@h/db?sslmode=verify-ca&sslrootcert=system").unwrap();
        assert_eq!(p.verify, Verify::Ca(Roots::System));
        let (_, p) = split_url("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(p.mode, SslMode::Disable);
        let e = split_url("postgres://u@h/db?sslmode=maybe").unwrap_err();
        assert!(e.contains("sslmode=maybe"), "{e}");
    }

    #[test]
    fn the_environment_fills_in_what_the_url_does_not_say() {
        let env = |name: &str| match name {
            "PGSSLMODE" => Some("verify-ca".to_string()),
            "PGSSLROOTCERT" => Some("/etc/env-ca.pem".to_string()),
            _ => None,
        };
        let (_, p) = split_url_with("postgres://u@h/db", env).unwrap();
        assert_eq!((p.mode, p.verify), (SslMode::Require, Verify::Ca(Roots::File("/etc/env-ca.pem".into()))));
        let (_, p) = split_url_with("postgres://u@h/db?sslmode=disable&sslrootcert=system", env).unwrap();
        assert_eq!((p.mode, p.verify), (SslMode::Disable, Verify::Nothing), "the URL wins");
        let (_, p) = split_url_with("postgres://u@h/db?sslmode=verify-full", env).unwrap();
        assert_eq!(p.verify, Verify::Full(Roots::File("/etc/env-ca.pem".into())));
    }
}
