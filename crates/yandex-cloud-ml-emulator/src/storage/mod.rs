//! Object storage for dataset files, served by the emulator itself on its API port (HTTP/1.1
//! next to gRPC): presigned upload and download URLs, signed with a key of this emulator (kept
//! in the data directory, so URLs outlive a restart), bound to one dataset, one file and a
//! size, expiring after a day like the cloud's, and refused the way S3 refuses them.

pub(crate) mod blobs;

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use axum::{
    Router,
    body::Body,
    extract::{Path as UrlPath, Query, State as Extract},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::{
    faults::FaultAction,
    state::{State, journal},
};

/// Names of storage requests in the journal and in fault rules (S3's operation names).
pub(crate) const PUT_OBJECT: &str = "storage/PutObject";
pub(crate) const UPLOAD_PART: &str = "storage/UploadPart";
pub(crate) const GET_OBJECT: &str = "storage/GetObject";

/// What to do with the answer once the request was served.
enum Answer {
    Send,
    /// Served, but the client gets this error instead (a lost response).
    Lose(StatusCode),
}

/// The HTTP status S3 would use for a gRPC code of a fault rule.
fn http_status(code: i32) -> (StatusCode, &'static str) {
    match tonic::Code::from_i32(code) {
        tonic::Code::Unavailable | tonic::Code::ResourceExhausted => (StatusCode::SERVICE_UNAVAILABLE, "SlowDown"),
        tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => (StatusCode::FORBIDDEN, "AccessDenied"),
        tonic::Code::NotFound => (StatusCode::NOT_FOUND, "NoSuchKey"),
        tonic::Code::InvalidArgument => (StatusCode::BAD_REQUEST, "InvalidRequest"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
    }
}

/// Journal and faults for a storage request, as admission does for gRPC calls.
async fn admit(state: &State, method: &str, headers: &HeaderMap, note: String) -> Result<Answer, S3Error> {
    state.count(|s| s.requests += 1);
    state.journal.record(method, headers, journal::Body::Omitted(note));
    let actions = state.faults().decide(method);
    let mut answer = Answer::Send;
    for action in actions {
        match action {
            FaultAction::Fail { code, message } => {
                let (status, name) = http_status(code);
                return Err(s3_error(status, name, &message));
            }
            FaultAction::Delay { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
            FaultAction::LoseResponse { code } => answer = Answer::Lose(http_status(code).0),
            _ => {}
        }
    }
    Ok(answer)
}

fn deliver(answer: Answer, response: Response) -> Response {
    match answer {
        Answer::Send => response,
        Answer::Lose(status) => s3_error(status, http_status(14).1, "response lost by fault injection").into_response(),
    }
}

/// How long presigned URLs stay valid (the cloud's are a day).
pub(crate) const URL_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// What a signed URL allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Grant {
    /// PUT the whole file (`part` 0, exactly `size` bytes) or one part of a multipart upload
    /// (1-based, at most `size` bytes: the parts' sizes are the client's choice, their sum is
    /// checked), of the dataset's upload number `generation` (a later upload voids the URL).
    Upload { dataset: String, part: u32, size: u64, generation: u64 },
    /// GET one file of a dataset.
    Download { dataset: String, key: String },
}

/// Signs URLs with HMAC-SHA256.
pub(crate) struct Signer {
    key: ring::hmac::Key,
}

/// The signed part of a URL's query.
#[derive(Deserialize)]
struct Signed {
    expires: u64,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    generation: u64,
    sig: String,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Signer {
    /// A signer with a key kept in `dir/signing.key` (created on first use), or a fresh key
    /// for an emulator that keeps nothing.
    pub(crate) fn new(dir: Option<&Path>) -> std::io::Result<Signer> {
        let fresh = || {
            let mut secret = [0u8; 32];
            ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut secret)
                .map_err(|_| std::io::Error::other("no system randomness for the URL signing key"))?;
            Ok::<_, std::io::Error>(secret.to_vec())
        };
        let secret = match dir.map(|d| d.join("signing.key")) {
            None => fresh()?,
            Some(path) => match std::fs::read(&path) {
                Ok(secret) if secret.len() == 32 => secret,
                Ok(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{} is not a URL signing key (32 bytes); remove it to make a new one", path.display()),
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let secret = fresh()?;
                    write_private(&path, &secret)?;
                    secret
                }
                Err(e) => return Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
            },
        };
        Ok(Signer { key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &secret) })
    }

    fn path(grant: &Grant) -> String {
        match grant {
            Grant::Upload { dataset, part: 0, .. } => format!("/storage/upload/{dataset}"),
            Grant::Upload { dataset, part, .. } => format!("/storage/upload/{dataset}/{part}"),
            Grant::Download { dataset, key } => format!("/storage/download/{dataset}/{key}"),
        }
    }

    fn signature(&self, method: &str, path: &str, expires: u64, size: u64, generation: u64) -> String {
        let signed = format!("{method}\n{path}\n{expires}\n{size}\n{generation}");
        hex(ring::hmac::sign(&self.key, signed.as_bytes()).as_ref())
    }

    /// A presigned URL for `grant` under `base` (`http://host:port`).
    pub(crate) fn url(&self, base: &str, grant: &Grant) -> String {
        let (method, size, generation) = match grant {
            Grant::Upload { size, generation, .. } => ("PUT", *size, *generation),
            Grant::Download { .. } => ("GET", 0, 0),
        };
        let path = Self::path(grant);
        let expires = now() + URL_LIFETIME.as_secs();
        let sig = self.signature(method, &path, expires, size, generation);
        format!("{base}{path}?expires={expires}&size={size}&generation={generation}&sig={sig}")
    }

    /// Checks a request's signature (constant time) and expiry.
    fn verify(&self, method: &str, path: &str, q: &Signed) -> Result<(), S3Error> {
        let expected = self.signature(method, path, q.expires, q.size, q.generation);
        let same = expected.len() == q.sig.len()
            && expected.bytes().zip(q.sig.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !same {
            return Err(s3_error(
                StatusCode::FORBIDDEN,
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            ));
        }
        if now() > q.expires {
            return Err(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired"));
        }
        Ok(())
    }
}

/// Writes a file only its owner can read (the URL signing key).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

/// An S3-style XML error.
#[derive(Debug)]
pub(crate) struct S3Error {
    status: StatusCode,
    code: &'static str,
    message: String,
}

pub(crate) fn s3_error(status: StatusCode, code: &'static str, message: &str) -> S3Error {
    S3Error { status, code, message: message.to_owned() }
}

impl IntoResponse for S3Error {
    fn into_response(self) -> Response {
        let (code, message) = (self.code, self.message);
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
        );
        (self.status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
    }
}

/// The HTTP routes of storage, merged into the API port's router.
pub(crate) fn routes(state: Arc<State>) -> Router {
    Router::new()
        .route("/storage/upload/{dataset}", put(upload_whole))
        .route("/storage/upload/{dataset}/{part}", put(upload_part))
        .route("/storage/download/{dataset}/{key}", get(download))
        .with_state(state)
}

/// A signed query that does not parse is a URL someone edited.
fn signed(q: Result<Query<Signed>, axum::extract::rejection::QueryRejection>) -> Result<Signed, S3Error> {
    q.map(|Query(q)| q).map_err(|_| {
        s3_error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Query-string authentication requires the signature, expiry and size",
        )
    })
}

async fn upload_whole(
    Extract(state): Extract<Arc<State>>,
    UrlPath(dataset): UrlPath<String>,
    q: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match signed(q) {
        Ok(q) => {
            let grant = Grant::Upload { dataset, part: 0, size: q.size, generation: q.generation };
            receive(&state, grant, &q, &headers, body).await
        }
        Err(r) => r.into_response(),
    }
}

async fn upload_part(
    Extract(state): Extract<Arc<State>>,
    UrlPath((dataset, part)): UrlPath<(String, u32)>,
    q: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if part == 0 {
        return s3_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "Part number must be an integer between 1 and 10000",
        )
        .into_response();
    }
    match signed(q) {
        Ok(q) => {
            let grant = Grant::Upload { dataset, part, size: q.size, generation: q.generation };
            receive(&state, grant, &q, &headers, body).await
        }
        Err(r) => r.into_response(),
    }
}

/// Receives an upload: checks the URL, the dataset's state and the size, streams the bytes to
/// the blob store and answers with an ETag.
async fn receive(state: &State, grant: Grant, q: &Signed, headers: &HeaderMap, body: Body) -> Response {
    let (method, target) = match &grant {
        Grant::Upload { dataset, part: 0, .. } => (PUT_OBJECT, dataset.clone()),
        Grant::Upload { dataset, part, .. } => (UPLOAD_PART, format!("{dataset} part {part}")),
        Grant::Download { dataset, .. } => (GET_OBJECT, dataset.clone()),
    };
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).unwrap_or("?");
    let answer = match admit(state, method, headers, format!("{target}: {length} bytes")).await {
        Ok(answer) => answer,
        Err(r) => return r.into_response(),
    };
    deliver(answer, store(state, grant, q, headers, body).await)
}

async fn store(state: &State, grant: Grant, q: &Signed, headers: &HeaderMap, body: Body) -> Response {
    match store_checked(state, grant, q, headers, body).await {
        Ok(etag) => with_etag(StatusCode::OK.into_response(), &etag),
        Err(e) => e.into_response(),
    }
}

/// Checks the URL, the length and the dataset's upload, streams the body to the blob store
/// (each chunk must arrive within the request read timeout) and returns the ETag.
async fn store_checked(
    state: &State,
    grant: Grant,
    q: &Signed,
    headers: &HeaderMap,
    body: Body,
) -> Result<String, S3Error> {
    state.datasets.signer.verify("PUT", &Signer::path(&grant), q)?;
    let Grant::Upload { dataset, part, size, generation } = grant else {
        return Err(s3_error(StatusCode::FORBIDDEN, "AccessDenied", "Not an upload URL"));
    };
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let length = match declared {
        None => {
            return Err(s3_error(
                StatusCode::LENGTH_REQUIRED,
                "MissingContentLength",
                "You must provide the Content-Length HTTP header.",
            ));
        }
        Some(d) if part == 0 && d != size => {
            return Err(s3_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Content-Length differs from the size the URL was signed for",
            ));
        }
        Some(d) if d > size => {
            return Err(s3_error(
                StatusCode::BAD_REQUEST,
                "EntityTooLarge",
                "Your proposed upload exceeds the maximum allowed size",
            ));
        }
        Some(d) => d,
    };
    let internal = |e: std::io::Error| s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e.to_string());
    let key = state.datasets.accepts_upload(&dataset, part, size, generation, length)?;
    let mut writer = state.datasets.blobs.writer(&key, length).await.map_err(internal)?.map_err(|full| {
        let message = format!("The emulator's storage is full ({} bytes); delete datasets and retry", full.limit);
        s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", &message)
    })?;
    let idle = state.config.request_read_timeout();
    let mut stream = body.into_data_stream();
    let mut digest = ring::digest::Context::new(&ring::digest::SHA256);
    loop {
        // Dropping the writer (any early return) throws away what was written.
        let chunk = match tokio::time::timeout(idle, stream.next()).await {
            Err(_) => {
                return Err(s3_error(
                    StatusCode::BAD_REQUEST,
                    "RequestTimeout",
                    "Your socket connection to the server was not read from or written to within the timeout period.",
                ));
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                return Err(s3_error(StatusCode::BAD_REQUEST, "IncompleteBody", "The request body broke off"));
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        if writer.len() + chunk.len() as u64 > length {
            return Err(s3_error(
                StatusCode::BAD_REQUEST,
                "IncompleteBody",
                "The body is longer than its Content-Length",
            ));
        }
        digest.update(&chunk);
        writer.write(chunk).await.map_err(internal)?;
    }
    let received = writer.len();
    if received != length {
        return Err(s3_error(
            StatusCode::BAD_REQUEST,
            "IncompleteBody",
            "You did not provide the number of bytes specified by the Content-Length HTTP header",
        ));
    }
    // Opaque to clients, like S3's (which is an MD5 there): a quoted digest of the bytes.
    let etag = format!("\"{}\"", hex(&digest.finish().as_ref()[..16]));
    let staged = writer.finish().await.map_err(internal)?;
    // The dataset decides, under its lock, whether the file goes in place.
    state.datasets.uploaded(&dataset, part, generation, staged, &etag)?;
    Ok(etag)
}

fn with_etag(mut response: Response, etag: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    response
}

async fn download(
    Extract(state): Extract<Arc<State>>,
    UrlPath((dataset, key)): UrlPath<(String, String)>,
    q: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    match admit(&state, GET_OBJECT, &headers, format!("{dataset}/{key}")).await {
        Ok(answer) => deliver(answer, serve(&state, dataset, key, q).await),
        Err(r) => r.into_response(),
    }
}

async fn serve(
    state: &State,
    dataset: String,
    key: String,
    q: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let q = match signed(q) {
        Ok(q) => q,
        Err(r) => return r.into_response(),
    };
    let grant = Grant::Download { dataset: dataset.clone(), key: key.clone() };
    if let Err(r) = state.datasets.signer.verify("GET", &Signer::path(&grant), &q) {
        return r.into_response();
    }
    if key == crate::services::tuning::METRICS_FILE {
        return match state.tuning.metrics_csv(&dataset) {
            Some(csv) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/csv")], csv).into_response(),
            None => s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.").into_response(),
        };
    }
    let Some(blob) = state.datasets.file_key(&dataset, &key) else {
        return s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.").into_response();
    };
    match state.datasets.blobs.body(&blob).await {
        Ok(Some((len, body))) => {
            let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
            r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            r
        }
        Ok(None) => s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.").into_response(),
        Err(e) => s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(url: &str) -> Signed {
        let query = url.split_once('?').unwrap().1;
        let get = |k: &str| query.split('&').find_map(|kv| kv.strip_prefix(&format!("{k}="))).unwrap().to_owned();
        Signed {
            expires: get("expires").parse().unwrap(),
            size: get("size").parse().unwrap(),
            generation: get("generation").parse().unwrap(),
            sig: get("sig"),
        }
    }

    #[test]
    fn signatures_bind_method_path_size_and_expiry() {
        let s = Signer::new(None).unwrap();
        let url = s.url("http://h", &Grant::Upload { dataset: "fds1".into(), part: 0, size: 10, generation: 1 });
        assert!(s.verify("PUT", "/storage/upload/fds1", &query(&url)).is_ok());
        assert!(s.verify("PUT", "/storage/upload/fds2", &query(&url)).is_err(), "another dataset");
        assert!(s.verify("GET", "/storage/upload/fds1", &query(&url)).is_err(), "another method");
        assert!(s.verify("PUT", "/storage/upload/fds1", &Signed { size: 11, ..query(&url) }).is_err(), "another size");
        let expired =
            Signed { expires: 1, sig: s.signature("PUT", "/storage/upload/fds1", 1, 10, 1), size: 10, generation: 1 };
        let other_upload = Signed { generation: 2, ..query(&url) };
        assert!(s.verify("PUT", "/storage/upload/fds1", &other_upload).is_err(), "another upload");
        let e = s.verify("PUT", "/storage/upload/fds1", &expired).unwrap_err();
        assert_eq!(
            (e.status, e.code, e.message.as_str()),
            (StatusCode::FORBIDDEN, "AccessDenied", "Request has expired")
        );
        assert!(Signer::new(None).unwrap().verify("PUT", "/storage/upload/fds1", &query(&url)).is_err(), "another key");
    }

    #[test]
    fn the_key_outlives_a_restart_with_a_data_dir() {
        let dir = std::env::temp_dir().join(format!("ycml-signer-{}", fastrand::u64(..)));
        std::fs::create_dir_all(&dir).unwrap();
        let url = Signer::new(Some(&dir))
            .unwrap()
            .url("http://h", &Grant::Download { dataset: "d".into(), key: "main".into() });
        assert!(Signer::new(Some(&dir)).unwrap().verify("GET", "/storage/download/d/main", &query(&url)).is_ok());
        let _ = std::fs::remove_dir_all(dir);
    }
}
