//! `sdk.chat()`: the OpenAI-compatible API, where AI Studio serves every model family (Qwen3,
//! gpt-oss, Gemma, YandexGPT). A streamed answer, a tool call answered by its call id, an image
//! in a message, an embedding and the folder's model listing.

use futures_util::StreamExt;
use serde_json::json;
use yandex_cloud_ml_sdk::{
    Sdk,
    chat::{ChatMessage, ContentPart},
    tools::FunctionTool,
};

#[path = "connect/mod.rs"]
mod connect;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sdk, _emulator) = connect::sdk().await?;
    run(&sdk, &mut std::io::stdout()).await
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(sdk: &Sdk, out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let qwen = sdk.chat().completions("qwen3-235b-a22b-fp8");
    let mut stream = qwen.run_stream("Tell me about platypuses").await?;
    while let Some(delta) = stream.next().await {
        let delta = delta?;
        write!(out, "{}", delta.delta())?;
        if let Some(usage) = delta.usage() {
            writeln!(out, "\n[{} tokens in, {} out]", usage.input_text_tokens, usage.completion_tokens)?;
        }
    }

    // Tools: the answer to a call names the call's id.
    let calculator = FunctionTool::new(
        "calculator",
        json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
    );
    let with_tools = qwen.configure(|c| c.tool(calculator))?;
    let question = ChatMessage::user("Use the calculator: 7@8");
    let asked = with_tools.run(question.clone()).await?;
    let call = &asked.tool_calls()[0];
    writeln!(out, "the model calls {}({})", call.name(), call.arguments())?;
    let answer = with_tools.run(vec![question, (&asked).into(), call.result("-5")]).await?;
    writeln!(out, "{}", answer.text())?;

    // An image travels inline as a data URL (Gemma reads images; the emulator sees a marker).
    let png = [0x89, b'P', b'N', b'G', b'\r', b'\n', 0x1a, b'\n'];
    let picture =
        ChatMessage::user_parts([ContentPart::text("What is in the picture?"), ContentPart::image("image/png", png)]);
    writeln!(out, "{}", sdk.chat().completions("gemma-3-27b-it").run(picture).await?.text().replace('\n', " "))?;

    let vector = sdk.chat().text_embeddings("text-search-doc").run("hello").await?;
    writeln!(out, "an embedding of {} dimensions", vector.len())?;
    let models = sdk.chat().models().await?;
    let chat_models = models.iter().filter(|m| m.is_completions()).count();
    writeln!(out, "{} models, {chat_models} of them for chat", models.len())?;
    Ok(())
}
