//! The OpenAI-compatible HTTP API (`chat/completions`, `embeddings`, `models` under one base
//! URL): the URL itself, the headers the Python SDK sends, the one retry loop (429 and 5xx,
//! honouring `Retry-After`), error bodies in OpenAI's shape, and event streams that are never
//! replayed once their first event was read.
//!
//! Request headers: `user-agent`, `x-client-request-id` (one per logical call, the same on
//! every attempt), `authorization` (`Api-Key <key>` or `Bearer <IAM token>`),
//! `x-data-logging-enabled` (when configured), `openai-project` (the folder, on `GET models`
//! only, as the Python SDK sends it), `x-retry-attempt` (retries only).

use std::{
    collections::VecDeque,
    pin::Pin,
    sync::Mutex,
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use futures_core::Stream;
use http::{HeaderValue, Method, StatusCode, header};
use http_body::Body as _;
use http_body_util::BodyExt;
use serde::{Serialize, de::DeserializeOwned};
use tokio::time::{Instant, Sleep};

use super::{
    Transport, endpoints,
    sse::{Event, Parser},
};
use crate::{
    call::CallOptions,
    error::{Code, Error, ErrorKind, Result},
    presigned::{Response, bytes_body},
    retry::{Attempts, Next},
    sdk::Tls,
};

/// The base URL of the public cloud's OpenAI-compatible API, as the Python SDK derives it
/// from the default endpoint `api.cloud.yandex.net`.
pub(crate) const CLOUD_BASE_URL: &str = "https://llm.api.cloud.yandex.net/v1/";
/// The same for the pre-production installation.
const PREPROD_BASE_URL: &str = "https://llm-api.ml.cloud-preprod.yandex.net/v1/";

/// The most bytes a JSON answer may have (an embedding or a long completion is far less).
const MAX_ANSWER_BYTES: usize = 64 << 20;
/// How much of an error answer is read, and for how long.
const ERROR_BODY_BYTES: usize = 64 << 10;
const ERROR_BODY_TIME: Duration = Duration::from_secs(10);

/// Where the OpenAI-compatible API lives, derived like the Python SDK does from the host of
/// the SDK's endpoint; `None` when nothing says (a private installation: the user must set it).
pub(crate) fn base_url(
    explicit: Option<&str>,
    emulator: Option<&str>,
    discovery: Option<&str>,
    tls: Tls,
) -> Result<Option<String>> {
    let url = match (explicit, emulator) {
        (Some(url), _) => url.trim().to_owned(),
        (None, Some(address)) => {
            let scheme = if tls == Tls::Enabled { "https" } else { "http" };
            format!("{scheme}://{address}/v1/")
        }
        (None, None) => {
            let host = discovery.map(|d| endpoints::parse_address(d).map(|(host, _)| host)).transpose()?;
            return Ok(match host {
                None | Some("api.cloud.yandex.net") => Some(CLOUD_BASE_URL.to_owned()),
                Some("api.cloud-preprod.yandex.net") => Some(PREPROD_BASE_URL.to_owned()),
                Some(_) => None,
            });
        }
    };
    let url = if url.ends_with('/') { url } else { format!("{url}/") };
    let bad = |why: &str| {
        Error::configuration(format!(
            "the chat base URL `{url}` {why}; give it as e.g. `https://llm.api.cloud.yandex.net/v1` or `http://127.0.0.1:8080/v1`"
        ))
    };
    if url.contains('@') {
        return Err(Error::configuration(
            "the chat base URL must not carry credentials (user:password@); the SDK sends its own",
        ));
    }
    let uri: http::Uri = url.parse().map_err(|_| bad("is not a URL"))?;
    let Some(host) = uri.host() else { return Err(bad("has no host")) };
    if uri.query().is_some() {
        return Err(bad("must not have a query"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(Error::configuration(
            "the chat base URL must not carry credentials (user:password@); the SDK sends its own",
        ));
    }
    if uri.path() == "/" {
        return Err(bad("has no path: the API lives under /v1"));
    }
    match uri.scheme_str() {
        Some("https") => {}
        Some("http") if tls == Tls::PlaintextInsecure || endpoints::is_loopback(host) => {}
        Some("http") => {
            return Err(bad(
                "is plain http to a host that is not loopback (use https, or Tls::PlaintextInsecure if you really mean it)",
            ));
        }
        _ => return Err(bad("is not http(s)")),
    }
    Ok(Some(url))
}

/// A decoded answer and the server's id of its request (`x-request-id`, else
/// `x-server-trace-id`), for support requests.
pub(crate) struct Answer<T> {
    pub value: T,
    pub server_request_id: Option<String>,
}

/// The server's id of a request, from the answer's headers.
fn server_request_id(headers: &http::HeaderMap) -> Option<String> {
    ["x-request-id", "x-server-trace-id"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// One request of the API: method, the path under the base URL, the JSON body.
pub(crate) struct ApiRequest<'a> {
    pub method: Method,
    /// Relative to the base URL, e.g. `chat/completions`.
    pub path: &'static str,
    pub body: Option<Bytes>,
    /// Sent as `openai-project` (the listing's folder).
    pub project: Option<&'a str>,
}

impl<'a> ApiRequest<'a> {
    /// A POST of `body` as JSON.
    pub(crate) fn post(path: &'static str, body: &impl Serialize) -> Result<ApiRequest<'a>> {
        let body = serde_json::to_vec(body)
            .map_err(|e| Error::invalid_input(format!("the request cannot be written as JSON: {e}")))?;
        Ok(ApiRequest { method: Method::POST, path, body: Some(body.into()), project: None })
    }
}

/// What the server said about an error, besides its status: the fields of OpenAI's error
/// body (`{"error": {"message", "type", "code", "param"}}`), when it sent one. Read it with
/// [`Error::details`](crate::Error::details).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ApiErrorBody {
    /// The HTTP status.
    pub status: u16,
    /// `error.type`, e.g. `invalid_request_error`.
    pub kind: Option<String>,
    /// `error.code`, e.g. `model_not_found` (numbers are given as text).
    pub code: Option<String>,
    /// `error.param`: the request field at fault, if the server said.
    pub param: Option<String>,
}

/// State shared by the attempts of one logical call.
struct ApiCtx<'a> {
    request: &'a ApiRequest<'a>,
    url: String,
    request_id: HeaderValue,
    /// The `authorization` header of the latest attempt (to invalidate exactly that token).
    last_auth: Mutex<Option<tonic::metadata::AsciiMetadataValue>>,
    /// The server's `Retry-After` of the latest failed attempt.
    retry_after: Mutex<Option<Duration>>,
}

impl Transport {
    /// A request answered with JSON, decoded into `T`, with retries.
    pub(crate) async fn api_json<T: DeserializeOwned>(
        &self,
        request: ApiRequest<'_>,
        options: &CallOptions,
    ) -> Result<Answer<T>> {
        let (bytes, server_request_id) = self
            // The attempt's own deadline bounds the read.
            .api_call(&request, new_request_id(), options, |response, _| async move {
                let id = server_request_id(&response.headers);
                Ok((read_body(response.body, MAX_ANSWER_BYTES).await?, id))
            })
            .await?;
        if self.inner.log_payloads {
            tracing::debug!(path = request.path, payload = %String::from_utf8_lossy(&bytes), "response payload");
        }
        let value = serde_json::from_slice(&bytes).map_err(|e| {
            Error::decode(format!(
                "the answer of {} is not the expected JSON: {e}; it began with {:?}",
                request.path,
                String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
            ))
        })?;
        Ok(Answer { value, server_request_id })
    }

    /// A request answered with an event stream. Attempts are retried until the first event
    /// arrives; after that the stream is never replayed, so the caller sees every event once.
    pub(crate) async fn api_stream(&self, request: ApiRequest<'_>, options: &CallOptions) -> Result<EventStream> {
        let deadline = Instant::now() + crate::clock::capped(options.timeout);
        let request_id = new_request_id();
        let id = request_id.to_str().unwrap_or_default().to_owned();
        let path = request.path;
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let attempts = &attempts;
        let (first, mut stream) = self
            .api_call(&request, request_id, options, |response, _| async move {
                attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let content_type = response.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
                if !content_type.is_some_and(|t| t.starts_with("text/event-stream")) {
                    return Err(Error::decode(format!(
                        "{path} answered {} instead of an event stream (text/event-stream)",
                        content_type.unwrap_or("no content type")
                    )));
                }
                let server_id = server_request_id(&response.headers);
                let mut stream = EventStream::new(response.body, deadline, options.timeout);
                stream.server_request_id = server_id;
                let first = futures_util::StreamExt::next(&mut stream).await.unwrap_or_else(|| {
                    Err(Error::new(ErrorKind::Transport, "the event stream ended before its first event"))
                })?;
                Ok((first, stream))
            })
            .await?;
        stream.first = Some(first);
        stream.log_payloads = self.inner.log_payloads;
        stream.request_id = id;
        stream.path = path;
        stream.attempts = attempts.load(std::sync::atomic::Ordering::Relaxed);
        Ok(stream)
    }

    /// The one retry loop around an API request; `read` turns a successful response into the
    /// call's value inside the attempt (so a failure while reading is retried too).
    async fn api_call<'r, T, F, Fut>(
        &self,
        request: &'r ApiRequest<'r>,
        request_id: HeaderValue,
        options: &CallOptions,
        read: F,
    ) -> Result<T>
    where
        F: Fn(Response, Instant) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let Some(base) = self.inner.api_base.as_deref() else {
            return Err(Error::configuration(
                "the base URL of the OpenAI-compatible API is not known for this endpoint; set it with \
                 SdkBuilder::chat_base_url (e.g. https://llm.api.cloud.yandex.net/v1)",
            ));
        };
        if self.inner.log_payloads
            && let Some(body) = &request.body
        {
            tracing::debug!(path = request.path, payload = %String::from_utf8_lossy(body), "request payload");
        }
        let ctx = ApiCtx {
            request,
            url: format!("{base}{}", request.path),
            request_id,
            last_auth: Mutex::default(),
            retry_after: Mutex::default(),
        };
        let retry = options.retry.as_ref().unwrap_or(&self.inner.retry);
        let request_id = ctx.request_id.to_str().unwrap_or_default().to_owned();
        let attempts = Attempts {
            what: request.path,
            request_id: &request_id,
            policy: retry,
            deadline: Instant::now() + crate::clock::capped(options.timeout),
            timeout: options.timeout,
            attempt_timeout: options.attempt_timeout,
        };
        let ctx = &ctx;
        let read = &read;
        let mut reauthenticated = false;
        let attempt = |number: u32, deadline: Instant| async move {
            *ctx.retry_after.lock().unwrap_or_else(|e| e.into_inner()) = None;
            let response = self.api_attempt(ctx, number).await?;
            if !response.status.is_success() {
                let (error, retry_after) = api_error(response, request.path).await;
                *ctx.retry_after.lock().unwrap_or_else(|e| e.into_inner()) = retry_after;
                return Err(error);
            }
            read(response, deadline).await
        };
        let after_failure = |error: &mut Error, _: u32| {
            let rejected = ctx.last_auth.lock().unwrap_or_else(|e| e.into_inner()).take();
            if error.code() == Some(Code::Unauthenticated)
                && !reauthenticated
                && self.inner.auth.invalidate(rejected.as_ref())
            {
                reauthenticated = true;
                return Next::Now;
            }
            // A body over the server's limit is refused again on every attempt.
            if error.details::<ApiErrorBody>().is_some_and(|d| d.status == 413) {
                return Next::GiveUp;
            }
            match ctx.retry_after.lock().unwrap_or_else(|e| e.into_inner()).take() {
                Some(wait) => Next::After(wait),
                None => Next::Backoff,
            }
        };
        crate::retry::run(attempts, attempt, after_failure).await.map_err(|e| {
            let made = e.attempts();
            e.with_call(request.path, &request_id, made)
        })
    }

    /// Sends one attempt and returns the response head, its body unread.
    async fn api_attempt(&self, ctx: &ApiCtx<'_>, number: u32) -> Result<Response> {
        let mut builder = http::Request::builder()
            .method(ctx.request.method.clone())
            .uri(&ctx.url)
            .header(header::USER_AGENT, &self.inner.user_agent)
            .header("x-client-request-id", ctx.request_id.clone())
            .header(header::ACCEPT, "application/json, text/event-stream");
        if ctx.request.body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(on) = self.inner.data_logging.as_ref() {
            builder = builder.header("x-data-logging-enabled", on.as_bytes());
        }
        if let Some(project) = ctx.request.project {
            builder = builder.header("openai-project", project);
        }
        if number > 1 {
            builder = builder.header("x-retry-attempt", number - 1);
        }
        if let Some(auth) = self.inner.auth.header(self).await? {
            let mut value = HeaderValue::from_bytes(auth.as_bytes())
                .map_err(|_| Error::auth("the credential cannot be sent as an HTTP header"))?;
            value.set_sensitive(true);
            builder = builder.header(header::AUTHORIZATION, value);
            if self.inner.auth.refreshes() {
                *ctx.last_auth.lock().unwrap_or_else(|e| e.into_inner()) = Some(auth);
            }
        }
        let body = bytes_body(ctx.request.body.clone().unwrap_or_default());
        let request = builder.body(body).map_err(|e| Error::invalid_input(format!("cannot build the request: {e}")))?;
        self.inner.http.send_request(request).await
    }
}

/// A fresh `x-client-request-id`.
fn new_request_id() -> HeaderValue {
    let id = super::uuid_header();
    HeaderValue::from_bytes(id.as_bytes()).expect("a UUID is a valid header value")
}

/// The gRPC code an HTTP status stands for (the cloud's documented table, both ways).
pub(crate) fn code_of(status: StatusCode) -> Code {
    match status.as_u16() {
        400 | 422 => Code::InvalidArgument,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::NotFound,
        409 => Code::AlreadyExists,
        412 => Code::FailedPrecondition,
        413 | 429 => Code::ResourceExhausted,
        499 => Code::Cancelled,
        501 => Code::Unimplemented,
        502 | 503 => Code::Unavailable,
        504 => Code::DeadlineExceeded,
        _ => Code::Internal,
    }
}

/// The error of a non-2xx answer, with the server's message and `Retry-After`.
async fn api_error(response: Response, path: &str) -> (Error, Option<Duration>) {
    let status = response.status;
    let header = |name: &str| response.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let server_request_id = server_request_id(&response.headers);
    let retry_after = header("retry-after").as_deref().and_then(retry_after);
    let deadline = Instant::now() + ERROR_BODY_TIME;
    // What arrived in time and fits is enough to say what went wrong.
    let body = read_prefix(response.body, deadline, ERROR_BODY_BYTES).await;
    let (message, details) = parse_error_body(status, &body);
    let mut error = Error::new(ErrorKind::Http, format!("HTTP {status}: {message}"))
        .with_code(code_of(status))
        .with_server_request_id(server_request_id)
        .with_details(details);
    if status == StatusCode::UNAUTHORIZED {
        error = error.with_remedy(crate::error::Remedy::ProvideCredentials);
    }
    error.set_retryable(status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error());
    tracing::debug!(path, %status, "API error");
    (error, retry_after)
}

/// `Retry-After` in seconds (the form APIs use; an HTTP date is ignored and the policy's
/// backoff applies), at most a day.
fn retry_after(value: &str) -> Option<Duration> {
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(86_400.0)))
}

/// The message and fields of an error body: OpenAI's `{"error": {...}}`, a bare
/// `{"error": "..."}` or `{"message": "..."}`, or else the start of the text.
fn parse_error_body(status: StatusCode, body: &[u8]) -> (String, ApiErrorBody) {
    use serde_json::Value;
    let mut details = ApiErrorBody { status: status.as_u16(), ..ApiErrorBody::default() };
    let text_of = |v: Option<&Value>| match v {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let message = match &json {
        Some(Value::Object(o)) => match o.get("error") {
            Some(Value::Object(e)) => {
                details.kind = text_of(e.get("type"));
                details.code = text_of(e.get("code"));
                details.param = text_of(e.get("param"));
                text_of(e.get("message"))
            }
            Some(Value::String(s)) => Some(s.clone()),
            _ => text_of(o.get("message")).or_else(|| text_of(o.get("detail"))),
        },
        _ => None,
    };
    let message = message.unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        let text: String = text.trim().chars().take(300).collect();
        if text.is_empty() { "the server sent no error message".to_owned() } else { text }
    });
    // A message is said in one line of an error, not quoted in full.
    let message = match message.char_indices().nth(1000) {
        Some((at, _)) => format!("{}…", &message[..at]),
        None => message,
    };
    (message, details)
}

/// Reads what arrives of a body before `deadline`, at most `limit` bytes (an error answer:
/// what came in time is enough to say what went wrong).
async fn read_prefix(body: hyper::body::Incoming, deadline: Instant, limit: usize) -> Vec<u8> {
    let mut data = Vec::new();
    let mut body = std::pin::pin!(body);
    let _ = tokio::time::timeout_at(deadline, async {
        while data.len() < limit {
            let Some(Ok(frame)) = body.frame().await else { break };
            if let Ok(chunk) = frame.into_data() {
                data.extend_from_slice(&chunk[..chunk.len().min(limit - data.len())]);
            }
        }
    })
    .await;
    data
}

/// Reads a whole body, at most `limit` bytes.
async fn read_body(body: hyper::body::Incoming, limit: usize) -> Result<Bytes> {
    let mut body = std::pin::pin!(body);
    let mut data = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Error::transport("the answer broke off", e))?;
        if let Ok(chunk) = frame.into_data() {
            if data.len() + chunk.len() > limit {
                return Err(Error::decode(format!("the answer is larger than {limit} bytes")));
            }
            data.extend_from_slice(&chunk);
        }
    }
    Ok(data.freeze())
}

/// The events of a streamed answer, each once; fails with a timeout when the call's deadline
/// passes. Dropping it closes the connection, which stops the server's work.
pub(crate) struct EventStream {
    /// The call's `x-client-request-id`.
    pub request_id: String,
    /// The server's id of the request, if it sent one.
    pub server_request_id: Option<String>,
    /// The call's path and attempts, for errors.
    pub path: &'static str,
    pub attempts: u32,
    first: Option<Event>,
    body: Option<hyper::body::Incoming>,
    parser: Parser,
    ready: VecDeque<Event>,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    log_payloads: bool,
}

impl EventStream {
    fn new(body: hyper::body::Incoming, deadline: Instant, timeout: Duration) -> EventStream {
        EventStream {
            request_id: String::new(),
            server_request_id: None,
            path: "",
            attempts: 1,
            first: None,
            body: Some(body),
            parser: Parser::default(),
            ready: VecDeque::new(),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            timeout,
            log_payloads: false,
        }
    }
}

impl EventStream {
    /// Ends the stream with `error`, naming the call.
    fn fail(&mut self, error: Error) -> Poll<Option<Result<Event>>> {
        self.body = None;
        self.ready.clear();
        Poll::Ready(Some(Err(error.with_call(self.path, &self.request_id, self.attempts))))
    }
}

impl Stream for EventStream {
    type Item = Result<Event>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        // The call's timeout covers the whole stream, however fast events arrive.
        if this.body.is_some() && this.deadline.is_elapsed() {
            let timeout = this.timeout;
            return this.fail(Error::timeout(timeout));
        }
        loop {
            if let Some(event) = this.ready.pop_front() {
                if this.log_payloads {
                    tracing::debug!(payload = %event.data, "event");
                }
                return Poll::Ready(Some(Ok(event)));
            }
            let Some(body) = this.body.as_mut() else { return Poll::Ready(None) };
            let frame = match Pin::new(body).poll_frame(cx) {
                Poll::Ready(frame) => frame,
                Poll::Pending => {
                    ready!(this.deadline.as_mut().poll(cx));
                    let timeout = this.timeout;
                    return this.fail(Error::timeout(timeout));
                }
            };
            match frame {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let mut out = Vec::new();
                        if let Err(e) = this.parser.feed(&data, &mut out) {
                            return this.fail(Error::decode(e));
                        }
                        this.ready.extend(out);
                    }
                }
                Some(Err(e)) => return this.fail(Error::transport("the event stream broke off", e)),
                None => this.body = None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_follows_the_endpoint_like_the_python_sdk() {
        let b = |explicit, emulator, discovery, tls| base_url(explicit, emulator, discovery, tls);
        assert_eq!(b(None, None, None, Tls::Enabled).unwrap().as_deref(), Some(CLOUD_BASE_URL));
        assert_eq!(
            b(None, None, Some("api.cloud.yandex.net:443"), Tls::Enabled).unwrap().as_deref(),
            Some(CLOUD_BASE_URL)
        );
        assert_eq!(
            b(None, None, Some("api.cloud-preprod.yandex.net:443"), Tls::Enabled).unwrap().as_deref(),
            Some(PREPROD_BASE_URL)
        );
        assert_eq!(b(None, None, Some("gw.corp.example:443"), Tls::Enabled).unwrap(), None);
        let emulator = b(None, Some("127.0.0.1:5"), None, Tls::PlaintextLoopbackOnly).unwrap();
        assert_eq!(emulator.as_deref(), Some("http://127.0.0.1:5/v1/"));
        let explicit = b(Some("https://ai.api.cloud.yandex.net/v1"), Some("127.0.0.1:5"), None, Tls::Enabled).unwrap();
        assert_eq!(explicit.as_deref(), Some("https://ai.api.cloud.yandex.net/v1/"));
    }

    #[test]
    fn bad_base_urls_say_what_is_wrong() {
        for (url, why) in [
            ("http://10.0.0.1/v1", "not loopback"),
            ("ftp://x/v1", "not http(s)"),
            ("https://x/v1?a=1", "query"),
            ("not a url", "not a URL"),
            ("https://llm.api.cloud.yandex.net", "no path"),
            ("https://user:token@gw.example/v1", "credentials"),
        ] {
            let e = base_url(Some(url), None, None, Tls::Enabled).unwrap_err();
            assert!(e.to_string().contains(why), "{url}: {e}");
        }
        assert!(base_url(Some("http://10.0.0.1/v1"), None, None, Tls::PlaintextInsecure).is_ok());
    }

    #[test]
    fn error_bodies_of_every_shape_give_a_message() {
        let status = StatusCode::BAD_REQUEST;
        let (m, d) = parse_error_body(
            status,
            br#"{"error":{"message":"bad model","type":"invalid_request_error","code":"model_not_found","param":"model"}}"#,
        );
        assert_eq!(m, "bad model");
        assert_eq!(
            (d.kind.as_deref(), d.code.as_deref(), d.param.as_deref(), d.status),
            (Some("invalid_request_error"), Some("model_not_found"), Some("model"), 400)
        );
        assert_eq!(parse_error_body(status, br#"{"error":"plain"}"#).0, "plain");
        assert_eq!(parse_error_body(status, br#"{"message":"m","code":3}"#).0, "m");
        assert_eq!(parse_error_body(status, b"<html>gateway</html>").0, "<html>gateway</html>");
        assert_eq!(parse_error_body(status, b"").0, "the server sent no error message");
    }

    #[test]
    fn retry_after_takes_seconds_and_nothing_odd() {
        assert_eq!(retry_after("1"), Some(Duration::from_secs(1)));
        assert_eq!(retry_after(" 1.5 "), Some(Duration::from_millis(1500)));
        assert_eq!(retry_after("999999999"), Some(Duration::from_secs(86_400)));
        for odd in ["-1", "inf", "NaN", "Wed, 21 Oct 2026 07:28:00 GMT", ""] {
            assert_eq!(retry_after(odd), None, "{odd}");
        }
    }

    #[test]
    fn statuses_map_to_the_documented_codes() {
        for (status, code) in [
            (400, Code::InvalidArgument),
            (401, Code::Unauthenticated),
            (403, Code::PermissionDenied),
            (404, Code::NotFound),
            (429, Code::ResourceExhausted),
            (500, Code::Internal),
            (501, Code::Unimplemented),
            (503, Code::Unavailable),
            (504, Code::DeadlineExceeded),
        ] {
            assert_eq!(code_of(StatusCode::from_u16(status).unwrap()), code, "{status}");
        }
    }
}
