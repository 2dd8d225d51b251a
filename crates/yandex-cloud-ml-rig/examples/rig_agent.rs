//! A rig agent with two tools on a Yandex model (here the in-process emulator): rig runs the
//! tool loop, the model asks for both tools, and answers from their results. Then the same
//! agent streams. Run with `cargo run -p yandex-cloud-ml-rig --example rig_agent`.

use futures_util::StreamExt;
use rig_agent::{AgentBuilder, agent::MultiTurnStreamItem};
use rig_core::{
    streaming::{Item, StreamEvent},
    tool::PortableTool,
};
use yandex_cloud_ml_emulator::Emulator;
use yandex_cloud_ml_rig::RigExt;
use yandex_cloud_ml_sdk::Sdk;

#[derive(serde::Deserialize)]
pub struct Pair {
    a: i64,
    b: i64,
}

fn pair() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                       "required": ["a", "b"]})
}

pub struct Add;

impl PortableTool for Add {
    const NAME: &'static str = "add";
    type Args = Pair;
    type Output = i64;
    type Error = std::convert::Infallible;

    fn description(&self) -> String {
        "Adds two integers".into()
    }

    fn parameters(&self) -> serde_json::Value {
        pair()
    }

    async fn call(&self, p: Pair) -> Result<i64, Self::Error> {
        Ok(p.a + p.b)
    }
}

pub struct Multiply;

impl PortableTool for Multiply {
    const NAME: &'static str = "multiply";
    type Args = Pair;
    type Output = i64;
    type Error = std::convert::Infallible;

    fn description(&self) -> String {
        "Multiplies two integers".into()
    }

    fn parameters(&self) -> serde_json::Value {
        pair()
    }

    async fn call(&self, p: Pair) -> Result<i64, Self::Error> {
        Ok(p.a * p.b)
    }
}

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    run(&mut std::io::stdout()).await
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let emulator = Emulator::builder().start("127.0.0.1:0").await?;
    // With real credentials: `Sdk::from_env()?`.
    let sdk = Sdk::builder().emulator(emulator.endpoint()).build()?;
    let model = sdk.models().completions("yandexgpt").configure(|c| c.temperature(0.1))?;

    let agent = AgentBuilder::new(model.rig())
        .preamble("You are a calculator. Use the tools.")
        .tool(Add)
        .tool(Multiply)
        // Each tool round trip is one more model call.
        .default_max_turns(3)
        .build();

    let question = "Use add and multiply on 6 and 7.";
    let answer = agent.prompt(question).await?;
    writeln!(out, "answer: {}", answer.output())?;

    write!(out, "streamed:")?;
    let mut stream = agent.prompt(question).stream();
    while let Some(item) = stream.next().await {
        match item? {
            MultiTurnStreamItem::ToolCall { tool_call, .. } => write!(out, " [call {}]", tool_call.function.name)?,
            MultiTurnStreamItem::StreamAssistantItem(Item::Event(StreamEvent::Text { text, .. })) => {
                write!(out, " {text}")?
            }
            _ => {}
        }
    }
    writeln!(out)?;
    Ok(())
}
