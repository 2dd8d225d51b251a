//! Cassette replay server, a test utility: serves the responses recorded between the official
//! Python SDK and the real cloud (protobuf JSON, one request and its response or response
//! stream per interaction) and records what the client sent, so a test can check that a client
//! sends exactly the recorded requests and reads the real responses.
//!
//! Any method of the API is served generically: an incoming call consumes the next unused
//! interaction whose request and response types match the method. Discovery answers are
//! rewritten to point every service at the replay server itself.
//!
//! Recorded object-storage traffic (presigned PUTs and GETs of dataset files) is served over
//! HTTP/1.1 on the same port: storage URLs in responses are rewritten to this server, and
//! each request consumes the recorded exchange with the same method, path and query.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    net::SocketAddr,
    path::Path,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use bytes::{Buf, Bytes};
use prost_reflect::MessageDescriptor;
use serde_json::Value;
use tokio::sync::oneshot;
use tonic::{
    Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::{Service, http},
};

use crate::reflect;

/// One recorded call.
#[derive(Debug, Clone)]
struct Interaction {
    request_type: MessageDescriptor,
    request: Value,
    response_type: MessageDescriptor,
    responses: Vec<Value>,
}

/// A recorded conversation, loaded from a `.gprc.json` cassette, plus any recorded
/// object-storage exchanges ([`Cassette::with_storage`]).
#[derive(Debug, Clone)]
pub struct Cassette {
    interactions: Vec<Interaction>,
    storage: Vec<StorageInteraction>,
}

/// The host of presigned storage URLs in the cloud's answers.
pub const STORAGE_ORIGIN: &str = "https://storage.yandexcloud.net";

/// One recorded HTTP exchange: with object storage, or with the OpenAI-compatible API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorageInteraction {
    /// `PUT`, `GET`, `POST`.
    pub method: String,
    /// Path and query of the recorded URL (`/bucket/key?X-Amz-…`, `/v1/chat/completions`),
    /// exactly as recorded.
    pub path_and_query: String,
    /// The body the client sent.
    pub request_body: Vec<u8>,
    /// The answer's status code.
    pub status: u16,
    /// The answer's headers (hop-by-hop ones are dropped when replayed).
    pub headers: Vec<(String, String)>,
    /// The answer's body.
    pub body: Vec<u8>,
}

impl StorageInteraction {
    /// An exchange recorded for `url` (`https://storage.yandexcloud.net/…`,
    /// `https://llm.api.cloud.yandex.net/v1/…`); it is replayed for any host.
    pub fn new(method: &str, url: &str, request_body: Vec<u8>, status: u16) -> StorageInteraction {
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let path_and_query = after_scheme.find('/').map_or("/", |at| &after_scheme[at..]).to_owned();
        StorageInteraction {
            method: method.to_owned(),
            path_and_query,
            request_body,
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// What a client sent over HTTP in one replayed exchange.
#[derive(Debug, Clone)]
pub struct StorageExchange {
    /// `PUT`, `GET`, `POST`.
    pub method: String,
    /// Path and query.
    pub path_and_query: String,
    /// Whether the body equals the recorded one.
    pub body_matches: bool,
    /// Bytes sent.
    pub body_len: usize,
    /// The body sent.
    pub body: Vec<u8>,
    /// The body recorded.
    pub recorded_body: Vec<u8>,
}

/// A message in a cassette: its Python class, module and protobuf JSON.
#[derive(serde::Deserialize)]
struct Recorded {
    cls: String,
    module: String,
    message: Value,
}

#[derive(serde::Deserialize)]
struct RawInteraction {
    request: Recorded,
    response: Option<Recorded>,
    response_stream: Option<Vec<Recorded>>,
}

#[derive(serde::Deserialize)]
struct RawCassette {
    interactions: Vec<RawInteraction>,
}

/// Finds the descriptor of a Python class `cls` from generated module `module`
/// (`yandex.cloud.operation.operation_pb2` → `yandex/cloud/operation/operation.proto`).
fn descriptor_of(r: &Recorded) -> Result<MessageDescriptor, String> {
    let file = format!("{}.proto", r.module.trim_end_matches("_pb2").replace('.', "/"));
    let pool = reflect::pool();
    let package = pool
        .get_file_by_name(&file)
        .map(|f| f.package_name().to_owned())
        .ok_or_else(|| format!("cassette names module {} but {file} is not among our protos", r.module))?;
    reflect::descriptor(&format!("{package}.{}", r.cls))
}

impl Cassette {
    /// Reads a cassette file.
    pub fn load(path: impl AsRef<Path>) -> Result<Cassette, String> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Cassette::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Reads only the first `n` interactions of a cassette (a recording that goes on to
    /// services outside this project's scope).
    pub fn load_first(path: impl AsRef<Path>, n: usize) -> Result<Cassette, String> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Cassette::parse_first(&text, n).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses cassette JSON.
    pub fn parse(json: &str) -> Result<Cassette, String> {
        Cassette::parse_first(json, usize::MAX)
    }

    fn parse_first(json: &str, n: usize) -> Result<Cassette, String> {
        let raw: RawCassette = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut interactions = Vec::new();
        for (i, it) in raw.interactions.into_iter().take(n).enumerate() {
            let responses: Vec<Recorded> = match (it.response, it.response_stream) {
                (Some(r), _) => vec![r],
                (None, Some(stream)) => stream,
                (None, None) => return Err(format!("interaction {i} has no response")),
            };
            let response_type = match responses.first() {
                Some(r) => descriptor_of(r)?,
                None => return Err(format!("interaction {i} has an empty response stream")),
            };
            interactions.push(Interaction {
                request_type: descriptor_of(&it.request)?,
                request: it.request.message,
                response_type,
                responses: responses.into_iter().map(|r| r.message).collect(),
            });
        }
        Ok(Cassette { interactions, storage: Vec::new() })
    }

    /// Adds recorded object-storage exchanges (the HTTP half of a recording).
    pub fn with_storage(mut self, storage: Vec<StorageInteraction>) -> Cassette {
        self.storage = storage;
        self
    }

    /// Number of recorded interactions.
    pub fn len(&self) -> usize {
        self.interactions.len()
    }

    /// True for a cassette without interactions.
    pub fn is_empty(&self) -> bool {
        self.interactions.is_empty()
    }
}

/// What a client sent in one replayed call, next to what the Python SDK sent in the recording.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// `/package.Service/Method`.
    pub method: String,
    /// Request metadata as received (ASCII values only).
    pub metadata: BTreeMap<String, String>,
    /// The client's request, protobuf JSON.
    pub sent: Value,
    /// The recorded request, normalized through the same protobuf JSON printer.
    pub recorded: Value,
}

struct ReplayState {
    cassette: Cassette,
    used: Vec<bool>,
    exchanges: Vec<Exchange>,
    storage_used: Vec<bool>,
    storage_exchanges: Vec<StorageExchange>,
    /// This server's `host:port`: discovery and storage URLs are rewritten to it.
    address: String,
}

/// A running replay server.
pub struct ReplayServer {
    address: SocketAddr,
    state: Arc<Mutex<ReplayState>>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for ReplayServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayServer").field("address", &self.address).finish_non_exhaustive()
    }
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl ReplayServer {
    /// Serves `cassette` on `addr` (port 0 for a free port). Discovery answers are rewritten so
    /// that every service points at this server.
    pub async fn start(cassette: Cassette, addr: &str) -> std::io::Result<ReplayServer> {
        let listener = crate::server::bind(addr, "the replay server").await?;
        let address = listener.local_addr()?;
        let used = vec![false; cassette.len()];
        let storage_used = vec![false; cassette.storage.len()];
        let state = Arc::new(Mutex::new(ReplayState {
            cassette,
            used,
            exchanges: Vec::new(),
            storage_used,
            storage_exchanges: Vec::new(),
            address: address.to_string(),
        }));
        let router = axum::Router::new().fallback_service(ReplayService { state: state.clone() });
        let (tx, rx) = oneshot::channel::<()>();
        let server =
            tonic::transport::Server::builder().accept_http1(true).add_routes(tonic::service::Routes::from(router));
        tokio::spawn(async move {
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            let _ = server.serve_with_incoming_shutdown(incoming, async { rx.await.unwrap_or(()) }).await;
        });
        Ok(ReplayServer { address, state, shutdown: Some(tx) })
    }

    /// `host:port` of the server.
    pub fn endpoint(&self) -> String {
        self.address.to_string()
    }

    /// The calls replayed so far, in order.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).exchanges.clone()
    }

    /// How many recorded interactions (gRPC and storage) no call has consumed yet.
    pub fn unused(&self) -> usize {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.used.iter().chain(&state.storage_used).filter(|u| !**u).count()
    }

    /// The storage exchanges replayed so far, in order.
    pub fn storage_exchanges(&self) -> Vec<StorageExchange> {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).storage_exchanges.clone()
    }

    /// Checks that every replayed call sent exactly the recorded request (field order and
    /// JSON formatting aside) and every storage upload the recorded bytes; the error lists
    /// each difference.
    pub fn verify_requests(&self) -> Result<(), String> {
        let mut problems: Vec<String> = self
            .exchanges()
            .iter()
            .filter(|e| e.sent != e.recorded)
            .map(|e| format!("{}:\n  sent     {}\n  recorded {}", e.method, e.sent, e.recorded))
            .collect();
        problems.extend(self.storage_exchanges().iter().filter(|e| !e.body_matches).map(|e| {
            format!("{} {}: the body ({} bytes) differs from the recorded one", e.method, e.path_and_query, e.body_len)
        }));
        if problems.is_empty() { Ok(()) } else { Err(problems.join("\n")) }
    }
}

#[derive(Clone)]
struct ReplayService {
    state: Arc<Mutex<ReplayState>>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<axum::body::Body>> for ReplayService {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<axum::body::Body>) -> Self::Future {
        let grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/grpc"));
        if !grpc {
            return Box::pin(replay_storage(self.state.clone(), request));
        }
        let method = request.uri().path().to_owned();
        let handler = CallHandler { state: self.state.clone(), method };
        Box::pin(async move {
            // Unary and server-streaming calls look the same on the wire, so serve both as streams.
            let mut grpc = tonic::server::Grpc::new(RawCodec);
            Ok(grpc.server_streaming(handler, request).await)
        })
    }
}

struct CallHandler {
    state: Arc<Mutex<ReplayState>>,
    method: String,
}

type ResponseStream = Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, Status>> + Send>>;

impl Service<tonic::Request<Bytes>> for CallHandler {
    type Response = tonic::Response<ResponseStream>;
    type Error = Status;
    type Future = BoxFuture<Result<Self::Response, Status>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let result = self.replay(request);
        Box::pin(async move { result })
    }
}

impl CallHandler {
    fn replay(&self, request: tonic::Request<Bytes>) -> Result<tonic::Response<ResponseStream>, Status> {
        let (service, method) = self.method.trim_start_matches('/').rsplit_once('/').ok_or_else(|| {
            Status::new(tonic::Code::Unimplemented, format!("replay: malformed path {}", self.method))
        })?;
        let descriptor = reflect::pool()
            .get_service_by_name(service)
            .and_then(|s| s.methods().find(|m| m.name() == method))
            .ok_or_else(|| {
                Status::new(tonic::Code::Unimplemented, format!("replay: unknown method {}", self.method))
            })?;
        let (input, output) = (descriptor.input(), descriptor.output());
        let metadata: BTreeMap<String, String> = request
            .metadata()
            .iter()
            .filter_map(|kv| match kv {
                tonic::metadata::KeyAndValueRef::Ascii(k, v) => {
                    Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned()))
                }
                tonic::metadata::KeyAndValueRef::Binary(..) => None,
            })
            .collect();
        let sent = reflect::to_json(input.full_name(), request.get_ref()).map_err(Status::invalid_argument)?;

        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let index = (0..state.cassette.len())
            .find(|&i| {
                let it = &state.cassette.interactions[i];
                !state.used[i] && it.request_type == input && it.response_type == output
            })
            .ok_or_else(|| {
                Status::failed_precondition(format!("replay: no recorded interaction left for {}", self.method))
            })?;
        state.used[index] = true;
        let interaction = state.cassette.interactions[index].clone();
        let normalize = |v: &Value, d: &MessageDescriptor| -> Result<Value, Status> {
            let bytes = reflect::from_json(d.full_name(), v).map_err(Status::internal)?;
            reflect::to_json(d.full_name(), &bytes).map_err(Status::internal)
        };
        let recorded = normalize(&interaction.request, &input)?;
        state.exchanges.push(Exchange { method: self.method.clone(), metadata, sent, recorded });

        let mut responses = Vec::new();
        for json in &interaction.responses {
            let mut json = json.clone();
            if let Some(list) = json.get_mut("endpoints") {
                for e in list.as_array_mut().into_iter().flatten() {
                    e["address"] = Value::String(state.address.clone());
                }
            }
            point_storage_here(&mut json, &format!("http://{}", state.address));
            responses.push(Bytes::from(reflect::from_json(output.full_name(), &json).map_err(Status::internal)?));
        }
        Ok(tonic::Response::new(Box::pin(futures_util::stream::iter(responses.into_iter().map(Ok)))))
    }
}

/// Rewrites every presigned storage URL in a response to this server.
fn point_storage_here(json: &mut Value, origin: &str) {
    match json {
        Value::String(s) if s.starts_with(STORAGE_ORIGIN) => *s = format!("{origin}{}", &s[STORAGE_ORIGIN.len()..]),
        Value::Array(items) => items.iter_mut().for_each(|v| point_storage_here(v, origin)),
        Value::Object(fields) => fields.values_mut().for_each(|v| point_storage_here(v, origin)),
        _ => {}
    }
}

/// Serves one storage request from the recorded exchange with the same method, path and query.
async fn replay_storage(
    state: Arc<Mutex<ReplayState>>,
    request: http::Request<axum::body::Body>,
) -> Result<http::Response<tonic::body::Body>, Infallible> {
    use http_body_util::BodyExt;
    let method = request.method().as_str().to_owned();
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
    let body = request.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let index = (0..state.cassette.storage.len()).find(|&i| {
        let s = &state.cassette.storage[i];
        !state.storage_used[i] && s.method == method && s.path_and_query == path_and_query
    });
    let Some(index) = index else {
        let mut response = http::Response::new(tonic::body::Body::new(http_body_util::Full::new(Bytes::from(
            format!("replay: no recorded storage exchange left for {method} {path_and_query}"),
        ))));
        *response.status_mut() = http::StatusCode::NOT_FOUND;
        return Ok(response);
    };
    state.storage_used[index] = true;
    let recorded = state.cassette.storage[index].clone();
    state.storage_exchanges.push(StorageExchange {
        method,
        path_and_query,
        body_matches: body.as_ref() == recorded.request_body.as_slice(),
        body_len: body.len(),
        body: body.to_vec(),
        recorded_body: recorded.request_body.clone(),
    });
    let mut response =
        http::Response::new(tonic::body::Body::new(http_body_util::Full::new(Bytes::from(recorded.body.clone()))));
    *response.status_mut() = http::StatusCode::from_u16(recorded.status).unwrap_or(http::StatusCode::OK);
    for (name, value) in &recorded.headers {
        let hop_by_hop = ["transfer-encoding", "connection", "keep-alive", "content-length"];
        if hop_by_hop.contains(&name.to_ascii_lowercase().as_str()) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(name.as_str()), http::HeaderValue::try_from(value.as_str()))
        {
            response.headers_mut().append(n, v);
        }
    }
    Ok(response)
}

/// Passes message bytes through unchanged.
struct RawCodec;

struct RawEncoder;
struct RawDecoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        bytes::BufMut::put(dst, item);
        Ok(())
    }
}

impl Decoder for RawDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawEncoder;
    type Decoder = RawDecoder;

    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }

    fn decoder(&mut self) -> RawDecoder {
        RawDecoder
    }
}
