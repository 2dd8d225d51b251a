"""The official Python SDK against the emulator running a real model: usage
`interop_local_model.py HOST:PORT`. Prints one line per passed check."""
import asyncio
import sys
import warnings

warnings.simplefilter("ignore")

from yandex_cloud_ml_sdk import AsyncYCloudML  # noqa: E402


def check(name, condition, detail=""):
    if not condition:
        raise AssertionError(f"{name}: {detail}")
    print(f"ok {name}")


async def main():
    sdk = AsyncYCloudML(folder_id="b1gemulatorfolder000", auth="local-model-key", endpoint=sys.argv[1], verify=False)
    model = sdk.models.completions("yandexgpt").configure(temperature=0, max_tokens=40)
    result = await model.run("What is the capital of France?")
    check("run", "Paris" in result.text, result.text)
    check("run usage", result.usage.completion_tokens > 0 and result.usage.input_text_tokens == 37, result.usage)
    chunks = [r async for r in model.run_stream("What is the capital of France?")]
    check("run_stream chunks", len(chunks) > 1, len(chunks))
    check("run_stream cumulative", all(b.text.startswith(a.text) for a, b in zip(chunks, chunks[1:])))
    check("run_stream final", chunks[-1].text == result.text, (chunks[-1].text, result.text))
    print("all local model checks passed")


asyncio.run(main())
