"""A reference runner for all-MiniLM-L6-v2, independent of candle: BERT's forward pass written
out in numpy over the same safetensors weights, with the same tokenizer.json (padding off),
mean pooling over the tokens and L2 normalization, as the model's 1_Pooling/config.json says.

    python embedding-reference.py MODEL_DIR [--bench N] TEXT...

Prints one JSON line per text: {"text", "embedding"}. With --bench N, embeds the texts N times
and prints texts per second instead. Needs numpy, safetensors and tokenizers (PyPI).
"""
import json
import math
import sys
import time

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def layer_norm(x, w, b, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def gelu(x):
    # BERT's exact GELU, with erf.
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


class MiniLM:
    def __init__(self, directory):
        self.config = json.load(open(f"{directory}/config.json"))
        self.w = {k: v.astype(np.float64) for k, v in load_file(f"{directory}/model.safetensors").items()}
        self.tokenizer = Tokenizer.from_file(f"{directory}/tokenizer.json")
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()

    def embed(self, text):
        c, w = self.config, self.w
        ids = self.tokenizer.encode(text).ids
        eps = c["layer_norm_eps"]
        heads = c["num_attention_heads"]
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][: len(ids)]
        x = x + w["embeddings.token_type_embeddings.weight"][0]
        x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
        for i in range(c["num_hidden_layers"]):
            p = f"encoder.layer.{i}."
            lin = lambda v, name: v @ w[p + name + ".weight"].T + w[p + name + ".bias"]
            q, k, v = (lin(x, f"attention.self.{n}") for n in ("query", "key", "value"))
            n, d = len(ids), q.shape[1] // heads
            q, k, v = (t.reshape(n, heads, d).transpose(1, 0, 2) for t in (q, k, v))
            scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(1, 0, 2).reshape(n, heads * d)
            x = layer_norm(lin(context, "attention.output.dense") + x,
                           w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"], eps)
            h = gelu(lin(x, "intermediate.dense"))
            x = layer_norm(lin(h, "output.dense") + x, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        pooled = x.mean(0)
        return pooled / np.linalg.norm(pooled)


def main(argv):
    directory, rest = argv[0], argv[1:]
    rounds = 0
    if rest[:1] == ["--bench"]:
        rounds, rest = int(rest[1]), rest[2:]
    model = MiniLM(directory)
    if rounds:
        start = time.perf_counter()
        for _ in range(rounds):
            for text in rest:
                model.embed(text)
        print(json.dumps({"texts_per_second": rounds * len(rest) / (time.perf_counter() - start)}))
        return
    for text in rest:
        print(json.dumps({"text": text, "embedding": [round(float(x), 7) for x in model.embed(text)]}))


if __name__ == "__main__":
    main(sys.argv[1:])
