//! Cassette replay server, a test utility: serves the responses recorded between the official
//! Python SDK and the real cloud (protobuf JSON, one request and its response or response
//! stream per interaction) and records what the client sent, so a test can check that a client
//! sends exactly the recorded requests and reads the real responses.
//!
//! Any method of the API is served generically: an incoming call consumes the next unused
//! interaction whose request and response types match the method. Discovery answers can be
//! rewritten to point every service at the replay server itself.

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
use tokio::{net::TcpListener, sync::oneshot};
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

/// A recorded conversation, loaded from a `.gprc.json` cassette.
#[derive(Debug, Clone)]
pub struct Cassette {
    interactions: Vec<Interaction>,
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

    /// Parses cassette JSON.
    pub fn parse(json: &str) -> Result<Cassette, String> {
        let raw: RawCassette = serde_json::from_str(json).map_err(|e| e.to_string())?;
        let mut interactions = Vec::new();
        for (i, it) in raw.interactions.into_iter().enumerate() {
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
        Ok(Cassette { interactions })
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
    rewrite_discovery: Option<String>,
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
        let listener = TcpListener::bind(addr).await?;
        let address = listener.local_addr()?;
        let used = vec![false; cassette.len()];
        let state = Arc::new(Mutex::new(ReplayState {
            cassette,
            used,
            exchanges: Vec::new(),
            rewrite_discovery: Some(address.to_string()),
        }));
        let router = axum::Router::new().fallback_service(ReplayService { state: state.clone() });
        let (tx, rx) = oneshot::channel::<()>();
        let server = tonic::transport::Server::builder().add_routes(tonic::service::Routes::from(router));
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

    /// How many recorded interactions no call has consumed yet.
    pub fn unused(&self) -> usize {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).used.iter().filter(|u| !**u).count()
    }

    /// Checks that every replayed call sent exactly the recorded request (field order and
    /// JSON formatting aside); the error lists each difference.
    pub fn verify_requests(&self) -> Result<(), String> {
        let problems: Vec<String> = self
            .exchanges()
            .iter()
            .filter(|e| e.sent != e.recorded)
            .map(|e| format!("{}:\n  sent     {}\n  recorded {}", e.method, e.sent, e.recorded))
            .collect();
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
            if let (Some(addr), Some(list)) = (&state.rewrite_discovery, json.get_mut("endpoints")) {
                for e in list.as_array_mut().into_iter().flatten() {
                    e["address"] = Value::String(addr.clone());
                }
            }
            responses.push(Bytes::from(reflect::from_json(output.full_name(), &json).map_err(Status::internal)?));
        }
        Ok(tonic::Response::new(Box::pin(futures_util::stream::iter(responses.into_iter().map(Ok)))))
    }
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
