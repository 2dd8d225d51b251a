//! The test controls: in process through [`Control`], and over HTTP/JSON on a separate port
//! so the emulated cloud API stays exactly the cloud's.
//!
//! The HTTP API is not for browsers: it listens on loopback unless remote access is enabled,
//! every request needs `authorization: Bearer <control token>` (generated at start and printed,
//! or configured), the `Host` header must name a loopback host unless remote access is enabled
//! (so DNS rebinding cannot reach it), and requests that change state must be
//! `application/json`. A web page can therefore neither read nor change it.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Json, Router,
    extract::{Path, Request, State as Extract},
    http::{HeaderMap, Method, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use serde::Deserialize;
use serde_json::json;

use crate::{FaultRule, JournalEntry, OperationPolicy, ScriptRule, Stats, state::State};

/// The emulator's control surface for tests (not part of the cloud API).
#[derive(Clone)]
pub struct Control {
    pub(crate) state: Arc<State>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Control")
    }
}

impl Control {
    /// Requests received so far (oldest first), credentials fingerprinted.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.state.journal.entries()
    }

    /// Adds a scripted reply; rejects one whose tool-call arguments are not JSON objects the
    /// API can carry, and one past the bounds ([`MAX_SCRIPTS`](crate::MAX_SCRIPTS) rules,
    /// [`MAX_SCRIPT_BYTES`](crate::MAX_SCRIPT_BYTES) bytes).
    pub fn add_script(&self, rule: ScriptRule) -> Result<(), String> {
        self.state.engine.add(rule)
    }

    /// The active scripted replies.
    pub fn scripts(&self) -> Vec<ScriptRule> {
        self.state.engine.list()
    }

    /// Ids of all stored operations.
    pub fn operations(&self) -> Vec<String> {
        self.state.operations.ids()
    }

    /// Finishes a running operation with its result, waiting (up to 10 s) for its work to
    /// produce it.
    pub async fn complete_operation(&self, id: &str) -> Result<(), tonic::Status> {
        self.state.operations.complete_when_ready(id, None, std::time::Duration::from_secs(10)).await.map(|_| ())
    }

    /// Finishes a running operation with an error.
    pub fn fail_operation(&self, id: &str, code: tonic::Code, message: &str) -> Result<(), tonic::Status> {
        crate::faults::check_error_code(code as i32).map_err(tonic::Status::invalid_argument)?;
        let error = yandex_cloud_ml_proto::google::rpc::Status {
            code: code as i32,
            message: message.to_owned(),
            details: vec![],
        };
        self.state.operations.complete(id, Some(error)).map(|_| ())
    }

    /// Changes when new operations finish.
    pub fn set_operation_policy(&self, policy: OperationPolicy) {
        self.state.operations.set_policy(policy);
    }

    /// Adds a fault injection rule at run time.
    ///
    /// Rules that could not act as written (a status code outside 1–16, a probability outside
    /// [0, 1]) are refused with the reason, and so is a rule past
    /// [`MAX_FAULT_RULES`](crate::MAX_FAULT_RULES).
    pub fn add_fault(&self, rule: FaultRule) -> Result<(), String> {
        rule.check()?;
        self.state.faults().add(rule)
    }

    /// The active fault rules.
    pub fn faults(&self) -> Vec<FaultRule> {
        self.state.faults().rules()
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.state.reset_faults(false);
    }

    /// Expires every IAM token issued so far (clients must get new ones).
    pub fn expire_tokens(&self) {
        self.state.tokens.expire_all();
    }

    /// What the emulator observed: requests, cancelled streams, exceeded deadlines.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// Every tuned model's URI suffix and the bytes of training rows it keeps (all of them
    /// together are bounded by `max_tuned_model_bytes`).
    pub fn tuned_models(&self) -> Vec<(String, u64)> {
        self.state.tuning.models.sizes()
    }

    /// Deletes a tuned model (and its file under the data directory), freeing its bytes; the
    /// cloud has no such call. False if no tuned model has this suffix.
    pub fn delete_tuned_model(&self, suffix: &str) -> bool {
        self.state.tuning.unregister(suffix)
    }

    /// Forgets operations, issued tokens, scripted replies, the journal and runtime fault rules.
    pub fn reset(&self) {
        self.state.reset();
    }
}

/// The control API's endpoints, as `GET /` lists them.
const ENDPOINTS: &[(&str, &str)] = &[
    ("GET /journal", "every call received: method, metadata, request (credentials fingerprinted)"),
    ("GET /stats", "requests, cancelled streams, exceeded deadlines, the local model's work"),
    ("GET|POST /scripts", "scripted replies: list, add one"),
    ("GET|POST|DELETE /faults", "fault rules: list, add one, clear"),
    ("POST /tokens/expire", "expire every IAM token issued so far"),
    ("GET /operations", "the ids of the operations kept"),
    ("POST /operations/{id}/complete", "finish a running operation with its result"),
    ("POST /operations/{id}/fail", "finish a running operation with an error {code, message}"),
    ("PUT /operation-policy", "how new operations finish: at once, after N polls, after a delay, or by hand"),
    ("GET /tuned-models", "tuned models and the bytes they keep"),
    ("DELETE /tuned-models/{suffix}", "delete a tuned model"),
    ("POST /reset", "forget operations, tokens, scripts, the journal and runtime faults"),
];

/// Who may use the HTTP control API.
#[derive(Clone)]
struct Access {
    token: Arc<str>,
    allow_remote: bool,
}

/// Binds `addr` and serves the control API in the background.
pub(crate) async fn start(
    addr: &str,
    control: Control,
    token: String,
    allow_remote: bool,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = crate::server::bind(addr, "the control API").await?;
    let local = listener.local_addr()?;
    if !allow_remote && !local.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "the control API would listen on {local}, which is not a loopback address; \
                 bind it to 127.0.0.1, or enable remote control access explicitly"
            ),
        ));
    }
    let access = Access { token: token.into(), allow_remote };
    let router = Router::new()
        .route(
            "/",
            get(|| async {
                Json(ENDPOINTS.iter().map(|(e, what)| json!({"endpoint": e, "does": what})).collect::<Vec<_>>())
            }),
        )
        .route("/journal", get(|c: Extract<Control>| async move { Json(c.journal()) }))
        .route("/stats", get(|c: Extract<Control>| async move { Json(c.stats()) }))
        .route("/scripts", get(|c: Extract<Control>| async move { Json(c.scripts()) }).post(add_script))
        .route(
            "/faults",
            get(|c: Extract<Control>| async move { Json(c.faults()) }).post(add_fault).delete(clear_faults),
        )
        .route("/tokens/expire", post(expire_tokens))
        .route("/operations", get(|c: Extract<Control>| async move { Json(c.operations()) }))
        .route("/operations/{id}/complete", post(complete_operation))
        .route("/operations/{id}/fail", post(fail_operation))
        .route("/operation-policy", put(set_policy))
        .route("/reset", post(reset))
        .route(
            "/tuned-models",
            get(|c: Extract<Control>| async move {
                let models: Vec<_> = c
                    .tuned_models()
                    .into_iter()
                    .map(|(suffix, bytes)| json!({"suffix": suffix, "bytes": bytes}))
                    .collect();
                Json(models)
            }),
        )
        .route("/tuned-models/{suffix}", axum::routing::delete(delete_tuned_model))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "unknown control endpoint; see the emulator docs") })
        .layer(middleware::from_fn_with_state(access, guard))
        .with_state(control);
    let task = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            tracing::error!(error = %e, "control API stopped");
        }
    });
    Ok((local, task))
}

fn error(status: StatusCode, message: impl std::fmt::Display) -> Response {
    (status, Json(json!({"error": message.to_string()}))).into_response()
}

fn ok() -> Response {
    Json(json!({"ok": true})).into_response()
}

fn loopback_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()) else { return false };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn guard(Extract(access): Extract<Access>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    if !access.allow_remote && !loopback_host(headers) {
        return error(StatusCode::FORBIDDEN, "the Host header must name a loopback host");
    }
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !same(presented.as_bytes(), access.token.as_bytes()) {
        return error(
            StatusCode::UNAUTHORIZED,
            "send `authorization: Bearer <control token>` (printed by the emulator at start)",
        );
    }
    let changes_state = matches!(*request.method(), Method::POST | Method::PUT | Method::DELETE);
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")));
    if changes_state && !json {
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "requests that change state must be application/json");
    }
    next.run(request).await
}

/// A JSON body, or a 400 that says what is wrong with it.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response>> {
    let body = if body.iter().all(u8::is_ascii_whitespace) { b"null".as_slice() } else { body };
    serde_json::from_slice(body)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {e}"))))
}

async fn add_script(Extract(c): Extract<Control>, body: axum::body::Bytes) -> Response {
    match parse::<ScriptRule>(&body) {
        Ok(rule) => match c.add_script(rule) {
            Ok(()) => ok(),
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        Err(r) => *r,
    }
}

async fn add_fault(Extract(c): Extract<Control>, body: axum::body::Bytes) -> Response {
    match parse::<FaultRule>(&body) {
        Ok(rule) => match c.add_fault(rule) {
            Ok(()) => ok(),
            Err(e) => error(StatusCode::BAD_REQUEST, e),
        },
        Err(r) => *r,
    }
}

async fn clear_faults(Extract(c): Extract<Control>) -> Response {
    c.clear_faults();
    ok()
}

async fn expire_tokens(Extract(c): Extract<Control>) -> Response {
    c.expire_tokens();
    ok()
}

async fn delete_tuned_model(Extract(c): Extract<Control>, Path(suffix): Path<String>) -> Response {
    if c.delete_tuned_model(&suffix) { ok() } else { error(StatusCode::NOT_FOUND, "no tuned model has this suffix") }
}

async fn reset(Extract(c): Extract<Control>) -> Response {
    c.reset();
    ok()
}

async fn complete_operation(Extract(c): Extract<Control>, Path(id): Path<String>) -> Response {
    match c.complete_operation(&id).await {
        Ok(()) => ok(),
        Err(s) => error(StatusCode::CONFLICT, s.message()),
    }
}

async fn fail_operation(Extract(c): Extract<Control>, Path(id): Path<String>, body: axum::body::Bytes) -> Response {
    #[derive(Deserialize)]
    struct Failure {
        code: i32,
        message: String,
    }
    match parse::<Failure>(&body) {
        Ok(f) => match crate::faults::check_error_code(f.code) {
            Err(e) => error(StatusCode::BAD_REQUEST, e),
            Ok(()) => match c.fail_operation(&id, tonic::Code::from_i32(f.code), &f.message) {
                Ok(()) => ok(),
                Err(s) => error(StatusCode::CONFLICT, s.message()),
            },
        },
        Err(r) => *r,
    }
}

async fn set_policy(Extract(c): Extract<Control>, body: axum::body::Bytes) -> Response {
    match parse::<OperationPolicy>(&body) {
        Ok(p) => {
            c.set_operation_policy(p);
            ok()
        }
        Err(r) => *r,
    }
}

/// The shortest control token accepted: anyone holding the token can read every request and
/// answer in the journal, reset state and inject faults.
pub(crate) const MIN_TOKEN_CHARS: usize = 16;

/// A random control token (32 hex digits, 128 bits from the operating system's cryptographic
/// source) when none is configured.
pub(crate) fn new_token() -> std::io::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| std::io::Error::other("no cryptographic random source for the control token"))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Refuses a configured token that would leave the control API open or guessable.
pub(crate) fn check_token(token: &str) -> Result<(), String> {
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(format!(
            "the control token has {chars} characters; at least {MIN_TOKEN_CHARS} are needed \
             (leave it unset and the emulator makes a random one)"
        ));
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err("the control token must be printable ASCII without spaces (it is sent as a header)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_pass() {
        let with = |h: &str| {
            let mut m = HeaderMap::new();
            m.insert(axum::http::header::HOST, h.parse().unwrap());
            loopback_host(&m)
        };
        assert!(with("127.0.0.1:8080") && with("localhost") && with("[::1]:9") && with("LOCALHOST:1"));
        assert!(!with("evil.example:8080") && !with("10.0.0.1") && !with("127.0.0.1.evil.example"));
        assert!(!loopback_host(&HeaderMap::new()));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert!(a.len() == 32 && a != b && check_token(&a).is_ok());
        assert!(check_token("").unwrap_err().contains("0 characters; at least 16"));
        assert!(check_token("short-token").is_err() && check_token("sixteen chars ok").is_err());
    }

    #[test]
    fn request_bodies_parse_with_clear_errors() {
        assert!(parse::<serde_json::Value>(b" ").is_ok());
        assert!(parse::<ScriptRule>(b"{}").is_err());
    }
}
