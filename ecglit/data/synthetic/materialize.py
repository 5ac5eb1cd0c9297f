"""Writing a synthetic data set to disk in the CODE-15% layout, in parallel.

Worker processes generate chunks of consecutive indices (in batches) and the parent writes them in
index order through :class:`ecglit.data.shards.ShardWriter`, so the files are identical whatever the
number of workers. ``exams.csv`` gets the CODE-15% columns (demographics drawn independently of the
labels; some patients have 2-3 exams); ``metadata.csv`` holds what each exam realised.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Iterator
from multiprocessing import resource_tracker, shared_memory
from pathlib import Path
from typing import Any

import numpy as np

from ecglit.constants import CLASSES, N_SAMPLES
from ecglit.data.shards import ShardWriter
from ecglit.data.synthetic.config import SyntheticConfig
from ecglit.data.synthetic.generator import generate_batch
from ecglit.errors import ConfigError
from ecglit.utils.io import write_text

CHUNK_SIZE = 128        # exams per worker task
BATCH_SIZE = 16         # exams rendered together (fits the caches)
DEMOGRAPHY_BLOCK = 1000  # patients never span blocks, so exam i's row does not depend on n
DEMOGRAPHY_STREAM = 7
METADATA_TABLE = "metadata"  # metadata.csv beside exams.csv
CONFIG_FILE = "synthetic_config.json"
METADATA_COLUMNS: tuple[str, ...] = (
    "exam_id", "seed", "index", "hr_bpm", "rate_target_bpm", "pr_ms", "qrs_ms", "qt_ms", "rhythm",
    "av_conduction", "ventricular_conduction", "record_seconds", "pad_left", "noise_level", "gain",
    "has_pac", "has_pvc", "n_beats", "p_amp_mv", "af_f0_hz", "af_amp_mv", "distractors",
    *(f"clean_{c}" for c in CLASSES),
)


def _generate_chunk(task: tuple[int, int, int, SyntheticConfig], signals: np.ndarray | None = None
                    ) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    seed, start, stop, cfg = task
    signals = np.empty((stop - start, N_SAMPLES, 12), np.float32) if signals is None else signals
    labels = np.empty((stop - start, len(CLASSES)), np.float32)
    rows: list[dict[str, Any]] = []
    for b in range(start, stop, BATCH_SIZE):
        e = min(b + BATCH_SIZE, stop)
        x, y, _clean, metas = generate_batch(seed, range(b, e), cfg)
        signals[b - start:e - start], labels[b - start:e - start] = x, y
        for m in metas:
            row = {k: m[k] for k in METADATA_COLUMNS if k in m}
            row["distractors"] = ";".join(m["distractors"])
            row.update({f"clean_{c}": v for c, v in m["clean_labels"].items()})
            rows.append(row)
    return signals, labels, rows


def _generate_chunk_shared(task: tuple[int, int, int, SyntheticConfig]) -> tuple[str, np.ndarray, list[dict]]:
    """Worker: generate into a new shared-memory block (the parent unlinks it), so the 200 kB per exam
    are never pickled through a pipe."""
    n = task[2] - task[1]
    shm = shared_memory.SharedMemory(create=True, size=n * N_SAMPLES * 12 * 4)
    try:
        view = np.ndarray((n, N_SAMPLES, 12), np.float32, buffer=shm.buf)
        _, labels, rows = _generate_chunk(task, view)
        del view
        return shm.name, labels, rows
    finally:
        shm.close()


def _from_shared(name: str, n: int) -> Iterator[np.ndarray]:
    shm = shared_memory.SharedMemory(name=name)
    try:
        view = np.ndarray((n, N_SAMPLES, 12), np.float32, buffer=shm.buf)
        yield view
        del view
    finally:
        shm.close()
        shm.unlink()


def demographics(seed: int, n: int, first_exam_id: int = 1) -> list[dict[str, Any]]:
    """CODE-15%-like exams.csv columns other than the labels, for exams 0..n-1 (label-independent)."""
    rows: list[dict[str, Any]] = []
    for block in range(0, n, DEMOGRAPHY_BLOCK):
        rng = np.random.default_rng([int(seed), block // DEMOGRAPHY_BLOCK, DEMOGRAPHY_STREAM])
        size = min(DEMOGRAPHY_BLOCK, n - block)
        i = 0
        while i < size:
            n_exams = min(int(rng.choice([1, 2, 3], p=[0.75, 0.17, 0.08])), size - i)
            age = float(np.clip(rng.normal(52.0, 17.0), 18.0, 98.0))
            is_male = bool(rng.random() < 0.4)
            died = bool(rng.random() < 0.035)
            timey = float(rng.uniform(0.05, 6.0) if died else rng.uniform(0.5, 7.0))
            patient_id = first_exam_id + block + i
            for j in range(n_exams):
                if j:
                    age += float(rng.uniform(0.3, 2.5))
                rows.append({
                    "exam_id": first_exam_id + block + i + j, "age": int(age), "is_male": is_male,
                    "nn_predicted_age": round(float(np.clip(age + rng.normal(0.0, 8.0), 16.0, 105.0)), 2),
                    "patient_id": patient_id,
                    # CODE-15% fills death/timey on the patient's first exam only.
                    "death": died if j == 0 else None, "timey": round(timey, 2) if j == 0 else None,
                })
            i += n_exams
    return rows


def _chunks(seed: int, n: int, cfg: SyntheticConfig) -> list[tuple[int, int, int, SyntheticConfig]]:
    return [(seed, s, min(s + CHUNK_SIZE, n), cfg) for s in range(0, n, CHUNK_SIZE)]


def _results(tasks: list, workers: int) -> Iterator[tuple[np.ndarray, np.ndarray, list[dict]]]:
    if workers <= 1 or len(tasks) <= 1:
        yield from map(_generate_chunk, tasks)
        return
    # fork where available (like torch's DataLoader): fast start and works from any __main__; the
    # workers only use numpy. Chunks come back in index order.
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    # One resource tracker for parent and workers: blocks created by a worker and unlinked here are
    # then accounted once (and still cleaned up if this process dies).
    resource_tracker.ensure_running()
    with multiprocessing.get_context(method).Pool(workers) as pool:
        for task, (name, labels, rows) in zip(tasks, pool.imap(_generate_chunk_shared, tasks)):
            for signals in _from_shared(name, task[2] - task[1]):
                yield signals, labels, rows


def materialize(out_dir: str | Path, n: int, seed: int, config: SyntheticConfig | None = None,
                shard_size: int = 20_000, workers: int | None = None, progress: bool = True,
                first_exam_id: int = 1, overwrite: bool = False) -> Path:
    """Write exams 0..n-1 of ``seed`` as CODE-15%-layout shards + exams.csv + metadata.csv.

    A folder that already holds any of these is refused unless ``overwrite``.

    Exam ``i`` gets ``exam_id = first_exam_id + i``. ``workers=None`` uses every core. Returns ``out_dir``.
    """
    for name, value in (("n", n), ("seed", seed), ("first_exam_id", first_exam_id - 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            shown = value + 1 if name == "first_exam_id" else value
            raise ConfigError(f"{name} must be a {'positive' if name == 'first_exam_id' else 'non-negative'} "
                              f"integer, got {shown!r}")
    if workers is not None and (not isinstance(workers, (int, np.integer)) or workers < 1):
        raise ConfigError(f"workers must be a positive integer or None, got {workers!r}")
    cfg = SyntheticConfig() if config is None else config
    workers = int(workers or os.cpu_count() or 1)
    out = Path(out_dir)
    demo = demographics(int(seed), int(n), int(first_exam_id))
    tasks = _chunks(int(seed), int(n), cfg)
    writer = ShardWriter(out, shard_size=shard_size, overwrite=overwrite,
                         outputs=(f"{METADATA_TABLE}.csv", CONFIG_FILE))
    write_text(out / CONFIG_FILE, json.dumps(
        {"n": int(n), "seed": int(seed), "first_exam_id": int(first_exam_id), "config": cfg.to_dict()},
        indent=2), overwrite=True)
    bar = _progress_bar(int(n), progress)
    try:
        done = 0
        for signals, labels, meta_rows in _results(tasks, min(workers, len(tasks))):
            rows = demo[done:done + len(signals)]
            for row, y in zip(rows, labels):
                row.update({c: bool(v > 0.5) for c, v in zip(CLASSES, y)})
                row["normal_ecg"] = not bool(y.any())
            for k, m in enumerate(meta_rows):
                m["exam_id"] = rows[k]["exam_id"]
            writer.add(signals, rows)
            writer.add_table_rows(METADATA_TABLE, METADATA_COLUMNS, meta_rows)
            done += len(signals)
            bar.update(len(signals))
        writer.close()
    finally:
        bar.close()
    return out


class _NoBar:
    def update(self, n: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm
    return tqdm(total=total, unit="exam", desc="synthesizing", smoothing=0.1)
