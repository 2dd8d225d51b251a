//! The HTTP/JSON control surface, driven with plain HTTP/1.1 requests.

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use yandex_cloud_ml_emulator::Emulator;

async fn http(addr: std::net::SocketAddr, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
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

    let rule = json!({"prompt_contains": "hi", "answer": {"kind": "text", "text": "scripted"}, "times": 1});
    assert_eq!(http(control, "POST", "/scripts", Some(rule)).await.0, 200);
    let (status, scripts) = http(control, "GET", "/scripts", None).await;
    assert_eq!((status, scripts[0]["answer"]["text"].as_str()), (200, Some("scripted")));

    let (status, body) = http(control, "POST", "/scripts", Some(json!({"nonsense": 1}))).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("invalid JSON body"));

    assert_eq!(http(control, "PUT", "/operation-policy", Some(json!({"mode": "manual"}))).await.0, 200);
    assert_eq!(http(control, "GET", "/operations", None).await.1, json!([]));
    let (status, _) = http(control, "POST", "/operations/nope/complete", None).await;
    assert_eq!(status, 409);
    assert_eq!(http(control, "GET", "/journal", None).await.1, json!([]));
    assert_eq!(
        http(control, "GET", "/stats", None).await.1,
        json!({"requests": 0, "streams_cancelled": 0, "deadlines_exceeded": 0})
    );
    assert_eq!(http(control, "POST", "/reset", None).await.0, 200);
    assert_eq!(http(control, "GET", "/scripts", None).await.1, json!([]));
    assert_eq!(http(control, "GET", "/unknown", None).await.0, 404);
}
