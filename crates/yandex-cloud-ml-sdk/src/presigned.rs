//! One HTTP client for the presigned object-storage URLs of dataset uploads and downloads.
//! It shares the gRPC side's TLS setup (rustls with ring, the Mozilla roots plus any CA added
//! with [`SdkBuilder::ca_certificate_pem`](crate::SdkBuilder::ca_certificate_pem)) and its
//! plaintext policy (plain `http://` only to loopback unless `Tls::PlaintextInsecure`).

use std::{sync::OnceLock, time::Duration};

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

/// How long the body of an error answer is read.
const ERROR_BODY_TIME: Duration = Duration::from_secs(10);

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
        let config = crate::transport::endpoints::rustls_config(self.ca_pem.as_deref())?;
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
        self.send_with(method, url, length, None, body, timeout).await
    }

    /// [`send`](Self::send) of a GET of the bytes from `from` on (a `Range` request; the server
    /// may still answer the whole object with 200).
    pub(crate) async fn get_from(&self, url: &str, from: u64, timeout: Duration) -> Result<Response> {
        let range = (from > 0).then(|| format!("bytes={from}-"));
        self.send_with(http::Method::GET, url, None, range, bytes_body(Bytes::new()), timeout).await
    }

    async fn send_with(
        &self,
        method: http::Method,
        url: &str,
        length: Option<u64>,
        range: Option<String>,
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
        if let Some(range) = range {
            request = request.header(http::header::RANGE, range);
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

impl Http {
    /// Sends a request whose URL was already checked against the TLS policy (the
    /// OpenAI-compatible API's), without a timeout of its own: the caller bounds it.
    pub(crate) async fn send_request(&self, request: http::Request<Body>) -> Result<Response> {
        let target = redact(request.uri());
        let response = self
            .client()?
            .request(request)
            .await
            .map_err(|e| Error::transport(&format!("request to {target} failed"), e))?;
        let (parts, body) = response.into_parts();
        Ok(Response { status: parts.status, headers: parts.headers, body })
    }
}

impl Response {
    /// Fails with the status and S3's error code and message. Nothing else of the body is
    /// kept: S3 error documents can echo the request's signature and credential.
    pub(crate) async fn error_for_status(self, what: &str) -> Result<Response> {
        if self.status.is_success() {
            return Ok(self);
        }
        let status = self.status;
        const KEEP: usize = 16 << 10;
        let mut body = Vec::new();
        let mut stream = self.body;
        // An error body that stalls is not waited for: what arrived in time is enough.
        let _ = tokio::time::timeout(ERROR_BODY_TIME, async {
            while body.len() < KEEP {
                let Some(Ok(frame)) = stream.frame().await else { break };
                if let Ok(data) = frame.into_data() {
                    body.extend_from_slice(&data[..data.len().min(KEEP - body.len())]);
                }
            }
        })
        .await;
        let text = String::from_utf8_lossy(&body);
        let element = |name: &str| {
            let start = text.find(&format!("<{name}>"))? + name.len() + 2;
            let end = text[start..].find(&format!("</{name}>"))? + start;
            Some(text[start..end].chars().take(300).collect::<String>())
        };
        let detail = match (element("Code"), element("Message")) {
            (Some(code), Some(message)) => format!(": {code}: {message}"),
            (Some(code), None) => format!(": {code}"),
            _ => String::new(),
        };
        let retryable = status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS;
        let mut e = Error::new(ErrorKind::Http, format!("{what}: HTTP {status}{detail}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn error_of(status: u16, body: &'static str) -> Error {
        use http_body_util::BodyExt as _;
        // An `Incoming` body needs a real connection; serve one answer on a loopback socket.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut buf).await;
            let answer = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            tokio::io::AsyncWriteExt::write_all(&mut socket, answer.as_bytes()).await.unwrap();
        });
        let http = Http::new(Tls::PlaintextLoopbackOnly, None, Duration::from_secs(5));
        let empty = http_body_util::Empty::new().map_err(|never| match never {}).boxed();
        let response = http
            .send(http::Method::GET, &format!("http://{addr}/b/k"), None, empty, Duration::from_secs(5))
            .await
            .unwrap();
        match response.error_for_status("download").await {
            Err(e) => e,
            Ok(_) => panic!("status {status} is an error"),
        }
    }

    #[tokio::test]
    async fn storage_errors_keep_the_code_and_message_but_never_the_signature() {
        let xml = "<Error><Code>SignatureDoesNotMatch</Code><Message>The signature does not match.</Message>\
                   <SignatureProvided>deadbeef-secret</SignatureProvided><StringToSign>AWS4 x</StringToSign></Error>";
        let e = error_of(403, xml).await;
        assert_eq!(e.message(), "download: HTTP 403 Forbidden: SignatureDoesNotMatch: The signature does not match.");
        assert!(!e.is_retryable());
        let e = error_of(503, "<Error><Code>SlowDown</Code><Message>Reduce your rate</Message></Error>").await;
        assert!(e.is_retryable(), "{e}");
    }
}
