//! The control surface over HTTP/JSON, on its own port so the emulated cloud API stays exactly
//! the cloud's. For tests and tools in other processes (the in-process API is [`Control`]).
//!
//! Endpoints are listed in the crate documentation.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request, Response, StatusCode, body::Incoming, service::service_fn};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::{Control, FaultRule, OperationPolicy, ScriptRule};

const MAX_BODY: usize = 1 << 20;

/// Serves the control API on `listener` until the task is dropped.
pub(crate) async fn serve(listener: TcpListener, control: Control) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let control = control.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let control = control.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(control, req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

/// Binds `addr` and serves the control API in the background; returns the bound address.
pub(crate) async fn start(addr: &str, control: Control) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((local, tokio::spawn(serve(listener, control))))
}

fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(hyper::header::CONTENT_TYPE, hyper::header::HeaderValue::from_static("application/json"));
    response
}

fn bad_request(message: impl std::fmt::Display) -> Response<Full<Bytes>> {
    reply(StatusCode::BAD_REQUEST, json!({"error": message.to_string()}))
}

async fn body_json<T: serde::de::DeserializeOwned>(req: Request<Incoming>) -> Result<T, Response<Full<Bytes>>> {
    let bytes = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| bad_request(format!("cannot read body: {e}")))?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| bad_request(format!("invalid JSON body: {e}")))
}

async fn handle(control: Control, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path: Vec<String> = req.uri().path().trim_matches('/').split('/').map(str::to_owned).collect();
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    let ok = |v: Value| reply(StatusCode::OK, v);
    let to_value = |v: Result<Value, serde_json::Error>| v.unwrap_or(Value::Null);
    match (req.method().clone(), segments.as_slice()) {
        (Method::GET, ["journal"]) => ok(to_value(serde_json::to_value(control.journal()))),
        (Method::GET, ["stats"]) => ok(to_value(serde_json::to_value(control.stats()))),
        (Method::GET, ["scripts"]) => ok(to_value(serde_json::to_value(control.scripts()))),
        (Method::POST, ["scripts"]) => match body_json::<ScriptRule>(req).await {
            Ok(rule) => {
                control.add_script(rule);
                ok(json!({"ok": true}))
            }
            Err(r) => r,
        },
        (Method::GET, ["faults"]) => ok(to_value(serde_json::to_value(control.faults()))),
        (Method::POST, ["faults"]) => match body_json::<FaultRule>(req).await {
            Ok(rule) => {
                control.add_fault(rule);
                ok(json!({"ok": true}))
            }
            Err(r) => r,
        },
        (Method::DELETE, ["faults"]) => {
            control.clear_faults();
            ok(json!({"ok": true}))
        }
        (Method::POST, ["tokens", "expire"]) => {
            control.expire_tokens();
            ok(json!({"ok": true}))
        }
        (Method::GET, ["operations"]) => ok(json!(control.operations())),
        (Method::POST, ["operations", id, "complete"]) => match control.complete_operation(id) {
            Ok(()) => ok(json!({"ok": true})),
            Err(s) => reply(StatusCode::CONFLICT, json!({"error": s.message()})),
        },
        (Method::POST, ["operations", id, "fail"]) => {
            #[derive(serde::Deserialize)]
            struct Failure {
                code: i32,
                message: String,
            }
            let id = id.to_string();
            match body_json::<Failure>(req).await {
                Ok(f) => match control.fail_operation(&id, tonic::Code::from_i32(f.code), &f.message) {
                    Ok(()) => ok(json!({"ok": true})),
                    Err(s) => reply(StatusCode::CONFLICT, json!({"error": s.message()})),
                },
                Err(r) => r,
            }
        }
        (Method::PUT, ["operation-policy"]) => match body_json::<OperationPolicy>(req).await {
            Ok(p) => {
                control.set_operation_policy(p);
                ok(json!({"ok": true}))
            }
            Err(r) => r,
        },
        (Method::POST, ["reset"]) => {
            control.reset();
            ok(json!({"ok": true}))
        }
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "unknown control endpoint; see the emulator docs"})),
    }
}
