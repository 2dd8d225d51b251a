"""The official Python SDK (async flavour) under the same load as the Rust clients.

usage: bench.py ENDPOINT MODE CONCURRENCY SECONDS   (MODE: unary | stream)
Prints one JSON object: calls, errors, seconds, p50_ms, p99_ms, cpu_us_per_call,
and for streams ttfc_p50_ms and chunks_per_s.
"""
import asyncio
import json
import resource
import sys
import time
import warnings

warnings.simplefilter("ignore")

from yandex_cloud_ml_sdk import AsyncYCloudML  # noqa: E402

ENDPOINT, MODE, CONCURRENCY, SECONDS = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
PROMPT = "hello benchmark"
STREAM_PROMPT = ("please stream a long answer: the quick brown fox jumps over the lazy dog and keeps running "
                 "through the forest, across the river and over the hills until the sun goes down behind the mountains")


def cpu():
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


async def main():
    sdk = AsyncYCloudML(folder_id="b1gbenchfolder", auth="bench-key", endpoint=ENDPOINT, verify=False)
    model = sdk.models.completions("yandexgpt")

    async def unary():
        await model.run(PROMPT)
        return None

    async def stream():
        start = time.perf_counter()
        first, chunks = None, 0
        async for _ in model.run_stream(STREAM_PROMPT):
            if first is None:
                first = time.perf_counter() - start
            chunks += 1
        return first, chunks

    call = unary if MODE == "unary" else stream

    async def worker(deadline, latencies, extra, errors):
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                r = await call()
            except Exception:  # noqa: BLE001 - counted, not hidden
                errors.append(1)
                continue
            latencies.append(time.perf_counter() - start)
            if r is not None:
                extra.append(r)

    async def run(seconds):
        deadline = time.perf_counter() + seconds
        latencies, extra, errors = [], [], []
        await asyncio.gather(*(worker(deadline, latencies, extra, errors) for _ in range(CONCURRENCY)))
        return latencies, extra, errors

    await run(min(1.0, SECONDS / 5))  # warm-up: discovery, connections
    cpu0, t0 = cpu(), time.perf_counter()
    latencies, extra, errors = await run(SECONDS)
    elapsed, used = time.perf_counter() - t0, cpu() - cpu0
    latencies.sort()
    pick = lambda p: latencies[round((len(latencies) - 1) * p)] * 1000 if latencies else 0.0  # noqa: E731
    out = {
        "calls": len(latencies), "errors": len(errors), "seconds": elapsed,
        "p50_ms": pick(0.5), "p99_ms": pick(0.99),
        "cpu_us_per_call": used / max(len(latencies), 1) * 1e6,
    }
    if extra:
        firsts = sorted(e[0] for e in extra)
        out["ttfc_p50_ms"] = firsts[len(firsts) // 2] * 1000
        out["chunks_per_s"] = sum(e[1] for e in extra) / elapsed
    print(json.dumps(out))


asyncio.run(main())
