//! One HTTP client for the presigned object-storage URLs of dataset uploads and downloads.
//! It shares the gRPC side's TLS setup (rustls with ring, the Mozilla roots plus any CA added
//! with [`SdkBuilder::ca_certificate_pem`](crate::SdkBuilder::ca_certificate_pem)) and its
//! plaintext policy (plain `http://` only to loopback unless `Tls::PlaintextInsecure`).

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, combinators::BoxBody};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};

use crate::{
    error::{Error, ErrorKind, Result},
    transport::endpoints::{Tls, is_loopback},
};

/// A request body: bytes streamed from wherever they come from (a file range, memory).
pub(crate) type Body = BoxBody<Bytes, std::io::Error>;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// The presigned-URL client, built on first use.
pub(crate) struct Http {
    tls: Tls,
    ca_pem: Option<Vec<u8>>,
    connect_timeout: Duration,
    client: OnceLock<Client<Connector, Body>>,
}

/// A response read whole (object storage answers are small, except downloads, which stream).
pub(crate) struct Response {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: hyper::body::Incoming,
}

impl Http {
    pub(crate) fn new(tls: Tls, ca_pem: Option<Vec<u8>>, connect_timeout: Duration) -> Http {
        Http { tls, ca_pem, connect_timeout, client: OnceLock::new() }
    }

    fn client(&self) -> Result<&Client<Connector, Body>> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some(pem) = &self.ca_pem {
            for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pem) {
                let cert: rustls::pki_types::CertificateDer<'static> =
                    cert.map_err(|e| Error::configuration(format!("the extra CA certificate is not valid PEM: {e}")))?;
                roots
                    .add(cert)
                    .map_err(|e| Error::configuration(format!("the extra CA certificate cannot be used: {e}")))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::configuration(format!("TLS setup failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(self.connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(self.client.get_or_init(|| client))
    }

    /// Checks that `url` may be used under the TLS policy.
    fn check(&self, url: &http::Uri) -> Result<()> {
        match url.scheme_str() {
            Some("https") => Ok(()),
            Some("http") if self.tls == Tls::PlaintextInsecure => Ok(()),
            Some("http") if url.host().is_some_and(is_loopback) => Ok(()),
            Some("http") => Err(Error::configuration(format!(
                "the server gave a plain-http storage URL for {}, which is not a loopback host; \
                 use Tls::PlaintextInsecure if you really mean it",
                url.host().unwrap_or("?")
            ))),
            _ => Err(Error::decode(format!("the server gave a storage URL that is not http(s): {}", redact(url)))),
        }
    }

    /// Sends one request and returns the response head with its body unread.
    pub(crate) async fn send(
        &self,
        method: http::Method,
        url: &str,
        length: Option<u64>,
        body: Body,
        timeout: Duration,
    ) -> Result<Response> {
        let uri: http::Uri =
            url.parse().map_err(|e| Error::decode(format!("the server gave an invalid storage URL: {e}")))?;
        self.check(&uri)?;
        let mut request = http::Request::builder().method(method).uri(uri.clone());
        if let Some(n) = length {
            request = request.header(http::header::CONTENT_LENGTH, n);
        }
        let request = request.body(body).map_err(|e| Error::decode(format!("cannot build the request: {e}")))?;
        let response = tokio::time::timeout(timeout, self.client()?.request(request))
            .await
            .map_err(|_| Error::timeout(timeout).context(&format!("storage request to {}", redact(&uri))))?
            .map_err(|e| Error::transport(&format!("storage request to {} failed", redact(&uri)), e))?;
        let (parts, body) = response.into_parts();
        Ok(Response { status: parts.status, headers: parts.headers, body })
    }
}

impl Response {
    /// Fails with the status and the start of the body (S3 errors are short XML documents).
    pub(crate) async fn error_for_status(self, what: &str) -> Result<Response> {
        if self.status.is_success() {
            return Ok(self);
        }
        let status = self.status;
        let body =
            http_body_util::Limited::new(self.body, 4096).collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let text = String::from_utf8_lossy(&body);
        let retryable = status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS;
        let mut e = Error::new(ErrorKind::Http, format!("{what}: HTTP {status}: {}", text.trim()));
        e.set_retryable(retryable);
        Err(e)
    }
}

/// A URL without its query string (presigned URLs carry signatures there).
pub(crate) fn redact(url: &http::Uri) -> String {
    format!("{}://{}{}", url.scheme_str().unwrap_or("?"), url.authority().map_or("", |a| a.as_str()), url.path())
}

/// A whole in-memory body.
pub(crate) fn bytes_body(bytes: Bytes) -> Body {
    http_body_util::Full::new(bytes).map_err(|never| match never {}).boxed()
}
