"""float32 vs mixed_bfloat16 (and mixed_float16 on GPUs): training step time.

    python benchmarks/precision.py [--steps 10] [--backbones cnn4,alexnet_gap]

For each backbone: (a) the segment classifier of two-stage stage 1 (a batch
of 64 segments) and (b) the whole SpeechModel end to end (16 utterances x 12
segments). Each policy runs in a fresh process (Keras' global policy must be
set before the model is built). Reports the median step time of --steps
steps after 3 warm-up steps and writes benchmarks/results/precision.json.
Synthetic inputs: the step cost does not depend on the values.
"""

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import REPO, machine, write_json  # noqa: E402

CHILD = r"""
import json, sys, time
import numpy as np
sys.path.insert(0, {repo!r})
from speechmodel import precision
precision.set_precision({policy!r})
import keras
from speechmodel.models.registry import build_model
out = {{}}
model = build_model("speechmodel", num_classes=8, backbone={backbone!r})
segment = model.segment_encoder.segment_classifier(8)
segment.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
rng = np.random.default_rng(0)
cases = {{
    "segment_classifier_batch64": (segment, rng.random((64, 64, 64, 3), dtype="float32"), rng.integers(0, 8, 64)),
    "speechmodel_16x12": (model, {{"segments": rng.random((16, 12, 64, 64, 3), dtype="float32"),
                                   "mask": np.ones((16, 12), bool)}}, rng.integers(0, 8, 16)),
}}
for name, (m, x, y) in cases.items():
    for _ in range(3):
        m.train_on_batch(x, y)
    times = []
    for _ in range({steps}):
        start = time.perf_counter(); m.train_on_batch(x, y); times.append(time.perf_counter() - start)
    out[name] = float(np.median(times))
print("RESULT " + json.dumps(out))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--backbones", default="cnn4,alexnet_gap")
    parser.add_argument("--policies", default="float32,mixed_bfloat16")
    args = parser.parse_args()
    results = {"machine": machine(), "steps": args.steps, "seconds_per_step": {}}
    for backbone in args.backbones.split(","):
        for policy in args.policies.split(","):
            code = CHILD.format(repo=str(REPO), policy=policy, backbone=backbone, steps=args.steps)
            proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
            line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
            if proc.returncode or not line:
                raise SystemExit(f"{backbone} {policy} failed:\n{proc.stderr[-2000:]}")
            timing = json.loads(line[0][7:])
            results["seconds_per_step"][f"{backbone}/{policy}"] = timing
            print(f"{backbone:12s} {policy:15s} " + "  ".join(f"{k}: {1000 * v:7.1f} ms" for k, v in timing.items()), flush=True)
    write_json(REPO / "benchmarks" / "results" / "precision.json", results)


if __name__ == "__main__":
    main()
