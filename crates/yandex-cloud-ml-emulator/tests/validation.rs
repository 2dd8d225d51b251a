//! The emulator's own validation, through the generated gRPC clients (no SDK in between, so
//! requests the SDK would refuse locally reach the server).

use tonic::{Code, Request, transport::Channel};
use yandex_cloud_ml_emulator::{Emulator, EmulatorHandle};
use yandex_cloud_ml_proto::yandex::cloud::ai::foundation_models::v1::{
    self as pb, text_generation_service_client::TextGenerationServiceClient,
    tokenizer_service_client::TokenizerServiceClient,
};

async fn start() -> (EmulatorHandle, Channel) {
    let emulator = Emulator::builder().folder("b1gfolder").start("127.0.0.1:0").await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", emulator.endpoint())).unwrap().connect().await.unwrap();
    (emulator, channel)
}

fn authorized<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", "Api-Key test".parse().unwrap());
    r
}

fn user(text: &str) -> pb::Message {
    pb::Message { role: "user".into(), content: Some(pb::message::Content::Text(text.into())) }
}

fn request() -> pb::CompletionRequest {
    pb::CompletionRequest {
        model_uri: "gpt://b1gfolder/yandexgpt/latest".into(),
        completion_options: Some(pb::CompletionOptions::default()),
        messages: vec![user("hi")],
        ..Default::default()
    }
}

async fn status_of(channel: &Channel, r: pb::CompletionRequest) -> tonic::Status {
    let mut client = TextGenerationServiceClient::new(channel.clone());
    match client.completion(authorized(r)).await {
        Err(s) => s,
        Ok(resp) => {
            let mut stream = resp.into_inner();
            match stream.message().await {
                Err(s) => s,
                Ok(m) => panic!("expected an error, got {m:?}"),
            }
        }
    }
}

#[tokio::test]
async fn invalid_requests_get_invalid_argument_naming_the_field() {
    let (_emulator, channel) = start().await;
    let schema =
        |v: serde_json::Value| v.as_object().map(|o| yandex_cloud_ml_proto::json::object_to_struct(o).unwrap());
    let tool = |name: &str| pb::Tool {
        tool_type: Some(pb::tool::ToolType::Function(pb::FunctionTool { name: name.into(), ..Default::default() })),
    };
    let cases: Vec<(pb::CompletionRequest, Code, &str)> = vec![
        (pb::CompletionRequest { model_uri: "yandexgpt".into(), ..request() }, Code::InvalidArgument, "model_uri"),
        (
            pb::CompletionRequest { model_uri: "gpt://b1gfolder/yandexgpt".into(), ..request() },
            Code::InvalidArgument,
            "model_uri",
        ),
        (
            pb::CompletionRequest { model_uri: "gpt://b1gother/yandexgpt/latest".into(), ..request() },
            Code::PermissionDenied,
            "b1gother",
        ),
        (pb::CompletionRequest { messages: vec![], ..request() }, Code::InvalidArgument, "messages"),
        (
            pb::CompletionRequest { messages: vec![pb::Message { role: "user".into(), content: None }], ..request() },
            Code::InvalidArgument,
            "messages[0]",
        ),
        (
            pb::CompletionRequest {
                completion_options: Some(pb::CompletionOptions { temperature: Some(1.5), ..Default::default() }),
                ..request()
            },
            Code::InvalidArgument,
            "completion_options.temperature",
        ),
        (
            pb::CompletionRequest {
                completion_options: Some(pb::CompletionOptions { max_tokens: Some(-1), ..Default::default() }),
                ..request()
            },
            Code::InvalidArgument,
            "completion_options.max_tokens",
        ),
        (
            pb::CompletionRequest {
                tools: vec![tool("a")],
                tool_choice: Some(pb::ToolChoice {
                    tool_choice: Some(pb::tool_choice::ToolChoice::FunctionName("b".into())),
                }),
                ..request()
            },
            Code::InvalidArgument,
            "tool_choice.function_name",
        ),
        (pb::CompletionRequest { tools: vec![tool("")], ..request() }, Code::InvalidArgument, "tools[0].function.name"),
        (pb::CompletionRequest { tools: vec![tool("a"), tool("a")], ..request() }, Code::InvalidArgument, "duplicate"),
        (
            pb::CompletionRequest {
                response_format: Some(pb::completion_request::ResponseFormat::JsonSchema(pb::JsonSchema {
                    schema: schema(serde_json::json!({"type": 5})),
                })),
                ..request()
            },
            Code::InvalidArgument,
            "json_schema.schema.type",
        ),
        (
            pb::CompletionRequest { messages: vec![user(&"word ".repeat(40_000))], ..request() },
            Code::InvalidArgument,
            "context window",
        ),
    ];
    for (r, code, needle) in cases {
        let status = status_of(&channel, r).await;
        assert_eq!(status.code(), code, "{needle}: {status:?}");
        assert!(status.message().contains(needle), "{needle}: {}", status.message());
    }
}

#[tokio::test]
async fn missing_or_malformed_credentials_are_unauthenticated() {
    let (_emulator, channel) = start().await;
    let mut client = TextGenerationServiceClient::new(channel);
    let status = client.completion(Request::new(request())).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut r = Request::new(request());
    r.metadata_mut().insert("authorization", "Basic abc".parse().unwrap());
    assert_eq!(client.completion(r).await.unwrap_err().code(), Code::Unauthenticated);
}

#[tokio::test]
async fn tokenize_plain_text() {
    let (_emulator, channel) = start().await;
    let mut client = TokenizerServiceClient::new(channel);
    let response = client
        .tokenize(authorized(pb::TokenizeRequest {
            model_uri: "gpt://b1gfolder/yandexgpt/latest".into(),
            text: "hello world".into(),
        }))
        .await
        .unwrap()
        .into_inner();
    let texts: Vec<&str> = response.tokens.iter().map(|t| t.text.as_str()).collect();
    assert_eq!(texts, ["<s>", "hello", "▁world"]);
    let bad =
        client.tokenize(authorized(pb::TokenizeRequest { model_uri: "x".into(), text: "a".into() })).await.unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn health_service_reports_serving() {
    let (_emulator, channel) = start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let response =
        health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(response.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);
}
