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
        (
            pb::CompletionRequest { model_uri: "yandexgpt".into(), ..request() },
            Code::InvalidArgument,
            "model_uri: invalid model uri `yandexgpt`; expected gpt://<folder_id>/<model>/<version>",
        ),
        (
            pb::CompletionRequest { model_uri: "gpt://b1gfolder/yandexgpt".into(), ..request() },
            Code::InvalidArgument,
            "model_uri",
        ),
        (
            pb::CompletionRequest { model_uri: "gpt://b1gother/yandexgpt/latest".into(), ..request() },
            Code::PermissionDenied,
            "Permission to [resource-manager.folder b1gother] denied",
        ),
        (
            pb::CompletionRequest { messages: vec![], ..request() },
            Code::InvalidArgument,
            "messages: at least one message is required",
        ),
        (
            pb::CompletionRequest { messages: vec![pb::Message { role: "user".into(), content: None }], ..request() },
            Code::InvalidArgument,
            "messages[0]: one of text, tool_call_list, tool_result_list is required",
        ),
        (
            pb::CompletionRequest {
                completion_options: Some(pb::CompletionOptions { temperature: Some(1.5), ..Default::default() }),
                ..request()
            },
            Code::InvalidArgument,
            "completion_options.temperature: must be in [0, 1], got 1.5",
        ),
        (
            pb::CompletionRequest {
                completion_options: Some(pb::CompletionOptions { max_tokens: Some(-1), ..Default::default() }),
                ..request()
            },
            Code::InvalidArgument,
            "completion_options.max_tokens: must be positive, got -1",
        ),
        (
            pb::CompletionRequest {
                completion_options: Some(pb::CompletionOptions { max_tokens: Some(9000), ..Default::default() }),
                ..request()
            },
            Code::InvalidArgument,
            "exceeds the model limit of 8000",
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
            "tool_choice.function_name: unknown tool `b`",
        ),
        (
            pb::CompletionRequest { tools: vec![tool("")], ..request() },
            Code::InvalidArgument,
            "tools[0].function.name: must not be empty",
        ),
        (
            pb::CompletionRequest { tools: vec![tool("a"), tool("a")], ..request() },
            Code::InvalidArgument,
            "tools[1].function.name: duplicate tool name `a`",
        ),
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
            "more than the model's context window of 32768",
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
    assert_eq!(status.message(), "The request is missing the authorization header");
    let mut r = Request::new(request());
    r.metadata_mut().insert("authorization", "Basic abc".parse().unwrap());
    let status = client.completion(r).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(
        status.message(),
        "Unsupported authorization scheme `Basic`: use `Api-Key <key>` or `Bearer <IAM token>`"
    );
}

fn with_auth<T>(message: T, authorization: &str) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut().insert("authorization", authorization.parse().unwrap());
    r
}

/// An IAM token issued by the emulator for an OAuth token.
async fn issued_token(channel: &Channel) -> String {
    use yandex_cloud_ml_proto::yandex::cloud::iam::v1::{
        CreateIamTokenRequest, create_iam_token_request::Identity, iam_token_service_client::IamTokenServiceClient,
    };
    let r = CreateIamTokenRequest { identity: Some(Identity::YandexPassportOauthToken("y0_valid".into())) };
    IamTokenServiceClient::new(channel.clone()).create(Request::new(r)).await.unwrap().into_inner().iam_token
}

#[tokio::test]
async fn unknown_keys_and_expired_or_forgotten_tokens_are_refused_in_every_checking_mode() {
    use yandex_cloud_ml_emulator::AuthMode;
    let require =
        AuthMode::Require { api_keys: vec!["good".into()], iam_tokens: vec![], oauth_tokens: vec!["y0_valid".into()] };
    for mode in [AuthMode::AcceptAny, require] {
        let checks_keys = matches!(mode, AuthMode::Require { .. });
        let emulator = Emulator::builder().auth(mode).start("127.0.0.1:0").await.unwrap();
        let channel = Channel::from_shared(format!("http://{}", emulator.endpoint())).unwrap().connect().await.unwrap();
        let mut client = TextGenerationServiceClient::new(channel.clone());
        let status = |r: Result<_, tonic::Status>| {
            let s = r.unwrap_err();
            assert_eq!(s.code(), Code::Unauthenticated);
            s.message().to_owned()
        };
        if checks_keys {
            assert_eq!(status(client.completion(with_auth(request(), "Api-Key wrong")).await), "Unknown api key");
        }
        let token = issued_token(&channel).await;
        let bearer = format!("Bearer {token}");
        assert!(client.completion(with_auth(request(), &bearer)).await.is_ok());
        emulator.control().expire_tokens();
        assert_eq!(status(client.completion(with_auth(request(), &bearer)).await), "The token has expired");
        // Forgotten (a reset, or evicted): an emulator token it does not know is invalid.
        let token = issued_token(&channel).await;
        emulator.control().reset();
        let bearer = format!("Bearer {token}");
        assert_eq!(status(client.completion(with_auth(request(), &bearer)).await), "The token is invalid");
    }
    // `--open` checks no credentials at all, so such a token passes there.
    let emulator = Emulator::builder().auth(AuthMode::Open).start("127.0.0.1:0").await.unwrap();
    let channel = Channel::from_shared(format!("http://{}", emulator.endpoint())).unwrap().connect().await.unwrap();
    let mut client = TextGenerationServiceClient::new(channel);
    assert!(client.completion(with_auth(request(), "Bearer t1.emulator.forgotten")).await.is_ok());
}

#[tokio::test]
async fn operation_ids_that_name_nothing() {
    use yandex_cloud_ml_proto::yandex::cloud::operation::{
        GetOperationRequest, operation_service_client::OperationServiceClient,
    };
    let (_emulator, channel) = start().await;
    let mut client = OperationServiceClient::new(channel);
    let get = |id: &str| authorized(GetOperationRequest { operation_id: id.into() });
    let status = client.get(get("")).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::InvalidArgument, "operation_id: required"));
    let status = client.get(get("d7enotthere000000000")).await.unwrap_err();
    assert_eq!((status.code(), status.message()), (Code::NotFound, "Operation d7enotthere000000000 not found"));
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

#[tokio::test]
async fn a_request_too_deep_to_decode_is_invalid_argument_not_internal() {
    // A JSON schema nested 40 levels, built past the SDK's own limit as a raw client can.
    let (_emulator, channel) = start().await;
    let mut schema = prost_types::Struct::default();
    for _ in 0..40 {
        let inner = prost_types::Value { kind: Some(prost_types::value::Kind::StructValue(schema)) };
        schema = prost_types::Struct { fields: [("properties".to_owned(), inner)].into() };
    }
    let r = pb::CompletionRequest {
        response_format: Some(pb::completion_request::ResponseFormat::JsonSchema(pb::JsonSchema {
            schema: Some(schema),
        })),
        ..request()
    };
    let status = status_of(&channel, r).await;
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(status.message().starts_with("the request is nested too deeply to decode"), "{}", status.message());
}
