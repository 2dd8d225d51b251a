//! Executes RPCs: picks the channel, attaches metadata and credentials, enforces deadlines and
//! retries, and turns failures into [`Error`]s.
//!
//! Request metadata of every attempt: `x-client-request-id` (one per logical call, the same on
//! every attempt), `authorization` (unless the RPC is unauthenticated), `x-data-logging-enabled`
//! (when configured), `idempotency-key` (mutating RPCs, one per logical call, only when retries
//! are enabled) and `x-retry-attempt` (retries only). The user agent is set on the channel.

mod channel;
mod codec;
pub(crate) mod endpoints;
pub(crate) mod openai;
pub(crate) mod rpc;
mod sse;

use std::{
    collections::HashMap,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Duration,
};

use futures_core::Stream;
use tokio::time::{Instant, Sleep};
use tonic::{
    codegen::http::uri::PathAndQuery,
    metadata::{AsciiMetadataKey, AsciiMetadataValue, MetadataMap},
};
use tracing::Instrument;
use yandex_cloud_ml_proto::yandex::cloud::endpoint as endpoint_pb;

use self::{channel::Channel, codec::SharedCodec, endpoints::Endpoints};
pub(crate) use self::{endpoints::EndpointConfig, rpc::Rpc};
use crate::{
    auth::Authenticator,
    call::CallOptions,
    error::{Code, Error, Result},
    retry::RetryPolicy,
};

/// Settings of the transport that are not about endpoints.
#[derive(Debug, Clone)]
pub(crate) struct TransportConfig {
    pub endpoints: EndpointConfig,
    pub retry: RetryPolicy,
    pub data_logging: Option<bool>,
    pub log_payloads: bool,
    /// The base URL of the OpenAI-compatible API, when known.
    pub api_base: Option<String>,
}

/// Shared, cheaply cloneable RPC executor.
#[derive(Clone)]
pub(crate) struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: Arc<Endpoints>,
    http: crate::presigned::Http,
    auth: Arc<Authenticator>,
    retry: RetryPolicy,
    data_logging: Option<AsciiMetadataValue>,
    log_payloads: bool,
    api_base: Option<String>,
    user_agent: http::HeaderValue,
}

/// What the transport needs of request and response messages.
pub(crate) trait Message: prost::Message + std::fmt::Debug + Send + Sync + 'static {}

impl<M: prost::Message + std::fmt::Debug + Send + Sync + 'static> Message for M {}

/// The message size gRPC servers accept unless configured otherwise (4 MiB); the API sets no
/// other limit.
const GRPC_DEFAULT_MESSAGE_LIMIT: usize = 4 << 20;

/// Per-logical-call state shared by its attempts.
struct CallCtx<'a> {
    rpc: &'static Rpc,
    request_id: AsciiMetadataValue,
    idempotency_key: Option<AsciiMetadataValue>,
    deadline: Instant,
    timeout: Duration,
    attempt_timeout: Option<Duration>,
    retry: &'a RetryPolicy,
    /// The `authorization` header of the latest attempt, to invalidate exactly that token
    /// (kept for refreshing credentials only).
    last_auth: std::sync::Mutex<Option<AsciiMetadataValue>>,
}

impl CallCtx<'_> {
    fn request_id(&self) -> &str {
        self.request_id.to_str().unwrap_or_default()
    }
}

/// A random (version 4) UUID for `x-client-request-id` and `idempotency-key`. Drawn from a
/// thread-local generator (no system call per request) and marked sensitive so HPACK does not
/// index a value that never repeats.
fn uuid_header() -> AsciiMetadataValue {
    /// Each byte as two lowercase hex digits.
    const HEX_PAIRS: [[u8; 2]; 256] = {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0; 2]; 256];
        let mut byte = 0;
        while byte < 256 {
            pairs[byte] = [HEX[byte >> 4], HEX[byte & 0xf]];
            byte += 1;
        }
        pairs
    };
    let bits = (fastrand::u128(..) & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62);
    let mut text = [b'-'; 36];
    let mut at = 0;
    for (i, byte) in bits.to_be_bytes().into_iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            at += 1;
        }
        text[at..at + 2].copy_from_slice(&HEX_PAIRS[usize::from(byte)]);
        at += 2;
    }
    let mut value = AsciiMetadataValue::try_from(&text[..]).expect("hex is ASCII");
    value.set_sensitive(true);
    value
}

/// Header names, validated once instead of on every insert.
struct Keys {
    request_id: AsciiMetadataKey,
    data_logging: AsciiMetadataKey,
    authorization: AsciiMetadataKey,
    idempotency_key: AsciiMetadataKey,
    retry_attempt: AsciiMetadataKey,
    timeout: AsciiMetadataKey,
}

fn keys() -> &'static Keys {
    static KEYS: std::sync::LazyLock<Keys> = std::sync::LazyLock::new(|| Keys {
        request_id: AsciiMetadataKey::from_static("x-client-request-id"),
        data_logging: AsciiMetadataKey::from_static("x-data-logging-enabled"),
        authorization: AsciiMetadataKey::from_static("authorization"),
        idempotency_key: AsciiMetadataKey::from_static("idempotency-key"),
        retry_attempt: AsciiMetadataKey::from_static("x-retry-attempt"),
        timeout: AsciiMetadataKey::from_static("grpc-timeout"),
    });
    &KEYS
}

/// `grpc-timeout` for the remaining time. Whole seconds above ten seconds, so the value
/// repeats from call to call and HPACK sends it as an index instead of a new literal; the last
/// such value is kept per thread, so calls with the usual timeouts format nothing.
fn grpc_timeout(remaining: Duration) -> AsciiMetadataValue {
    thread_local! {
        static LAST_SECONDS: std::cell::RefCell<(u64, Option<AsciiMetadataValue>)> =
            const { std::cell::RefCell::new((0, None)) };
    }
    if remaining < Duration::from_secs(10) {
        let text = format!("{}m", remaining.as_millis().max(1));
        return AsciiMetadataValue::try_from(text).expect("digits are ASCII");
    }
    let seconds = remaining.as_secs();
    LAST_SECONDS.with_borrow_mut(|(last, value)| match value {
        Some(value) if *last == seconds => value.clone(),
        _ => {
            let text = AsciiMetadataValue::try_from(format!("{seconds}S")).expect("digits are ASCII");
            *last = seconds;
            value.insert(text).clone()
        }
    })
}

impl Transport {
    pub(crate) fn new(config: TransportConfig, auth: Arc<Authenticator>) -> Result<Transport> {
        Endpoints::validate(&config.endpoints)?;
        let user_agent = http::HeaderValue::from_str(&config.endpoints.user_agent)
            .map_err(|_| crate::error::Error::configuration("the user agent suffix must be visible ASCII"))?;
        Ok(Transport {
            inner: Arc::new(Inner {
                http: crate::presigned::Http::new(
                    config.endpoints.tls,
                    config.endpoints.ca_pem.clone(),
                    config.endpoints.connect_timeout,
                ),
                endpoints: Endpoints::new(config.endpoints)?,
                auth,
                retry: config.retry,
                data_logging: config
                    .data_logging
                    .map(|on| AsciiMetadataValue::from_static(if on { "true" } else { "false" })),
                log_payloads: config.log_payloads,
                api_base: config.api_base,
                user_agent,
            }),
        })
    }

    /// The client for presigned object-storage URLs.
    pub(crate) fn http(&self) -> &crate::presigned::Http {
        &self.inner.http
    }

    /// The SDK's retry policy.
    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.inner.retry
    }

    /// A unary call with retries.
    pub(crate) async fn unary<Req, Resp>(&self, rpc: &'static Rpc, request: Req, options: &CallOptions) -> Result<Resp>
    where
        Req: Message,
        Resp: Message + Default,
    {
        let request = self.share(rpc, request);
        let ctx = self.context(rpc, options);
        self.with_retries(&ctx, &*request, |attempt, deadline| {
            self.unary_attempt::<Req, Resp>(&ctx, request.clone(), attempt, deadline)
        })
        .await
    }

    /// A server-streaming call read to its end, returning the last message. Retries cover the
    /// whole stream, which is safe because nothing has been handed to the caller yet.
    pub(crate) async fn stream_last<Req, Resp>(
        &self,
        rpc: &'static Rpc,
        request: Req,
        options: &CallOptions,
    ) -> Result<Resp>
    where
        Req: Message,
        Resp: Message + Default,
    {
        let request = self.share(rpc, request);
        let ctx = self.context(rpc, options);
        let (ctx, shared) = (&ctx, &request);
        self.with_retries(ctx, &*request, |attempt, deadline| async move {
            let mut stream = self.open_stream::<Req, Resp>(ctx, shared.clone(), attempt, deadline).await?;
            let mut last = None;
            while let Some(message) = stream.message().await.map_err(Error::from_status)? {
                self.log_response(ctx.rpc, &message);
                last = Some(message);
            }
            last.ok_or_else(|| Error::decode("the server closed the stream without sending a response"))
        })
        .await
    }

    /// A server-streaming call handed to the caller message by message. Attempts are retried
    /// until the first message arrives; after that the stream is never replayed, so the caller
    /// sees every message exactly once. The stream enforces the call's overall deadline.
    pub(crate) async fn stream<Req, Resp>(
        &self,
        rpc: &'static Rpc,
        request: Req,
        options: &CallOptions,
    ) -> Result<RpcStream<Resp>>
    where
        Req: Message,
        Resp: Message + Default,
    {
        let request = self.share(rpc, request);
        let ctx = self.context(rpc, options);
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let (ctx, shared) = (&ctx, &request);
        let (first, inner) = self
            .with_retries(ctx, &*request, |attempt, deadline| {
                attempts.store(attempt, std::sync::atomic::Ordering::Relaxed);
                async move {
                    let mut stream = self.open_stream::<Req, Resp>(ctx, shared.clone(), attempt, deadline).await?;
                    let first = stream.message().await.map_err(Error::from_status)?;
                    if let Some(m) = &first {
                        self.log_response(ctx.rpc, m);
                    }
                    Ok((first, stream))
                }
            })
            .await?;
        Ok(RpcStream {
            first,
            inner: Some(inner),
            deadline: Box::pin(tokio::time::sleep_until(ctx.deadline)),
            timeout: ctx.timeout,
            method: ctx.rpc.path,
            request_id: ctx.request_id().to_owned(),
            attempts: attempts.into_inner(),
            log_payloads: self.inner.log_payloads && !rpc.secret_payload,
        })
    }

    /// Logs a response when payload logging is on, except for RPCs whose payloads carry
    /// credentials (IAM exchanges), which are never logged.
    fn log_response<Resp: std::fmt::Debug>(&self, rpc: &Rpc, message: &Resp) {
        if self.inner.log_payloads && !rpc.secret_payload {
            tracing::debug!(method = rpc.name, payload = ?message, "response payload");
        }
    }

    /// The request, logged if payload logging is on, shared by the attempts of its call.
    fn share<Req: Message>(&self, rpc: &Rpc, request: Req) -> Arc<Req> {
        if self.inner.log_payloads {
            if rpc.secret_payload {
                tracing::debug!(method = rpc.name, "request payload withheld: it carries credentials");
            } else {
                tracing::debug!(method = rpc.name, payload = ?request, "request payload");
            }
        }
        Arc::new(request)
    }

    fn context<'a>(&'a self, rpc: &'static Rpc, options: &'a CallOptions) -> CallCtx<'a> {
        let retry = options.retry.as_ref().unwrap_or(&self.inner.retry);
        let started = Instant::now();
        CallCtx {
            rpc,
            request_id: uuid_header(),
            idempotency_key: (rpc.mutating && retry.retries_enabled()).then(uuid_header),
            deadline: started + crate::clock::capped(options.timeout),
            timeout: options.timeout,
            attempt_timeout: options.attempt_timeout,
            retry,
            last_auth: Default::default(),
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or the deadline passes (the one
    /// retry loop, with what is particular to gRPC: a rejected token is replaced once, a
    /// request over the servers' size limit is not retried).
    async fn with_retries<T, F, Fut>(&self, ctx: &CallCtx<'_>, request: &impl Message, mut attempt_fn: F) -> Result<T>
    where
        F: FnMut(u32, Instant) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut reauthenticated = false;
        let attempts = crate::retry::Attempts {
            what: ctx.rpc.name,
            request_id: ctx.request_id(),
            policy: ctx.retry,
            deadline: ctx.deadline,
            timeout: ctx.timeout,
            attempt_timeout: ctx.attempt_timeout,
        };
        let attempt = |attempt, attempt_deadline| {
            // One span per attempt, so every log line of the call carries these fields.
            let attempt_span = tracing::debug_span!(
                "yandex_cloud_ml_sdk::call",
                method = ctx.rpc.name,
                request_id = ctx.request_id(),
                attempt
            );
            // Entering and leaving a span on every poll costs even when nothing records it.
            let attempt_future = attempt_fn(attempt, attempt_deadline);
            if attempt_span.is_disabled() {
                futures_util::future::Either::Left(attempt_future)
            } else {
                futures_util::future::Either::Right(attempt_future.instrument(attempt_span))
            }
        };
        let after_failure = |error: &mut Error, attempt: u32| {
            let rejected = ctx.last_auth.lock().unwrap_or_else(|e| e.into_inner()).take();
            if error.code() == Some(Code::Unauthenticated)
                && !reauthenticated
                && self.inner.auth.invalidate(rejected.as_ref())
            {
                // The cached IAM token was rejected (expired early, revoked): fetch a new one once.
                reauthenticated = true;
                tracing::info!(
                    method = ctx.rpc.name,
                    request_id = ctx.request_id(),
                    attempt,
                    "token rejected; refreshing credentials and retrying"
                );
                return crate::retry::Next::Now;
            }
            // A request over the gRPC servers' default size limit is refused as
            // RESOURCE_EXHAUSTED every time: retrying it only wastes the budget.
            let sent = || request.encoded_len();
            if error.code() == Some(Code::ResourceExhausted) && sent() > GRPC_DEFAULT_MESSAGE_LIMIT {
                let sent = sent();
                let mut too_large = std::mem::replace(error, Error::decode(""))
                    .context(&format!(
                        "the request is {sent} bytes encoded, over the {GRPC_DEFAULT_MESSAGE_LIMIT} bytes a gRPC \
                         server accepts by default"
                    ))
                    .with_remedy(crate::error::Remedy::SendLess { limit: GRPC_DEFAULT_MESSAGE_LIMIT });
                too_large.set_retryable(false);
                *error = too_large;
                return crate::retry::Next::GiveUp;
            }
            crate::retry::Next::Backoff
        };
        crate::retry::run(attempts, attempt, after_failure).await.map_err(|e| {
            let made = e.attempts();
            e.with_call(ctx.rpc.path, ctx.request_id(), made)
        })
    }

    async fn channel(&self, rpc: &Rpc, deadline: Instant) -> Result<Channel> {
        self.inner.endpoints.channel(rpc.service, |root| self.discover(root, deadline)).await
    }

    /// `ApiEndpointService/List` on the discovery root: one unauthenticated attempt, made
    /// inside the attempt of the call that needs an endpoint, so a failure is retried by that
    /// call's retry loop and one logical call has one retry budget, discovery included.
    async fn discover(&self, root: Channel, deadline: Instant) -> Result<HashMap<String, String>> {
        let rpc = &rpc::LIST_ENDPOINTS;
        let ctx = CallCtx {
            rpc,
            request_id: uuid_header(),
            idempotency_key: None,
            deadline,
            timeout: deadline.saturating_duration_since(Instant::now()),
            attempt_timeout: None,
            retry: &self.inner.retry,
            last_auth: Default::default(),
        };
        let request = self.request(&ctx, Arc::new(endpoint_pb::ListApiEndpointsRequest::default()), 1, deadline, None);
        let response: endpoint_pb::ListApiEndpointsResponse = async {
            let response = root
                .grpc()
                .unary(request, PathAndQuery::from_static(rpc.path), SharedCodec::default())
                .await
                .map_err(Error::from_status)?;
            Ok::<_, Error>(response.into_inner())
        }
        .await
        .map_err(|e| e.context("endpoint discovery failed"))?;
        tracing::debug!(endpoints = response.endpoints.len(), "endpoint discovery done");
        Ok(response.endpoints.into_iter().map(|e| (e.id, e.address)).collect())
    }

    /// Builds the request of one attempt with all metadata.
    fn request<Req>(
        &self,
        ctx: &CallCtx<'_>,
        body: Arc<Req>,
        attempt: u32,
        deadline: Instant,
        authorization: Option<AsciiMetadataValue>,
    ) -> tonic::Request<Arc<Req>> {
        let mut request = tonic::Request::new(body);
        let md: &mut MetadataMap = request.metadata_mut();
        let k = keys();
        md.insert(k.request_id.clone(), ctx.request_id.clone());
        if let Some(v) = &self.inner.data_logging {
            md.insert(k.data_logging.clone(), v.clone());
        }
        if let Some(auth) = authorization {
            md.insert(k.authorization.clone(), auth);
        }
        if let Some(key) = &ctx.idempotency_key {
            md.insert(k.idempotency_key.clone(), key.clone());
        }
        if attempt > 1 {
            md.insert(k.retry_attempt.clone(), AsciiMetadataValue::from(attempt - 1));
        }
        // Tell the server how long we will wait so it can stop working when we give up.
        md.insert(k.timeout.clone(), grpc_timeout(deadline.saturating_duration_since(Instant::now())));
        request
    }

    /// A client on the service's channel and the attempt's request with credentials.
    async fn prepare<Req>(
        &self,
        ctx: &CallCtx<'_>,
        body: Arc<Req>,
        attempt: u32,
        deadline: Instant,
    ) -> Result<(tonic::client::Grpc<Channel>, tonic::Request<Arc<Req>>)> {
        let channel = self.channel(ctx.rpc, deadline).await?;
        let authorization = if ctx.rpc.authenticated { self.inner.auth.header(self).await? } else { None };
        if self.inner.auth.refreshes() {
            ctx.last_auth.lock().unwrap_or_else(|e| e.into_inner()).clone_from(&authorization);
        }
        Ok((channel.grpc(), self.request(ctx, body, attempt, deadline, authorization)))
    }

    async fn unary_attempt<Req, Resp>(
        &self,
        ctx: &CallCtx<'_>,
        body: Arc<Req>,
        attempt: u32,
        deadline: Instant,
    ) -> Result<Resp>
    where
        Req: Message,
        Resp: Message + Default,
    {
        let (mut grpc, request) = self.prepare(ctx, body, attempt, deadline).await?;
        let response = grpc
            .unary(request, PathAndQuery::from_static(ctx.rpc.path), SharedCodec::<Req, Resp>::default())
            .await
            .map_err(Error::from_status)?;
        let message = response.into_inner();
        self.log_response(ctx.rpc, &message);
        Ok(message)
    }

    async fn open_stream<Req, Resp>(
        &self,
        ctx: &CallCtx<'_>,
        body: Arc<Req>,
        attempt: u32,
        deadline: Instant,
    ) -> Result<tonic::Streaming<Resp>>
    where
        Req: Message,
        Resp: Message + Default,
    {
        let (mut grpc, request) = self.prepare(ctx, body, attempt, deadline).await?;
        let response = grpc
            .server_streaming(request, PathAndQuery::from_static(ctx.rpc.path), SharedCodec::<Req, Resp>::default())
            .await
            .map_err(Error::from_status)?;
        Ok(response.into_inner())
    }
}

/// A server stream handed to the caller: yields each message once and fails with a timeout
/// when the call's overall deadline passes. Dropping it cancels the RPC.
pub(crate) struct RpcStream<Resp> {
    first: Option<Resp>,
    inner: Option<tonic::Streaming<Resp>>,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
    method: &'static str,
    request_id: String,
    attempts: u32,
    log_payloads: bool,
}

impl<Resp> RpcStream<Resp> {
    /// The `x-client-request-id` of this call.
    pub(crate) fn request_id(&self) -> &str {
        &self.request_id
    }

    fn fail(&mut self, error: Error) -> Error {
        // After an error the stream is finished; drop the RPC.
        self.inner = None;
        error.with_call(self.method, &self.request_id, self.attempts)
    }
}

impl<Resp> Stream for RpcStream<Resp>
where
    Resp: Message + Default + Unpin,
{
    type Item = Result<Resp>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(first) = this.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(item) = Pin::new(inner).poll_next(cx) {
            return Poll::Ready(match item {
                Some(Ok(message)) => {
                    if this.log_payloads {
                        tracing::debug!(payload = ?message, "response payload");
                    }
                    Some(Ok(message))
                }
                Some(Err(status)) => {
                    let error = Error::from_status(status);
                    // The server ended the stream at the deadline we sent it: the call timed out.
                    if crate::retry::gave_up_at_deadline(&error) && Instant::now() >= this.deadline.deadline() {
                        let timeout = this.timeout;
                        return Poll::Ready(Some(Err(this.fail(Error::timeout(timeout)))));
                    }
                    Some(Err(this.fail(error)))
                }
                None => {
                    this.inner = None;
                    None
                }
            });
        }
        ready!(this.deadline.as_mut().poll(cx));
        let timeout = this.timeout;
        Poll::Ready(Some(Err(this.fail(Error::timeout(timeout)))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_version_4_uuids() {
        let a = uuid_header();
        let text = a.to_str().unwrap();
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4");
        assert!(matches!(&text[19..20], "8" | "9" | "a" | "b"), "{text}");
        assert!(text.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
        assert_ne!(a, uuid_header());
    }

    #[test]
    fn timeouts_use_whole_seconds_when_long() {
        assert_eq!(grpc_timeout(Duration::from_millis(179_999)), "179S");
        assert_eq!(grpc_timeout(Duration::from_millis(2_500)), "2500m");
        assert_eq!(grpc_timeout(Duration::ZERO), "1m");
    }
}
