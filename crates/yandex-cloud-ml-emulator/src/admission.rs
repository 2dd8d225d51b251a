//! One admission path for every cloud API call, as a tower layer in front of all services:
//! the request is checked (gRPC content type, a bounded body read in bounded time, exactly one
//! message on calls that are not client-streaming), faults are decided, the caller is
//! authenticated, the call is journaled, and the faults that act on the answer (a lost
//! response, a cut or stalled stream) are applied to whatever the service returns. Services
//! only do their own work; they read the caller, the deadline and operation faults from the
//! request extensions.

use std::{
    collections::HashMap,
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore},
    time::{Instant, Sleep},
};
use tonic::{Code, Status, body::Body};

use crate::{
    auth,
    faults::{FaultAction, OperationFault, StreamFault},
    state::{State, journal},
};

/// Largest request accepted, like the cloud's gRPC default (4 MiB per message).
pub(crate) const MAX_REQUEST_BYTES: usize = 4 << 20;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Who made the call (recorded as `created_by`).
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub String);

/// When the client stops waiting (from `grpc-timeout`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(pub Instant);

/// Set when a stream fault stops a response: the service's stream is then dropped by the
/// fault, not because the client went away, and must not be counted as a cancellation.
#[derive(Debug, Clone, Default)]
pub(crate) struct CutByFault(pub Arc<AtomicBool>);

impl CutByFault {
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Faults that make a new operation fail or finish late.
#[derive(Debug, Clone, Default)]
pub(crate) struct OperationFaults(pub Vec<OperationFault>);

/// What the emulator knows of a method from the descriptors.
#[derive(Debug)]
pub(crate) struct Method {
    /// `package.Service/Method`, as journaled and matched by fault rules.
    pub name: String,
    /// Full protobuf name of the request message.
    pub request_type: String,
    pub client_streaming: bool,
    /// Discovery and IAM token creation are called without credentials, as in the cloud.
    pub authenticated: bool,
}

/// Every method of the compiled `.proto` files, by gRPC path.
pub(crate) fn methods() -> &'static HashMap<String, Method> {
    static METHODS: OnceLock<HashMap<String, Method>> = OnceLock::new();
    METHODS.get_or_init(|| {
        let mut map = HashMap::new();
        for service in crate::reflect::pool().services() {
            for m in service.methods() {
                let name = format!("{}/{}", service.full_name(), m.name());
                let path = format!("/{name}");
                let authenticated = !(path.starts_with("/yandex.cloud.endpoint.")
                    || path == yandex_cloud_ml_proto::paths::IAM_TOKEN_SERVICE_CREATE);
                let method = Method {
                    name,
                    request_type: m.input().full_name().to_owned(),
                    client_streaming: m.is_client_streaming(),
                    authenticated,
                };
                map.insert(path, method);
            }
        }
        map
    })
}

/// Parses `grpc-timeout` (`<digits><unit>`, at most 8 digits by the spec, accepted longer and
/// saturated) into a duration. Never panics or overflows.
pub(crate) fn parse_grpc_timeout(raw: &str) -> Option<Duration> {
    let unit = raw.chars().last()?;
    let digits = &raw[..raw.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().unwrap_or(u64::MAX);
    Some(match unit {
        'H' => Duration::from_secs(n.saturating_mul(3600)),
        'M' => Duration::from_secs(n.saturating_mul(60)),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The deadline of a request; far-future timeouts are capped instead of overflowing.
fn deadline(headers: &http::HeaderMap) -> Option<Instant> {
    let timeout = parse_grpc_timeout(headers.get("grpc-timeout")?.to_str().ok()?)?;
    const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
    Some(Instant::now() + timeout.min(YEAR))
}

/// The tower layer.
#[derive(Clone)]
pub(crate) struct AdmissionLayer {
    state: Arc<State>,
    /// Request bytes that may be held in memory at once, over all connections: without it,
    /// thousands of streams each sending 4 MiB would be buffered before any check.
    buffered: Arc<Semaphore>,
}

impl AdmissionLayer {
    pub(crate) fn new(state: Arc<State>) -> AdmissionLayer {
        let budget = state.config.max_buffered_request_bytes.min(Semaphore::MAX_PERMITS);
        AdmissionLayer { state, buffered: Arc::new(Semaphore::new(budget)) }
    }
}

impl<S> tower_layer::Layer<S> for AdmissionLayer {
    type Service = Admission<S>;

    fn layer(&self, inner: S) -> Admission<S> {
        Admission { inner, state: self.state.clone(), buffered: self.buffered.clone() }
    }
}

/// The admission service wrapping all routes.
#[derive(Clone)]
pub(crate) struct Admission<S> {
    inner: S,
    state: Arc<State>,
    buffered: Arc<Semaphore>,
}

impl<S, B> tower_service::Service<http::Request<Body>> for Admission<S>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        // The clone that was polled ready serves this call.
        let fresh = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, fresh);
        Box::pin(admit(self.state.clone(), self.buffered.clone(), inner, request))
    }
}

fn refuse(status: Status) -> http::Response<Body> {
    status.into_http()
}

async fn admit<S, B>(
    state: Arc<State>,
    buffered: Arc<Semaphore>,
    mut inner: S,
    request: http::Request<Body>,
) -> Result<http::Response<Body>, Infallible>
where
    S: tower_service::Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    state.count(|s| s.requests += 1);
    let Some(method) = methods().get(request.uri().path()) else {
        // Health, reflection, or an unknown path (answered UNIMPLEMENTED by tonic).
        return inner.call(request).await.map(|r| r.map(Body::new));
    };
    if !is_grpc(request.headers()) {
        let mut response = http::Response::new(Body::empty());
        *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Ok(response);
    }
    let (mut parts, body) = request.into_parts();
    let deadline = deadline(&parts.headers);
    // Credentials are checked from the headers before the body is read: an unauthenticated
    // caller never gets memory spent on its body.
    let authenticate =
        || if method.authenticated { auth::authenticate(&state, &parts.headers) } else { Ok("anonymous".into()) };
    let mut caller = authenticate();
    let mut bytes = Bytes::new();
    let mut message = None;
    let mut _held = None;
    if caller.is_ok() {
        let (read, permit) = match read_body(body, state.config.request_read_timeout(), &buffered).await {
            Ok(read) => read,
            Err(status) => return Ok(refuse(status)),
        };
        bytes = read;
        _held = permit;
        message = match (method.client_streaming, single_message(&bytes)) {
            (false, Err(status)) => {
                state.journal.record(&method.name, &parts.headers, journal::Body::Omitted(status.message().to_owned()));
                return Ok(refuse(status));
            }
            (_, Ok(m)) => Some(m),
            (true, Err(_)) => None,
        };
    }

    // Faults act first, like a load balancer in front of the service.
    let actions = state.faults().decide(&method.name);
    let mut fail = None;
    let mut lose = None;
    let mut stream_fault = None;
    let mut operation_faults = Vec::new();
    let mut delay = Duration::ZERO;
    for action in actions {
        match action {
            FaultAction::Fail { code, message } => fail = Some(Status::new(Code::from_i32(code), message)),
            FaultAction::LoseResponse { code } => {
                lose = Some(Status::new(Code::from_i32(code), "response lost by fault injection"))
            }
            FaultAction::Delay { ms } => delay += Duration::from_millis(ms),
            FaultAction::CutStream { after_chunks, code } => {
                stream_fault = Some(StreamFault::Cut { after: after_chunks as usize, code })
            }
            FaultAction::StallStream { after_chunks } => {
                stream_fault = Some(StreamFault::Stall { after: after_chunks as usize })
            }
            FaultAction::FailOperation { code, message } => {
                operation_faults.push(OperationFault::Fail { code, message })
            }
            FaultAction::SlowOperation { polls } => operation_faults.push(OperationFault::Slow { polls }),
            FaultAction::ExpireTokens => {
                state.tokens.expire_all();
                // The expiry applies to this very call.
                if caller.is_ok() {
                    caller = authenticate();
                }
            }
        }
    }
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let body = match (&caller, &message) {
        (Err(status), _) => journal::Body::Omitted(format!("body not kept: {}", status.message())),
        (Ok(_), Some(m)) => journal::Body::Message { type_name: method.request_type.clone(), bytes: m.clone() },
        (Ok(_), None) => journal::Body::Omitted("client stream".into()),
    };
    state.journal.record(&method.name, &parts.headers, body);
    if let Some(status) = fail {
        return Ok(refuse(status));
    }
    let caller = match caller {
        Ok(c) => c,
        Err(status) => return Ok(refuse(status)),
    };

    parts.extensions.insert(Caller(caller));
    parts.extensions.insert(OperationFaults(operation_faults));
    if let Some(d) = deadline {
        parts.extensions.insert(Deadline(d));
    }
    let cut = CutByFault::default();
    if stream_fault.is_some() {
        parts.extensions.insert(cut.clone());
    }
    let request = http::Request::from_parts(parts, Body::new(http_body_util::Full::new(bytes)));
    let response = inner.call(request).await?;
    if nested_too_deeply(&response) {
        return Ok(refuse(Status::invalid_argument(
            "the request is nested too deeply to decode: protobuf decoders stop at 100 message levels, and each \
             level of a JSON schema or of tool parameters takes about 4 (send at most about 25)",
        )));
    }
    if let Some(status) = lose {
        // The work was done (the answer read to its end); the client never gets it.
        let mut body = std::pin::pin!(response.into_body());
        while let Some(frame) = body.frame().await {
            if frame.is_err() {
                break;
            }
        }
        return Ok(refuse(status));
    }
    Ok(match stream_fault {
        Some(fault) => response.map(|b| Body::new(FaultyBody::new(b, fault, deadline, cut, state))),
        None => response.map(Body::new),
    })
}

/// Whether the service refused the request because prost's recursion limit stopped its
/// decoding: tonic answers that with INTERNAL "failed to decode Protobuf message", which reads
/// like the server's fault, though the request was too deep. Such an answer is trailers-only,
/// so its status is in the headers.
fn nested_too_deeply<B>(response: &http::Response<B>) -> bool {
    let headers = response.headers();
    headers.get("grpc-status").is_some_and(|s| s == "13")
        && headers.get("grpc-message").is_some_and(|m| {
            let m = m.as_bytes();
            m.windows(9).any(|w| w == b"recursion") && m.windows(6).any(|w| w == b"decode")
        })
}

fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers.get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|t| {
        t == "application/grpc" || t.starts_with("application/grpc+") || t.starts_with("application/grpc;")
    })
}

/// Reads the whole request body, bounded in size and time and in the bytes all requests
/// together may hold; the permit returned keeps those bytes counted until it is dropped.
async fn read_body(
    body: Body,
    within: Duration,
    buffered: &Arc<Semaphore>,
) -> Result<(Bytes, Option<OwnedSemaphorePermit>), Status> {
    let read = async {
        let mut body = std::pin::pin!(body);
        let mut data = bytes::BytesMut::new();
        let mut permit: Option<OwnedSemaphorePermit> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| Status::cancelled(format!("the request body broke off: {e}")))?;
            let Ok(chunk) = frame.into_data() else { continue };
            if data.len() + chunk.len() > MAX_REQUEST_BYTES + 5 {
                return Err(Status::resource_exhausted(format!(
                    "the request is larger than the limit of {MAX_REQUEST_BYTES} bytes"
                )));
            }
            // Bounded above by the request limit, so it fits in u32.
            let more = buffered.clone().try_acquire_many_owned(chunk.len() as u32).map_err(|_| {
                Status::unavailable("the emulator holds too many request bytes in memory right now; retry shortly")
            })?;
            match permit.as_mut() {
                Some(held) => held.merge(more),
                None => permit = Some(more),
            }
            data.extend_from_slice(&chunk);
        }
        Ok((data.freeze(), permit))
    };
    match tokio::time::timeout(within, read).await {
        Err(_) => Err(Status::deadline_exceeded(format!("the request body did not arrive within {within:?}"))),
        Ok(result) => result,
    }
}

/// The payload of the one request message of a call that is not client-streaming (the
/// 5-byte gRPC frame header stripped, as the journal keeps it).
fn single_message(body: &Bytes) -> Result<Bytes, Status> {
    if body.len() < 5 {
        return Err(Status::internal("the request has no message (a unary call needs exactly one)"));
    }
    if body[0] != 0 {
        return Err(Status::unimplemented("compressed requests are not supported: send them uncompressed"));
    }
    let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
    match (body.len() - 5).cmp(&len) {
        std::cmp::Ordering::Less => Err(Status::internal("the request message is truncated")),
        std::cmp::Ordering::Greater => {
            Err(Status::internal("more than one request message on a call that takes exactly one"))
        }
        std::cmp::Ordering::Equal => Ok(body.slice(5..)),
    }
}

/// A response body that a stream fault cuts or stalls after some messages; streams with fewer
/// messages pass untouched.
struct FaultyBody<B> {
    /// The service's body; dropped when the fault fires, which stops the generation.
    inner: Option<Pin<Box<B>>>,
    fault: StreamFault,
    /// Messages fully or partly passed so far.
    messages: usize,
    /// Bytes left of the message being passed.
    remaining: usize,
    /// Header bytes of the next message seen so far (a header can span data frames).
    header: Vec<u8>,
    /// Set once the fault fired: the trailers to end with, or the stall.
    fired: bool,
    stall: Option<Pin<Box<Sleep>>>,
    deadline: Option<Instant>,
    cut: CutByFault,
    state: Arc<State>,
    ended: bool,
}

impl<B> FaultyBody<B> {
    fn new(
        inner: B,
        fault: StreamFault,
        deadline: Option<Instant>,
        cut: CutByFault,
        state: Arc<State>,
    ) -> FaultyBody<B> {
        FaultyBody {
            inner: Some(Box::pin(inner)),
            fault,
            messages: 0,
            remaining: 0,
            header: Vec::new(),
            fired: false,
            stall: None,
            deadline,
            cut,
            state,
            ended: false,
        }
    }

    fn after(&self) -> usize {
        match self.fault {
            StreamFault::Cut { after, .. } | StreamFault::Stall { after } => after,
        }
    }

    /// How many leading bytes of `data` to pass before the fault fires (all of them if it
    /// does not fire inside this frame).
    fn pass(&mut self, data: &[u8]) -> usize {
        let mut at = 0;
        while at < data.len() {
            if self.remaining > 0 {
                let take = self.remaining.min(data.len() - at);
                self.remaining -= take;
                at += take;
                continue;
            }
            if self.header.is_empty() && self.messages == self.after() {
                return at;
            }
            let need = 5 - self.header.len();
            let take = need.min(data.len() - at);
            self.header.extend_from_slice(&data[at..at + take]);
            at += take;
            if self.header.len() == 5 {
                self.remaining =
                    u32::from_be_bytes([self.header[1], self.header[2], self.header[3], self.header[4]]) as usize;
                self.header.clear();
                self.messages += 1;
            }
        }
        at
    }

    fn trailers(status: &Status) -> Frame<Bytes> {
        let mut map = http::HeaderMap::new();
        let _ = status.add_header(&mut map);
        Frame::trailers(map)
    }
}

impl<B> http_body::Body for FaultyBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        if this.fired {
            return match this.fault {
                StreamFault::Cut { code, .. } => {
                    this.ended = true;
                    Poll::Ready(Some(Ok(Self::trailers(&Status::new(
                        Code::from_i32(code),
                        "stream cut by fault injection",
                    )))))
                }
                StreamFault::Stall { .. } => {
                    // Hang until the client gives up (the body is dropped) or its deadline passes.
                    let Some(sleep) = this.stall.as_mut() else { return Poll::Pending };
                    std::task::ready!(sleep.as_mut().poll(cx));
                    this.ended = true;
                    this.state.count(|s| s.deadlines_exceeded += 1);
                    Poll::Ready(Some(Ok(Self::trailers(&Status::deadline_exceeded("Deadline exceeded")))))
                }
            };
        }
        let Some(inner) = this.inner.as_mut() else { return Poll::Ready(None) };
        match std::task::ready!(inner.as_mut().poll_frame(cx)) {
            Some(Ok(frame)) => match frame.into_data() {
                Ok(mut data) => {
                    let keep = this.pass(&data);
                    if keep < data.len() {
                        this.fired = true;
                        this.stall = this.deadline.map(|d| Box::pin(tokio::time::sleep_until(d)));
                        data.truncate(keep);
                        // The rest of the answer is never produced.
                        this.cut.0.store(true, Ordering::Relaxed);
                        this.inner = None;
                        if data.is_empty() {
                            cx.waker().wake_by_ref();
                            return Poll::Pending;
                        }
                    }
                    Poll::Ready(Some(Ok(Frame::data(data))))
                }
                Err(frame) => Poll::Ready(Some(Ok(frame))),
            },
            Some(Err(e)) => Poll::Ready(Some(Err(e.into()))),
            None => Poll::Ready(None),
        }
    }
}

impl<B> Drop for FaultyBody<B> {
    fn drop(&mut self) {
        if self.fired && !self.ended && matches!(self.fault, StreamFault::Stall { .. }) {
            self.state.count(|s| s.streams_cancelled += 1);
        }
    }
}
