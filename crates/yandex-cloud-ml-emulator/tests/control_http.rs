//! The HTTP/JSON control surface, driven with plain HTTP/1.1 requests: what it does, and that
//! a web page cannot use it (token, Host check, JSON content type, loopback only).

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yandex_cloud_ml_emulator::{ControlToken, Emulator, EmulatorConfig};

#[derive(Clone)]
struct Req<'a> {
    method: &'a str,
    path: &'a str,
    body: Option<Value>,
    token: Option<&'a str>,
    host: &'a str,
    content_type: &'a str,
}

async fn send(addr: std::net::SocketAddr, r: Req<'_>) -> (u16, Value) {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = r.body.map(|b| b.to_string()).unwrap_or_default();
    let auth = r.token.map(|t| format!("authorization: Bearer {t}\r\n")).unwrap_or_default();
    let request = format!(
        "{} {} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n{auth}content-type: {}\r\ncontent-length: {}\r\n\r\n{body}",
        r.method,
        r.path,
        r.host,
        r.content_type,
        body.len()
    );
    sock.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    sock.read_to_string(&mut raw).await.unwrap();
    let status: u16 = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn scripts_operations_journal_and_reset_over_http() {
    let mut emulator = Emulator::builder().start("127.0.0.1:0").await.unwrap();
    let control = emulator.serve_control("127.0.0.1:0").await.unwrap();
    let token = emulator.control_token().to_owned();
    let http = |method: &'static str, path: &'static str, body: Option<Value>| {
        let token = token.clone();
        async move {
            let r =
                Req { method, path, body, token: Some(&token), host: "127.0.0.1", content_type: "application/json" };
            send(control, r).await
        }
    };

    let rule = json!({"prompt_contains": "hi", "answer": {"kind": "text", "text": "scripted"}, "times": 1});
    assert_eq!(http("POST", "/scripts", Some(rule)).await.0, 200);
    let (status, scripts) = http("GET", "/scripts", None).await;
    assert_eq!((status, scripts[0]["answer"]["text"].as_str()), (200, Some("scripted")));

    let (status, body) = http("POST", "/scripts", Some(json!({"nonsense": 1}))).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("invalid JSON body"));
    let deep_call = json!({"kind": "tool_calls", "calls": [{"name": "f", "arguments": "not an object"}]});
    let (status, body) = http("POST", "/scripts", Some(json!({"answer": deep_call}))).await;
    assert_eq!(status, 400, "{body}");

    assert_eq!(http("PUT", "/operation-policy", Some(json!({"mode": "manual"}))).await.0, 200);
    assert_eq!(http("GET", "/operations", None).await.1, json!([]));
    let (status, _) = http("POST", "/operations/nope/complete", None).await;
    assert_eq!(status, 409);
    assert_eq!(http("GET", "/journal", None).await.1, json!([]));
    assert_eq!(
        http("GET", "/stats", None).await.1,
        json!({"requests": 0, "streams_cancelled": 0, "deadlines_exceeded": 0, "model_generations_running": 0,
               "model_tokens_generated": 0})
    );
    assert_eq!(http("POST", "/reset", None).await.0, 200);
    // `GET /` lists the endpoints.
    let (status, index) = http("GET", "/", None).await;
    assert_eq!(status, 200);
    assert!(index.as_array().unwrap().iter().any(|e| e["endpoint"] == "DELETE /tuned-models/{suffix}"), "{index}");
    // Tuned models: listed with their bytes, deleted by suffix (none here).
    assert_eq!(http("GET", "/tuned-models", None).await, (200, json!([])));
    let (status, body) = http("DELETE", "/tuned-models/tamnosuchmodel", None).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("no tuned model has this suffix")));
    assert_eq!(http("GET", "/scripts", None).await.1, json!([]));
    assert_eq!(http("GET", "/unknown", None).await.0, 404);
}

#[tokio::test]
async fn a_web_page_cannot_read_or_change_anything() {
    let mut emulator = Emulator::builder().start("127.0.0.1:0").await.unwrap();
    let control = emulator.serve_control("127.0.0.1:0").await.unwrap();
    let token = emulator.control_token().to_owned();
    let base = Req {
        method: "GET",
        path: "/journal",
        body: None,
        token: None,
        host: "127.0.0.1",
        content_type: "application/json",
    };
    // No token, a wrong token: refused.
    assert_eq!(send(control, Req { ..base.clone() }).await.0, 401);
    assert_eq!(send(control, Req { token: Some("guess"), ..base.clone() }).await.0, 401);
    // DNS rebinding: the right token under a foreign Host is still refused.
    assert_eq!(send(control, Req { token: Some(&token), host: "attacker.example", ..base.clone() }).await.0, 403);
    // A "simple" cross-origin POST (text/plain) cannot reset or inject faults.
    let simple =
        Req { method: "POST", path: "/reset", token: Some(&token), content_type: "text/plain", ..base.clone() };
    assert_eq!(send(control, simple).await.0, 415);
    let fault = json!({"action": {"kind": "fail", "code": 14}});
    let simple = Req {
        method: "POST",
        path: "/faults",
        body: Some(fault),
        token: Some(&token),
        content_type: "text/plain",
        ..base.clone()
    };
    assert_eq!(send(control, simple).await.0, 415);
    assert!(emulator.control().faults().is_empty());
    // Status 0 is not an error code: a "fail with OK" rule is refused with the reason.
    let ok_fault = json!({"action": {"kind": "cut_stream", "after_chunks": 1, "code": 0}});
    let refused = send(
        control,
        Req { method: "POST", path: "/faults", body: Some(ok_fault), token: Some(&token), ..base.clone() },
    )
    .await;
    assert_eq!(refused.0, 400);
    assert!(refused.1.to_string().contains("not a gRPC error code"), "{}", refused.1);
    assert!(emulator.control().faults().is_empty());
    // The token holder on loopback is served.
    assert_eq!(send(control, Req { token: Some(&token), host: "localhost:1234", ..base.clone() }).await.0, 200);

    // Listening beyond loopback needs an explicit opt-in.
    let e = emulator.serve_control("0.0.0.0:0").await.unwrap_err();
    assert!(e.to_string().contains("not a loopback address"), "{e}");
    let config = EmulatorConfig { control_allow_remote: true, ..Default::default() };
    let mut open = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    let bound = open.serve_control("0.0.0.0:0").await.unwrap();
    assert!(bound.ip().is_unspecified());
}

#[tokio::test]
async fn rules_that_could_not_act_as_written_and_rules_past_the_bounds_are_refused() {
    use yandex_cloud_ml_emulator::{
        FaultAction, FaultRule, MAX_FAULT_RULES, MAX_SCRIPT_BYTES, MAX_SCRIPTS, ScriptRule, ScriptedAnswer,
    };
    let mut emulator = Emulator::builder().start("127.0.0.1:0").await.unwrap();
    let control = emulator.serve_control("127.0.0.1:0").await.unwrap();
    let token = emulator.control_token().to_owned();
    let http = |method: &'static str, path: String, body: Value| {
        let token = token.clone();
        async move {
            let r = Req {
                method,
                path: &path,
                body: Some(body),
                token: Some(&token),
                host: "127.0.0.1",
                content_type: "application/json",
            };
            send(control, r).await
        }
    };
    let code_error =
        |code: i32| format!("status code {code} is not a gRPC error code: use 1 (CANCELLED) to 16 (UNAUTHENTICATED)");

    let scripted_error = json!({"answer": {"kind": "error", "code": 0, "message": "x"}});
    assert_eq!(http("POST", "/scripts".into(), scripted_error).await, (400, json!({"error": code_error(0)})));
    let used_up = json!({"answer": {"kind": "text", "text": "x"}, "times": 0});
    let expected = json!({"error": "times must be at least 1 (leave it unset to answer every request)"});
    assert_eq!(http("POST", "/scripts".into(), used_up).await, (400, expected));
    let fault = json!({"method": "", "action": {"kind": "fail", "code": 17, "message": "x"}});
    assert_eq!(http("POST", "/faults".into(), fault).await, (400, json!({"error": code_error(17)})));
    for code in [0, 17] {
        let (status, body) =
            http("POST", "/operations/anything/fail".into(), json!({"code": code, "message": "x"})).await;
        assert_eq!((status, body), (400, json!({"error": code_error(code)})));
    }
    assert!(emulator.control().fail_operation("anything", tonic::Code::Ok, "x").is_err());

    // The same refusals at start.
    let rule = |times| ScriptRule {
        prompt_contains: String::new(),
        model: None,
        answer: ScriptedAnswer::Text { text: "x".into() },
        times,
    };
    let e = Emulator::builder().script(rule(Some(0))).start("127.0.0.1:0").await.unwrap_err();
    assert_eq!(e.to_string(), "scripted reply: times must be at least 1 (leave it unset to answer every request)");
    let zero = FaultRule::new("", FaultAction::Fail { code: 0, message: "x".into() });
    let e = Emulator::builder().fault(zero).start("127.0.0.1:0").await.unwrap_err();
    assert_eq!(e.to_string(), format!("fault rule: {}", code_error(0)));

    // Bounded stores: the rule past the bound is refused with the reason, the others stay.
    for _ in 0..MAX_SCRIPTS {
        emulator.control().add_script(rule(None)).unwrap();
    }
    let e = emulator.control().add_script(rule(None)).unwrap_err();
    assert!(e.starts_with(&format!("{MAX_SCRIPTS} scripted replies are active")), "{e}");
    emulator.control().reset();
    let big = ScriptRule { answer: ScriptedAnswer::Text { text: "x".repeat(MAX_SCRIPT_BYTES / 2 + 1) }, ..rule(None) };
    emulator.control().add_script(big.clone()).unwrap();
    let e = emulator.control().add_script(big).unwrap_err();
    assert!(e.contains(&format!("past {} MiB", MAX_SCRIPT_BYTES >> 20)), "{e}");
    assert_eq!(emulator.control().scripts().len(), 1);
    let delay = || FaultRule::new("Nothing", FaultAction::Delay { ms: 1 });
    for _ in 0..MAX_FAULT_RULES {
        emulator.control().add_fault(delay()).unwrap();
    }
    let (status, body) =
        http("POST", "/faults".into(), json!({"method": "x", "action": {"kind": "delay", "ms": 1}})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().starts_with(&format!("{MAX_FAULT_RULES} fault rules are active")),
        "{body}"
    );
    emulator.control().clear_faults();
    emulator.control().add_fault(delay()).unwrap();
}

#[tokio::test]
async fn an_empty_or_short_control_token_is_refused_at_start() {
    for token in ["", "0123456789", "has spaces in the token"] {
        let config = EmulatorConfig { control_token: Some(ControlToken(token.into())), ..Default::default() };
        let Err(e) = Emulator::builder().config(config).start("127.0.0.1:0").await else {
            panic!("the emulator started with the control token {token:?}");
        };
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("control token"), "{e}");
    }
    let config =
        EmulatorConfig { control_token: Some(ControlToken("a-long-enough-token".into())), ..Default::default() };
    let emulator = Emulator::builder().config(config).start("127.0.0.1:0").await.unwrap();
    assert_eq!(emulator.control_token(), "a-long-enough-token");
}
