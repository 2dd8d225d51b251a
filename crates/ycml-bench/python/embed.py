"""The official Python SDK embedding texts one after another, the way its users do (it has no
batch method): usage `embed.py ENDPOINT N`. Prints one JSON object: texts, seconds, cpu_us_per_text.
"""
import asyncio
import json
import resource
import sys
import time
import warnings

warnings.simplefilter("ignore")

from yandex_cloud_ml_sdk import AsyncYCloudML  # noqa: E402

ENDPOINT, N = sys.argv[1], int(sys.argv[2])


def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


async def main():
    sdk = AsyncYCloudML(folder_id="b1gbenchfolder", auth="bench-key", endpoint=ENDPOINT, verify=False)
    model = sdk.models.text_embeddings("doc")
    await model.run("warm up")
    cpu0, start = cpu(), time.perf_counter()
    for i in range(N):
        await model.run(f"short text number {i} about the weather")
    seconds, used = time.perf_counter() - start, cpu() - cpu0
    print(json.dumps({"texts": N, "seconds": seconds, "cpu_us_per_text": used / N * 1e6}))


asyncio.run(main())
