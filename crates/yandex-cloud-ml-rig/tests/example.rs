//! The example runs against the in-process emulator as part of the tests.

#[allow(dead_code)] // `main` runs the example as a program; the test calls `run`.
#[path = "../examples/rig_agent.rs"]
mod rig_agent_example;

#[tokio::test]
async fn rig_agent() {
    let mut out = Vec::new();
    rig_agent_example::run(&mut out).await.expect("example rig_agent failed");
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "answer: The result of add is 13. The result of multiply is 42.");
    assert!(lines[1].starts_with("streamed: [call add] [call multiply] The result"), "{out}");
}

#[allow(dead_code)]
#[path = "../examples/rig_retrieval.rs"]
mod rig_retrieval_example;

#[tokio::test]
async fn rig_retrieval() {
    let mut out = Vec::new();
    rig_retrieval_example::run(&mut out).await.expect("example rig_retrieval failed");
    let out = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "embedded 3 documents", "{out}");
    assert!(lines[1].starts_with("best match: Paris is the capital and largest city of France."), "{out}");
    assert!(lines[2].starts_with("answer: Echo: ") && lines[2].contains("Paris is the capital"), "{out}");
    assert_eq!(lines[3], "the context reached the model: true", "{out}");
}
