//! Object storage over HTTP/1.1 on the API port, next to gRPC: the handlers of the presigned
//! upload and download URLs (`storage` signs and checks them and keeps the files), with the
//! journal and fault injection of every other request.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    extract::{Path as UrlPath, Query, State as Extract},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, put},
};
use futures_util::StreamExt;

use crate::{
    faults::FaultAction,
    state::{State, journal},
    storage::{Grant, S3Error, Signed, Signer, hex, s3_error},
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
    let full = |limit: &dyn std::fmt::Display| {
        let message = format!("The emulator's storage is full ({limit} bytes); delete datasets and retry");
        s3_error(StatusCode::SERVICE_UNAVAILABLE, "SlowDown", &message)
    };
    let mut writer = state.datasets.blobs.writer(&key, length).await.map_err(internal)?.map_err(|f| full(&f.limit))?;
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
        match writer.write(chunk).await {
            Ok(()) => {}
            // Other uploads filled the budget while this one was arriving.
            Err(e) if e.kind() == std::io::ErrorKind::StorageFull => {
                return Err(full(&state.config.max_stored_bytes));
            }
            Err(e) => return Err(internal(e)),
        }
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
        Ok(answer) => deliver(answer, serve(&state, dataset, key, q, &headers).await),
        Err(r) => r.into_response(),
    }
}

/// The start of an open-ended `Range: bytes=N-` (what clients send to resume a download); other
/// range forms are not served, and the whole object is answered, as HTTP allows.
fn range_start(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(header::RANGE)?.to_str().ok()?;
    value.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok()
}

async fn serve(
    state: &State,
    dataset: String,
    key: String,
    q: Result<Query<Signed>, axum::extract::rejection::QueryRejection>,
    headers: &HeaderMap,
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
    let from = range_start(headers);
    match state.datasets.blobs.body(&blob, from.unwrap_or(0)).await {
        Ok(Some((len, _))) if from.is_some_and(|from| from >= len) => {
            s3_error(StatusCode::RANGE_NOT_SATISFIABLE, "InvalidRange", "The requested range is not satisfiable")
                .into_response()
        }
        Ok(Some((len, body))) => {
            let start = from.unwrap_or(0);
            let status = if from.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
            let mut r = (status, [(header::CONTENT_TYPE, "application/octet-stream")], body).into_response();
            r.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len - start));
            if from.is_some()
                && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", len - 1))
            {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
        Ok(None) => s3_error(StatusCode::NOT_FOUND, "NoSuchKey", "The specified key does not exist.").into_response(),
        Err(e) => s3_error(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", &e.to_string()).into_response(),
    }
}
