"""Drives the OpenAI-compatible API of the emulator with the official Python SDK's `sdk.chat`
and with the `openai` package: usage `chat_interop.py HOST:PORT`.

Every check raises on a mismatch; the script prints one line per passed check and exits 0.
"""
import asyncio
import json
import sys
import warnings

warnings.simplefilter("ignore")  # the compat package warns that it is deprecated

import openai  # noqa: E402
from yandex_cloud_ml_sdk import AsyncYCloudML  # noqa: E402

ENDPOINT = sys.argv[1]
FOLDER = "b1gpythoninterop"
KEY = "python-interop-key"
BASE = f"http://{ENDPOINT}/v1/"


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok {name}")


CALCULATOR = {
    "type": "object",
    "properties": {"expression": {"type": "string", "description": "what to compute"}},
    "required": ["expression"],
}


async def official_sdk():
    sdk = AsyncYCloudML(folder_id=FOLDER, auth=KEY, endpoint=ENDPOINT, verify=False,
                        service_map={"http_completions": BASE})
    model = sdk.chat.completions("qwen3-235b-a22b-fp8")

    result = await model.run("hello")
    check("sdk.chat run", result.text == "Echo: hello", result.text)
    check("sdk.chat run status", result.status.name == "FINAL" and result.usage.total_tokens > 0, result)

    deltas = [d async for d in model.run_stream("tell me about platypuses, the egg-laying mammals")]
    text = "".join(d[0].delta for d in deltas)
    check("sdk.chat run_stream", text == "Echo: tell me about platypuses, the egg-laying mammals", text)
    check("sdk.chat run_stream ends", [d.status.name for d in deltas[-2:]] == ["FINAL", "USAGE"],
          [d.status.name for d in deltas[-2:]])
    check("sdk.chat run_stream usage", deltas[-1].usage.completion_tokens > 0, deltas[-1])

    tool = sdk.tools.function(CALCULATOR, name="calculator", description="evaluates arithmetic")
    tooled = model.configure(tools=[tool])
    first = await tooled.run("use the calculator for 7@8")
    check("sdk.chat tool call", first.status.name == "TOOL_CALLS" and first.tool_calls[0].function.name == "calculator",
          first)
    second = await tooled.run([
        "use the calculator for 7@8",
        first,
        {"tool_results": [{"name": "calculator", "content": "-5"}]},
    ])
    check("sdk.chat tool round trip", second.text == "The result of calculator is -5.", second.text)
    streamed = [d async for d in tooled.run_stream("use the calculator for 7@8")]
    calls = [d for d in streamed if d.tool_calls]
    check("sdk.chat streamed tool call", calls and calls[0].tool_calls[0].function.name == "calculator", streamed)

    schema = {"type": "object", "properties": {"numbers": {"type": "array", "items": {"type": "integer"}}},
              "required": ["numbers"]}
    shaped = model.configure(response_format={"json_schema": schema, "name": "numbers", "strict": True})
    answer = json.loads((await shaped.run("collect all numbers from: 5, 4, a, 1")).text)
    check("sdk.chat json schema", isinstance(answer["numbers"], list), answer)

    vector = await sdk.chat.text_embeddings("text-search-doc").run("hello")
    check("sdk.chat embeddings", len(vector) == 256 and vector.usage.input_text_tokens > 0, len(vector))

    listed = await sdk.chat.completions.list()
    names = [m.uri for m in listed]
    check("sdk.chat models", f"gpt://{FOLDER}/qwen3-235b-a22b-fp8/latest" in names, names)


def openai_client():
    client = openai.OpenAI(api_key=KEY, base_url=BASE, project=FOLDER)
    model = f"gpt://{FOLDER}/yandexgpt/latest"

    completion = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])
    check("openai run", completion.choices[0].message.content == "Echo: hello", completion)
    check("openai usage", completion.usage.total_tokens == completion.usage.prompt_tokens
          + completion.usage.completion_tokens, completion.usage)

    stream = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "stream me"}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check("openai stream", text == "Echo: stream me", text)
    check("openai stream usage", chunks[-1].usage is not None and not chunks[-1].choices, chunks[-1])

    tools = [{"type": "function", "function": {"name": "calculator", "parameters": CALCULATOR}}]
    messages = [{"role": "user", "content": "use the calculator for 7@8"}]
    first = client.chat.completions.create(model=model, messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    check("openai tool call", first.choices[0].finish_reason == "tool_calls" and call.function.name == "calculator",
          first)
    check("openai tool arguments", "expression" in json.loads(call.function.arguments), call.function.arguments)
    messages += [first.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "-5"}]
    second = client.chat.completions.create(model=model, messages=messages, tools=tools)
    check("openai tool round trip", second.choices[0].message.content == "The result of calculator is -5.", second)

    streamed = client.chat.completions.create(model=model, messages=messages[:1], tools=tools, stream=True)
    names = [tc.function.name for c in streamed if c.choices and c.choices[0].delta.tool_calls
             for tc in c.choices[0].delta.tool_calls]
    check("openai streamed tool call", names == ["calculator"], names)

    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    shaped = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Moscow"}],
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}})
    check("openai json schema", isinstance(json.loads(shaped.choices[0].message.content)["city"], str), shaped)

    # The cloud takes only float vectors; the package asks for base64 unless told.
    emb_model = f"emb://{FOLDER}/text-search-doc/latest"
    embedding = client.embeddings.create(model=emb_model, input=["hello", "world"], encoding_format="float")
    check("openai embeddings", [len(d.embedding) for d in embedding.data] == [256, 256], embedding.usage)
    try:
        client.embeddings.create(model=emb_model, input="hello")
        raise AssertionError("base64 vectors were given")
    except openai.BadRequestError as e:
        check("openai embeddings base64 refused", "encoding_format" in str(e.body), e.body)

    models = client.models.list()
    check("openai models", any(m.id.endswith("/gemma-3-27b-it/latest") for m in models.data), models)

    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}], temperature=5)
        raise AssertionError("temperature 5 was accepted")
    except openai.BadRequestError as e:
        check("openai error", e.status_code == 400 and "temperature" in str(e.body), e.body)
    bad = openai.OpenAI(api_key="wrong-key", base_url=BASE, max_retries=0)
    try:
        bad.chat.completions.create(model=model, messages=[{"role": "user", "content": "x"}])
        raise AssertionError("a wrong key was accepted")
    except openai.AuthenticationError as e:
        check("openai auth error", e.status_code == 401, e)


asyncio.run(official_sdk())
openai_client()
print("all chat interop checks passed")
