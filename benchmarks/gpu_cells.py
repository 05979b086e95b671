"""The DARTS-space supernet's compiled search steps, per Keras backend, against PyTorch.

For each backend (TensorFlow, JAX) and each search method (milenas, darts1, darts2),
a fresh process builds `automl.cells.SuperNet` at the papers' search size (8 cells,
C=16, 4 nodes, 14 edges per cell, batch 64 per split, 32x32x3, 10 classes, random
data), runs compiled train steps through `fit` (as the search compiles them: a
`tf.function` on TensorFlow, XLA with `--xla`; `jax.jit` on JAX), and reports the median ms per step
after warm-up, the compile time (first step minus the median) and the peak memory
(device memory on a GPU, resident memory on a CPU). With `--anchor PATH` it also runs
a plain PyTorch script of the same supernet and steps that prints one JSON line per
method (keys "method" and "ms_per_step"), and reports our steps' ratio to it.

    python benchmarks/gpu_cells.py [--backend jax] [--quick] [--json OUT]
        [--anchor darts_gpu_torch.py]

`--quick` is a CPU-sized supernet (3 cells, C=8, batch 32, 16x16). The projection is
a 50-epoch search at 25,000 images per split (CIFAR-10 halved): 50 * 391 steps.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

METHODS = ("milenas", "darts1", "darts2")
PAPER = {"cells": 8, "channels": 16, "batch": 64, "size": 32}
QUICK = {"cells": 3, "channels": 8, "batch": 32, "size": 16}
EPOCHS, STEPS_PER_EPOCH = 50, 25_000 // 64


def _peak_memory_mib(backend: str) -> tuple[float, str]:
    """(peak MiB, what was measured): device memory where the backend reports it."""
    if backend == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        if "peak_bytes_in_use" in stats:
            return stats["peak_bytes_in_use"] / 2**20, "device"
    if backend == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20, "device"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "process RSS"


def child(method: str, size: dict, steps: int, warmup: int, xla: bool) -> dict:
    """Time `method`'s compiled step in this process (KERAS_BACKEND is already set)."""
    import keras
    import numpy as np

    from automl.cells import SuperNet

    backend = keras.backend.backend()
    rng = np.random.default_rng(0)
    shape = (size["size"], size["size"], 3)

    def split():
        x = rng.normal(size=(size["batch"], *shape)).astype("float32")
        return x, rng.integers(0, 10, size["batch"]).astype("int32")

    pair = (split(), split())

    class Same(keras.utils.PyDataset):
        def __len__(self):
            return warmup + steps

        def __getitem__(self, index):
            return pair

    class Clock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.times = [time.perf_counter()]

        def on_train_batch_end(self, batch, logs=None):  # logs are synced: the step is done
            self.times.append(time.perf_counter())

    start = time.perf_counter()
    net = SuperNet(10, shape, "darts", size["cells"], size["channels"], seed=0)
    jit = xla or backend == "jax"  # as the search compiles it: XLA on JAX, tf.function on TF
    net.compile(method=method, jit_compile=jit)
    build = time.perf_counter() - start
    clock = Clock()
    net.fit(Same(), epochs=1, verbose=0, callbacks=[clock])
    seconds = np.diff(clock.times)
    median = statistics.median(seconds[warmup:])
    memory, memory_kind = _peak_memory_mib(backend)
    return {
        "backend": backend,
        "method": method,
        "device": _device(backend),
        **size,
        "xla": jit,
        "ms_per_step": round(1000 * median, 1),
        "compile_s": round(float(seconds[0] - median), 1),
        "build_s": round(build, 1),
        "peak_memory_mib": round(memory, 1),
        "memory_measured": memory_kind,
        "params": int(sum(np.prod(v.shape) for v in net.network_weights)),
        "projected_50_epochs_h": round(EPOCHS * STEPS_PER_EPOCH * median / 3600, 2),
    }


def _device(backend: str) -> str:
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return f"{device.platform}: {getattr(device, 'device_kind', '')}".strip()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return "gpu" if gpus else "cpu"


def _run_child(backend: str, method: str, args) -> dict:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = (
        [
            sys.executable,
            __file__,
            "--child",
            method,
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
        ]
        + (["--quick"] if args.quick else [])
        + (["--xla"] if args.xla else [])
    )
    command += [f"--{name}={getattr(args, name)}" for name in PAPER if getattr(args, name)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    return {"backend": backend, "method": method, "error": done.stderr.strip()[-2000:]}


def _run_anchor(path: str, size: dict, args) -> dict:
    command = [
        sys.executable,
        path,
        "--cells",
        str(size["cells"]),
        "--c",
        str(size["channels"]),
        "--batch",
        str(size["batch"]),
        "--size",
        str(size["size"]),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
    ]
    done = subprocess.run(command, capture_output=True, text=True)
    rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    if not rows:
        print(f"The anchor failed: {done.stderr.strip()[-1000:]}", file=sys.stderr)
    return {row["method"]: row for row in rows}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--backend",
        choices=("tensorflow", "jax"),
        action="append",
        help="a backend to time (repeat for more; default: both)",
    )
    parser.add_argument("--quick", action="store_true", help="a CPU-sized supernet")
    for name in PAPER:
        parser.add_argument(f"--{name}", type=int, help=f"override the supernet's {name}")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=3, help="steps before timing")
    parser.add_argument(
        "--xla",
        action="store_true",
        help="compile TensorFlow's steps with XLA too (JAX's always are)",
    )
    parser.add_argument("--anchor", help="a PyTorch reference script to run beside")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = {k: getattr(args, k) or v for k, v in (QUICK if args.quick else PAPER).items()}
    if args.child:
        print(json.dumps(child(args.child, size, args.steps, args.warmup, args.xla)), flush=True)
        return {}
    rows = [_run_child(b, m, args) for b in args.backend or ("tensorflow", "jax") for m in METHODS]
    anchor = _run_anchor(args.anchor, size, args) if args.anchor else {}
    by_backend: dict = {}
    for row in rows:
        by_backend.setdefault(row["backend"], {})[row["method"]] = row
        if row["method"] in anchor and "ms_per_step" in row:
            row["ratio_to_pytorch"] = round(
                row["ms_per_step"] / anchor[row["method"]]["ms_per_step"], 3
            )
    ratios = {
        backend: round(m["milenas"]["ms_per_step"] / m["darts2"]["ms_per_step"], 3)
        for backend, m in by_backend.items()
        if all("ms_per_step" in m.get(k, {}) for k in ("milenas", "darts2"))
    }
    print(
        f"DARTS supernet: {size['cells']} cells, C={size['channels']}, batch {size['batch']} "
        f"per split, {size['size']}x{size['size']}x3"
    )
    header = f"{'backend':<11}{'method':<9}{'ms/step':>9}{'compile s':>11}{'peak MiB':>10}"
    print(header + f"{'vs torch':>10}{'50 ep h':>9}  device")
    for row in rows:
        if "error" in row:
            print(f"{row['backend']:<11}{row['method']:<9} failed: {row['error'][-300:]}")
            continue
        print(
            f"{row['backend']:<11}{row['method']:<9}{row['ms_per_step']:>9.1f}"
            f"{row['compile_s']:>11.1f}{row['peak_memory_mib']:>10.0f}"
            f"{row.get('ratio_to_pytorch', float('nan')):>10.3f}"
            f"{row['projected_50_epochs_h']:>9.2f}  {row['device']}"
        )
    for method, row in anchor.items():
        print(f"{'pytorch':<11}{method:<9}{row['ms_per_step']:>9.1f}{'':>31}  {row['device']}")
    for backend, ratio in ratios.items():
        print(f"{backend}: milenas / darts2 step = {ratio:.3f}")
    result = {
        "size": size,
        "steps": args.steps,
        "warmup": args.warmup,
        "rows": rows,
        "pytorch": anchor,
        "milenas_over_darts2": ratios,
    }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
