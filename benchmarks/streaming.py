"""Streaming data: does fitting on 16 times more images need more memory?

Data: 28x28 grayscale digits, 10 classes, made as in `image_set.py` (scikit-learn's
8x8 digits upscaled smoothly to about 20x20 on a 28x28 canvas; training images
only from the training 80% of the source digits), with a cheaper jitter that a
generator can afford per batch: a shift within +-3 px, a stroke gamma in
[0.6, 1.6] and gaussian noise (std 0.05), quantised to 0..255. Image i depends only
on (seed, i // 32), so any batch can be made on its own.

Sources, at each size (10k, 40k, 160k images; `--quick`: 1k, 2k, 4k):

- `directory`: the images written once as PNG files, one subfolder per class (in
  a cache folder, with several processes), passed to `fit` as a path;
- `generator`: a `keras.utils.PyDataset` that makes each batch when asked and
  holds none.

Each fit runs in a fresh process: `ImageClassifier(strategy="random", max_trials=2,
epochs=1, ensemble_size=1, max_model_size=20_000, batch_size=128)`, which reads the
stream once for its statistics, once per trial (and its validation part) and once
for the refit. The process reports its own peak RSS (`ru_maxrss`), the seconds of
each training epoch (from the end of its first batch, so without tracing, and
scaled to the whole epoch) and the accuracy on 2,000 test images (from the test
source digits). `peak_rss_growth` is the peak RSS at the largest size over that at
the smallest, minus 1, the larger of the two sources.

    python benchmarks/streaming.py [--quick] [--json OUT] [--cache DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

BATCH = 32  # images per generated batch (a PyDataset is split by batch)
SIZE = 28
SHIFT = 3
GAMMA_RANGE = (0.6, 1.6)
NOISE_STD = 0.05
SEED = 0
FIT = {
    "strategy": "random",
    "max_trials": 2,
    "epochs": 1,
    "ensemble_size": 1,
    "max_model_size": 20_000,
    "batch_size": 128,
    "seed": 0,
    "verbose": 0,
}


def sources(test: bool = False):
    """(canvases (n, 28, 28) in [0, 1], labels) of the training or test source digits."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from image_set import _canvases
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    parts = train_test_split(
        digits.images, digits.target, test_size=0.2, random_state=SEED, stratify=digits.target
    )
    images, labels = (parts[1], parts[3]) if test else (parts[0], parts[2])
    return _canvases(images, SIZE), labels


def make_batch(canvases, labels, index: int, count: int, seed: int = SEED):
    """Batch `index`: `count` images (count, 28, 28, 1) float32 in 0..255 and their labels."""
    rng = np.random.default_rng([seed, index])
    picks = rng.integers(0, len(canvases), count)
    padded = np.pad(canvases[picks], ((0, 0), (SHIFT, SHIFT), (SHIFT, SHIFT)))
    rows, cols = rng.integers(0, 2 * SHIFT + 1, (2, count))
    images = np.stack(
        [padded[i, r : r + SIZE, c : c + SIZE] for i, (r, c) in enumerate(zip(rows, cols))]
    )
    gamma = np.exp(rng.uniform(*np.log(GAMMA_RANGE), count))[:, None, None]
    images = np.clip(images**gamma + rng.normal(0, NOISE_STD, images.shape), 0, 1)
    return np.round(images * 255).astype("float32")[..., None], labels[picks]


def _write_batches(args) -> None:
    from PIL import Image

    root, size, first, last = args
    canvases, labels = sources()
    for index in range(first, last):
        count = min(BATCH, size - index * BATCH)
        images, classes = make_batch(canvases, labels, index, count)
        for j in range(count):
            path = os.path.join(root, str(classes[j]), f"{index * BATCH + j:07d}.png")
            Image.fromarray(images[j, :, :, 0].astype(np.uint8)).save(path, compress_level=1)


def write_directory(root: str, size: int, processes: int) -> float:
    """Write `size` images as PNG files under root/<class>/ (once); the seconds it took."""
    from multiprocessing import Pool

    done = os.path.join(root, ".complete")
    if os.path.exists(done):
        return float(open(done).read())
    start = time.time()
    for label in range(10):
        os.makedirs(os.path.join(root, str(label)), exist_ok=True)
    batches = math.ceil(size / BATCH)
    step = math.ceil(batches / (4 * processes))
    work = [(root, size, i, min(i + step, batches)) for i in range(0, batches, step)]
    with Pool(processes) as pool:
        pool.map(_write_batches, work)
    seconds = time.time() - start
    with open(done, "w") as f:
        f.write(f"{seconds:.2f}")
    return seconds


def generated(size: int):
    """A PyDataset that makes batch i of the `size` images when asked."""
    import keras

    canvases, labels = sources()

    class Generated(keras.utils.PyDataset):
        def __len__(self):
            return math.ceil(size / BATCH)

        def __getitem__(self, index):
            return make_batch(canvases, labels, index, min(BATCH, size - index * BATCH))

    return Generated()


def child(args) -> dict:
    """One fit in this process; what it measured."""
    import resource

    import keras

    import automl

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.epochs = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started, self.batches, self.first = time.time(), 0, None

        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            self.first = self.first or time.time()

        def on_epoch_end(self, epoch, logs=None):
            steady = (time.time() - self.first) * self.batches / max(self.batches - 1, 1)
            self.epochs.append({"seconds": time.time() - self.started, "steady": steady})

    x = args.directory if args.source == "directory" else generated(args.size)
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as runs:
        clf = automl.ImageClassifier(directory=runs, **FIT)
        start = time.time()
        clf.fit(x, callbacks=[timer])
        seconds = time.time() - start
        canvases, labels = sources(test=True)
        x_test, y_test = make_batch(canvases, labels, 10**6, 2000)
        if args.source == "directory":  # its classes are the subfolder names
            y_test = y_test.astype(str)
        accuracy = clf.evaluate(x_test, y_test)["accuracy"]
    trials = timer.epochs[:-1]  # the last epoch is the refit's, on train + validation data
    return {
        "size": args.size,
        "source": args.source,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "seconds_per_epoch": round(float(np.median([e["steady"] for e in trials])), 2),
        "epoch_seconds_with_tracing": round(float(np.median([e["seconds"] for e in trials])), 2),
        "fit_seconds": round(seconds, 1),
        "test_accuracy": round(float(accuracy), 4),
    }


def run_child(source: str, size: int, directory: str) -> dict:
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--child",
        "--source",
        source,
        "--size",
        str(size),
        "--directory",
        directory,
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{source} {size} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k, 2k and 4k images")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument(
        "--cache",
        default=os.path.join(tempfile.gettempdir(), "automl_streaming"),
        help="where the image folders are written (kept for the next run)",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--source", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--directory", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    sizes = [1000, 2000, 4000] if args.quick else [10_000, 40_000, 160_000]
    processes = max(1, os.cpu_count() or 1)
    rows, writing = [], {}
    print(
        f"{'size':>8} {'source':>10} {'peak RSS MB':>12} {'s / epoch':>10} "
        f"{'fit s':>8} {'test acc':>9}"
    )
    for size in sizes:
        folder = os.path.join(args.cache, f"digits28_{size}")
        writing[size] = round(write_directory(folder, size, processes), 1)
        for source in ("directory", "generator"):
            row = run_child(source, size, folder)
            rows.append(row)
            print(
                f"{size:>8} {source:>10} {row['peak_rss_mb']:>12.1f} "
                f"{row['seconds_per_epoch']:>10.2f} {row['fit_seconds']:>8.1f} "
                f"{row['test_accuracy']:>9.4f}",
                flush=True,
            )
    growth = {}
    for source in ("directory", "generator"):
        rss = {r["size"]: r["peak_rss_mb"] for r in rows if r["source"] == source}
        growth[source] = round(rss[sizes[-1]] / rss[sizes[0]] - 1, 4)
    result = {
        "peak_rss_growth": max(growth.values()),
        "peak_rss_growth_by_source": growth,
        "png_writing_seconds": writing,
        "processes": processes,
        "fit": FIT,
        "rows": rows,
    }
    print(
        f"peak_rss_growth ({sizes[-1]:,} over {sizes[0]:,} images): {result['peak_rss_growth']:+.3f} "
        f"{growth}; PNG writing seconds: {writing}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
