//! The HTTP/2 connections gRPC calls travel on: one connection per address, made on first use
//! and made again after it closes, shared by every call to that address.
//!
//! This is all the SDK needs of a gRPC channel, so it does not use tonic's: that one puts a
//! queue and a task hop in front of every request and arms a timer of its own for the
//! `grpc-timeout` header, while the SDK bounds each call with its own deadline. Connections
//! are made by hyper-util's connector (DNS, happy eyeballs, TCP options) wrapped in rustls.

use std::{
    error::Error as StdError,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use futures_util::TryFutureExt;
use http::{HeaderValue, Uri, header::USER_AGENT};
use hyper::client::conn::http2::{Builder, SendRequest};
use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioExecutor};
use tonic::{Status, body::Body};
use tower_service::Service;

use crate::error::{Error, Result};

type HttpsConnector = hyper_rustls::HttpsConnector<HttpConnector>;

/// How connections are made: the same for every address.
#[derive(Clone)]
pub(crate) struct Connector {
    connector: HttpsConnector,
    user_agent: HeaderValue,
}

impl Connector {
    pub(crate) fn new(tls: rustls::ClientConfig, connect_timeout: Duration, user_agent: &str) -> Result<Connector> {
        let user_agent = HeaderValue::try_from(user_agent)
            .map_err(|_| Error::configuration(format!("user agent `{user_agent}` is not a valid header value")))?;
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false);
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_nodelay(true);
        // Idle connections are probed by the kernel (dead peers and silently dropped NAT
        // mappings are found in about a minute) instead of by HTTP/2 pings, which cost a lock
        // and a clock read on every frame of every call.
        tcp.set_keepalive(Some(Duration::from_secs(30)));
        tcp.set_keepalive_interval(Some(Duration::from_secs(10)));
        tcp.set_keepalive_retries(Some(3));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http2()
            .wrap_connector(tcp);
        Ok(Connector { connector, user_agent })
    }

    /// The channel to `scheme://address`; nothing is connected before its first call.
    pub(crate) fn channel(&self, scheme: &str, address: &str) -> Result<Channel> {
        let origin = Uri::builder()
            .scheme(scheme)
            .authority(address)
            .path_and_query("/")
            .build()
            .map_err(|e| Error::configuration(format!("invalid endpoint `{address}`: {e}")))?;
        Ok(Channel(Arc::new(Shared {
            connector: self.clone(),
            origin,
            connection: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        })))
    }
}

/// One address: its open connection, if any. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Channel(Arc<Shared>);

struct Shared {
    connector: Connector,
    origin: Uri,
    connection: Mutex<Option<SendRequest<Body>>>,
    /// Held while a connection is being made, so concurrent calls wait for one connection
    /// instead of each making their own.
    connecting: tokio::sync::Mutex<()>,
}

impl Channel {
    /// A gRPC client for one call on this channel.
    pub(crate) fn grpc(self) -> tonic::client::Grpc<Channel> {
        let origin = self.0.origin.clone();
        tonic::client::Grpc::with_origin(self, origin)
    }

    /// The open connection, or a new one.
    async fn connection(&self) -> std::result::Result<SendRequest<Body>, Status> {
        let _making = self.0.connecting.lock().await;
        if let Some(open) = self.open() {
            return Ok(open);
        }
        let io = self.0.connector.connector.clone().call(self.0.origin.clone()).await.map_err(unreachable)?;
        // Boxed, because hyper spawns a task per request whose size is that of the whole
        // connection state, and every spawn copies it.
        let (sender, connection) =
            Builder::new(TokioExecutor::new()).handshake(Box::new(io)).await.map_err(|e| unreachable(Box::new(e)))?;
        let address = self.0.origin.authority().map(|a| a.to_string()).unwrap_or_default();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(address, error = %e, "connection closed");
            }
        });
        *self.0.connection.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender.clone());
        Ok(sender)
    }

    fn open(&self) -> Option<SendRequest<Body>> {
        let connection = self.0.connection.lock().unwrap_or_else(|e| e.into_inner());
        connection.as_ref().filter(|c| !c.is_closed()).cloned()
    }
}

type ResponseFuture =
    Pin<Box<dyn Future<Output = std::result::Result<http::Response<hyper::body::Incoming>, Status>> + Send>>;

impl Service<http::Request<Body>> for Channel {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = Status;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::result::Result<(), Status>> {
        // A connection is made, if needed, by the call itself, under the call's deadline.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<Body>) -> ResponseFuture {
        request.headers_mut().insert(USER_AGENT, self.0.connector.user_agent.clone());
        // tonic reads hyper's errors (a reset stream, a connection that went away).
        let failed = |e: hyper::Error| Status::from_error(Box::new(e));
        // The usual case, an open connection, stays small: the future of making a connection
        // is many times the size of the one of sending a request.
        if let Some(mut open) = self.open() {
            let origin = self.0.origin.clone();
            return Box::pin(
                open.send_request(request).map_err(failed).and_then(|r| async move { grpc_only(r, &origin) }),
            );
        }
        let channel = self.clone();
        Box::pin(async move {
            let response = channel.connection().await?.send_request(request).await.map_err(failed)?;
            grpc_only(response, &channel.0.origin)
        })
    }
}

/// The response, if it is gRPC. Another server on the address (an HTTP/JSON API, a proxy's
/// error page) is named as such, instead of its body being read as gRPC frames.
fn grpc_only(
    response: http::Response<hyper::body::Incoming>,
    origin: &Uri,
) -> std::result::Result<http::Response<hyper::body::Incoming>, Status> {
    let content_type = response.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    // A trailers-only answer may carry its gRPC status without a content type.
    if content_type.is_some_and(|t| t.starts_with("application/grpc")) || response.headers().contains_key("grpc-status")
    {
        return Ok(response);
    }
    let status = response.status();
    let message = format!(
        "{} answered HTTP {status} with content type {}, not gRPC: check that this is the API's \
         address (an emulator's control port, for one, speaks HTTP/JSON)",
        origin.authority().map_or("the server", |a| a.as_str()),
        content_type.unwrap_or("(none)"),
    );
    // Gateways that are busy or restarting answer so too: those are worth a retry.
    Err(match status.as_u16() {
        429 | 502..=504 => Status::unavailable(message),
        _ => Status::internal(message),
    })
}

/// UNAVAILABLE for a connection that could not be made, saying why (refused, unreachable, a
/// rejected certificate) and keeping the cause.
fn unreachable(error: Box<dyn StdError + Send + Sync>) -> Status {
    let mut why: Vec<String> = Vec::new();
    let mut cause: Option<&(dyn StdError + 'static)> = Some(&*error);
    while let Some(c) = cause {
        let text = c.to_string();
        if why.last() != Some(&text) {
            why.push(text);
        }
        // An I/O error's `source` skips the error it wraps: step into it.
        cause = match c.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()) {
            Some(inner) => Some(inner),
            None => c.source(),
        };
    }
    let mut status = Status::unavailable(format!("connecting failed: {}", why.join(": ")));
    status.set_source(Arc::from(error));
    status
}
