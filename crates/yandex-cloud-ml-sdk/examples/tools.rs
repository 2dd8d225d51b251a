//! Function calling: the model asks for a call, the program runs it, the model answers.

use serde::Deserialize;
use yandex_cloud_ml_sdk::{
    Sdk,
    completions::Message,
    tools::{FunctionTool, ToolChoice, ToolResult},
};

/// Adds numbers.
#[derive(Deserialize, schemars::JsonSchema)]
struct AddNumbers {
    numbers: Vec<i64>,
}

#[path = "connect/mod.rs"]
mod connect;

#[tokio::main]
pub async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (sdk, _emulator) = connect::sdk().await?;
    run(&sdk, &mut std::io::stdout()).await
}

/// The example, writing what it shows to `out` (stdout when run; a buffer in the tests).
pub async fn run(sdk: &Sdk, out: &mut dyn std::io::Write) -> Result<(), Box<dyn std::error::Error>> {
    let tool = FunctionTool::from_type::<AddNumbers>();
    let model = sdk
        .models()
        .completions("yandexgpt")
        .configure(|c| c.tool(tool).tool_choice(ToolChoice::Auto).parallel_tool_calls(false))?;

    let mut history = vec![Message::user("Use AddNumbers to add 19 and 23")];
    loop {
        let result = model.run(history.clone()).await?;
        if result.tool_calls().is_empty() {
            writeln!(out, "answer: {}", result.text())?;
            break;
        }
        history.push(Message::from(&result)); // echoes the calls exactly
        let mut results = Vec::new();
        for call in result.tool_calls() {
            let args: AddNumbers = call.function().ok_or("not a function call")?.arguments_as()?;
            let sum: i64 = args.numbers.iter().sum();
            writeln!(out, "calling {}({:?}) = {sum}", call.name(), args.numbers)?;
            results.push(ToolResult::for_call(call, sum)?);
        }
        history.push(Message::tool_results(results));
    }
    Ok(())
}
