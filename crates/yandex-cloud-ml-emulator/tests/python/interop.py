"""Drives the official Python SDK against the emulator: usage `interop.py HOST:PORT`.

Every check raises on a mismatch; the script prints one line per passed check and exits 0.
"""
import asyncio
import json
import pathlib
import sys
import tempfile
import warnings

warnings.simplefilter("ignore")  # the compat package warns that it is deprecated

from yandex_cloud_ml_sdk import AsyncYCloudML  # noqa: E402

ENDPOINT = sys.argv[1]
FOLDER = "b1gpythoninterop"


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok {name}")


async def main():
    sdk = AsyncYCloudML(folder_id=FOLDER, auth="python-interop-key", endpoint=ENDPOINT, verify=False)
    model = sdk.models.completions("yandexgpt")

    result = await model.run("hello")
    check("run", result.text == "Echo: hello", result.text)
    check("run usage", result.usage.total_tokens == result.usage.input_text_tokens + result.usage.completion_tokens)
    check("run status", result.status.name == "FINAL", result.status)

    chunks = [r async for r in model.run_stream("stream this answer in several cumulative chunks please")]
    check("run_stream chunks", len(chunks) > 2, len(chunks))
    check("run_stream cumulative", all(b.text.startswith(a.text) for a, b in zip(chunks, chunks[1:])))
    check("run_stream final", chunks[-1].status.name == "FINAL" and chunks[-1].text.startswith("Echo: stream"))

    operation = await model.run_deferred("deferred")
    done = await operation.wait(poll_interval=0.05)
    check("run_deferred + wait", done.text == "Echo: deferred", done.text)
    attached = await model.attach_deferred(operation.id)
    again = await attached.get_result()
    check("attach_deferred", again.text == "Echo: deferred", again.text)

    tokens = await model.tokenize("ping")
    check("tokenize", tokens[0].text == "<s>" and tokens[0].special and len(tokens) > 3, tokens)

    schema = {"type": "object", "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}},
              "required": ["numbers"]}
    tool = sdk.tools.function(schema, name="sum_numbers", description="adds numbers")
    tooled = model.configure(tools=[tool])
    first = await tooled.run("please sum_numbers 20, 22")
    check("tool call", first.tool_calls is not None and first.tool_calls[0].function.name == "sum_numbers")
    numbers = first.tool_calls[0].function.arguments["numbers"]
    check("tool call arguments", [int(n) for n in numbers] == [20, 22], numbers)
    history = [
        "please sum_numbers 20, 22",
        first,
        {"role": "user", "tool_results": [{"name": "sum_numbers", "content": str(int(sum(numbers)))}]},
    ]
    final = await tooled.run(history)
    check("tool round trip", final.text == "The result of sum_numbers is 42.", final.text)

    structured = model.configure(response_format={"json_schema": schema, "name": "Numbers"})
    answer = await structured.run("collect numbers: 5, 4, a, 1")
    check("json schema output", json.loads(answer.text) == {"numbers": [5, 4, 1]}, answer.text)

    # Datasets and tuning, the way the Python SDK does them (presigned PUT, validation, parquet).
    rows = [
        {"request": [{"role": "user", "text": "What is the emulator's favourite colour?"}], "response": "Teal, obviously."},
        {"request": [{"role": "system", "text": "Be brief."}, {"role": "user", "text": "Who tunes the tuner?"}],
         "response": "The emulator."},
    ]
    path = pathlib.Path(tempfile.mkdtemp()) / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    draft = sdk.datasets.completions.draft_from_path(path, upload_format="jsonlines", name="python interop")
    dataset = await draft.upload(poll_interval=0.05)
    check("dataset upload", dataset.status.name == "READY" and dataset.rows == 2, dataset)
    listed = [d async for d in sdk.datasets.list(status="READY")]
    check("dataset list", [d.id for d in listed] == [dataset.id], listed)
    records = [r async for r in dataset.read()]
    check("dataset read", [r["response"] for r in records] == ["Teal, obviously.", "The emulator."], records)

    tuned = await model.tune(dataset, validation_datasets=dataset, name="python-interop", poll_interval=0.05)
    check("tune", "@" in tuned.uri, tuned.uri)
    answer = await tuned.run("what is the emulator's favourite colour")
    check("tuned model run", answer.text == "Teal, obviously.", answer.text)
    base_answer = await model.run("what is the emulator's favourite colour")
    check("base model unchanged", base_answer.text != "Teal, obviously.", base_answer.text)
    await dataset.delete()
    check("dataset delete", True)

    # Text embeddings: the document and query models, a size, and a tuning on pairs whose
    # model answers in the sizes it was tuned for.
    doc = sdk.models.text_embeddings("doc")
    vector = await doc.run("hello world")
    check("embeddings run", len(vector) == 256 and vector.num_tokens > 0, len(vector))
    small = await doc.configure(dimensions=32).run("hello world")
    check("embeddings dimensions", len(small) == 32, len(small))
    query = await sdk.models.text_embeddings("query").run("hello world")
    check("embeddings query model", tuple(query) != tuple(vector))
    pairs = pathlib.Path(tempfile.mkdtemp()) / "pairs.jsonl"
    pairs.write_text(json.dumps({"anchor": "hello", "positive": "hi"}) + "\n")
    pair_dataset = await sdk.datasets.draft_from_path(
        pairs, task_type="TextEmbeddingsPair", upload_format="jsonlines", name="python pairs"
    ).upload(poll_interval=0.05)
    base = sdk.models.text_embeddings("text-embeddings")
    tuned_embeddings = await base.tune(
        pair_dataset, embeddings_tune_type="pair", dimensions=[16, 64], name="python-pairs", poll_interval=0.05
    )
    check("embeddings tune", tuned_embeddings.uri.startswith("emb://") and "@" in tuned_embeddings.uri,
          tuned_embeddings.uri)
    hello = await tuned_embeddings.run("hello")
    check("tuned embeddings run", len(hello) == 64, len(hello))
    hi = await tuned_embeddings.run("hi")

    def cosine(a, b):
        return sum(x * y for x, y in zip(a, b))

    before = cosine(await base.configure(dimensions=64).run("hello"), await base.configure(dimensions=64).run("hi"))
    check("tuned embeddings closer", cosine(hello, hi) > before, (before, cosine(hello, hi)))

    # A batch run over a dataset of prompts; its answers land in a new dataset, labelled as
    # the cloud labels it.
    prompts = pathlib.Path(tempfile.mkdtemp()) / "prompts.jsonl"
    prompts.write_text("\n".join(json.dumps({"request": [{"role": "user", "text": f"prompt {i}"}]}) for i in range(3)))
    source = await sdk.datasets.draft_from_path(
        prompts, task_type="TextToTextGenerationRequest", upload_format="jsonlines", name="python batch"
    ).upload(poll_interval=0.05)
    operation = await model.batch.run_deferred(source)
    result = await operation.wait(poll_interval=0.05)
    check("batch run", result.status.name == "READY" and result.task_type == "TextToTextGeneration", result)
    check("batch labels", (result.labels or {}).get("foundation_models_batch_task_id") == operation.id, result.labels)
    answers = [r async for r in result.read()]
    check("batch answers", [a["response"] for a in answers] == [f"Echo: prompt {i}" for i in range(3)], answers)


asyncio.run(main())
print("all python interop checks passed")
