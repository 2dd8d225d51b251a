//! IAM tokens from the compute metadata service of a Yandex Cloud VM (or a local test server
//! playing it): `GET …/computeMetadata/v1/instance/service-accounts/default/token` with
//! `Metadata-Flavor: Google`.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper_util::rt::TokioIo;

use super::{secret::Secret, token_cache::IssuedToken};
use crate::error::{Error, Result};

/// Default metadata service host of a Yandex Cloud VM.
pub(crate) const DEFAULT_METADATA_HOST: &str = "169.254.169.254";
const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
/// Responses larger than this are not a token.
const MAX_BODY: usize = 64 * 1024;

/// Full token URL for a metadata host (`host` or `host:port`).
pub(crate) fn token_url(host: &str) -> String {
    format!("http://{host}{TOKEN_PATH}")
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: Option<u64>,
}

/// Fetches a token from `url` (plain `http://`), giving up after `timeout`.
/// A `user:password@` in the URL never reaches an error message (or, through it, a log).
pub(crate) async fn fetch_token(url: &str, timeout: Duration) -> Result<IssuedToken> {
    let shown = super::without_userinfo(url);
    tokio::time::timeout(timeout, fetch(url, &shown))
        .await
        .map_err(|_| Error::auth(format!("metadata service at {shown} did not answer within {timeout:?}")))?
}

async fn fetch(url: &str, shown: &str) -> Result<IssuedToken> {
    let uri: hyper::Uri =
        url.parse().map_err(|_| Error::configuration(format!("metadata service URL `{shown}` is not a valid URL")))?;
    if uri.scheme_str() != Some("http") {
        return Err(Error::configuration(format!("metadata service URL `{shown}` must start with http://")));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| Error::configuration(format!("metadata service URL `{shown}` has no host")))?
        .clone();
    let port = authority.port_u16().unwrap_or(80);
    let addr = format!("{}:{port}", authority.host());
    let fail = |what: &str, e: &dyn std::fmt::Display| Error::auth(format!("metadata service at {shown}: {what}: {e}"));

    let stream = tokio::net::TcpStream::connect(&addr).await.map_err(|e| fail("connect", &e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| fail("handshake", &e))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let request = Request::get(uri.path_and_query().map(|p| p.as_str()).unwrap_or(TOKEN_PATH))
        // Host never carries the userinfo part.
        .header(hyper::header::HOST, format!("{}:{port}", authority.host()))
        .header("Metadata-Flavor", "Google")
        .body(Empty::<bytes::Bytes>::new())
        .map_err(|e| fail("request", &e))?;
    let response = sender.send_request(request).await.map_err(|e| fail("request", &e))?;
    let status = response.status();
    let body = http_body_util::Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| fail("reading body", &e))?
        .to_bytes();
    if !status.is_success() {
        return Err(Error::auth(format!("metadata service at {shown} answered HTTP {status}")));
    }
    let parsed: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| Error::auth(format!("metadata service at {shown} returned a body without `access_token`")))?;
    Ok(IssuedToken { token: Secret::new(parsed.access_token), expires_in: parsed.expires_in.map(Duration::from_secs) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn credentials_in_the_url_stay_out_of_errors() {
        for url in ["http://user:hunter2@127.0.0.1:1/token", "ftp://user:hunter2@127.0.0.1/token"] {
            let Err(e) = fetch_token(url, Duration::from_secs(5)).await else { panic!("{url} gave a token") };
            assert!(!format!("{e} {e:?}").contains("hunter2"), "{e:?}");
            assert!(e.to_string().contains("***@127.0.0.1"), "{e}");
        }
    }
}
