"""Write small datasets in the CODE-15% layout for tests, with the release's traps built in.

Every tracing carries an id-dependent pattern, so a test can check that a loaded item belongs to the
exam it claims to be and that its labels were joined on exam_id:

- sample 0, every lead: the exam_id (exact in float32 below 2**24);
- sample 1: the lead index 0..11 (catches transposed or permuted leads);
- sample 2, leads 0..5: the exam's six labels (0/1), in CLASSES order;
- samples 3..: a small exam-dependent sine, so no stored exam is all zero by accident.

Use :func:`decode_exam_id` and :func:`decode_labels` on an item's ``x`` (channels first, divided by
the input scale) to read them back. In tests: ``from helpers.shards import write_code15_fixture``
(pytest puts tests/ on sys.path).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ecglit.constants import CLASSES, LEADS, N_SAMPLES
from ecglit.data.shards import EXAMS_CSV, ShardWriter


def exam_tracing(exam_id: int, labels: Sequence[float]) -> np.ndarray:
    """The (4096, 12) float32 tracing that encodes ``exam_id`` and ``labels``."""
    x = np.zeros((N_SAMPLES, len(LEADS)), np.float32)
    t = np.arange(3, N_SAMPLES, dtype=np.float32)
    x[3:] = np.sin(t * (0.01 + 0.001 * (exam_id % 7)))[:, None] * (1.0 + 0.1 * np.arange(len(LEADS)))
    x[0, :] = exam_id
    x[1, :] = np.arange(len(LEADS))
    x[2, : len(CLASSES)] = labels
    return x


def decode_exam_id(x: np.ndarray | object) -> int:
    """exam_id encoded in a channels-first (12, 4096) tracing (see the module docstring)."""
    return round(float(np.asarray(x)[0, 0]))


def decode_labels(x: np.ndarray | object) -> np.ndarray:
    """The six labels encoded in a channels-first (12, 4096) tracing."""
    return np.asarray(x)[: len(CLASSES), 2].astype(np.float32)


def write_code15_fixture(
    out_dir: str | Path,
    n_exams: int = 40,
    n_shards: int = 2,
    shuffle_csv: bool = True,
    sentinel: bool = True,
    extra_zero_rows: int = 1,
    seed: int = 0,
    patients: int | None = None,
    first_exam_id: int = 1001,
) -> pd.DataFrame:
    """Write ``n_exams`` exams as ``n_shards`` CODE-15%-layout shards plus ``exams.csv`` in ``out_dir``.

    Args:
        n_exams: exams with a proper tracing (and a row in exams.csv).
        n_shards: number of ``exams_part{k}.hdf5`` files (exams spread evenly).
        shuffle_csv: write exams.csv rows in a random order (the release's CSV order differs from the
            shards').
        sentinel: end every shard with the release's sentinel row (exam_id 0, zero tracing).
        extra_zero_rows: additional exams, placed in the middle of the first shard, whose tracing is all
            zero (they do have an exams.csv row, as in the release).
        patients: number of distinct patient_ids (default: about n_exams // 2, so patients have several
            exams); exams are assigned to patients at random.
        first_exam_id: exam_ids are non-contiguous and start here (gaps of 1..3).

    Returns:
        The exams.csv table as written (exams in shard order, not CSV order), with the ids of the
        all-zero exams in ``df.attrs["zero_exam_ids"]`` and the shard file names in
        ``df.attrs["shards"]``.
    """
    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    n_total = n_exams + extra_zero_rows
    exam_ids = first_exam_id + np.cumsum(rng.integers(1, 4, size=n_total))
    n_patients = patients if patients is not None else max(1, n_exams // 2)
    patient_ids = 500_000 + rng.integers(0, n_patients, size=n_total)
    labels = rng.random((n_total, len(CLASSES))) < 0.3
    # The all-zero exams sit in the middle of the first shard.
    shard_size = -(-n_total // n_shards)
    zero_pos = set(range(shard_size // 2, shard_size // 2 + extra_zero_rows))

    rows, tracings = [], []
    for i in range(n_total):
        exam_id = int(exam_ids[i])
        row = {"exam_id": exam_id, "age": int(rng.integers(18, 90)), "is_male": bool(rng.random() < 0.5),
               "nn_predicted_age": float(rng.normal(50, 10)), "patient_id": int(patient_ids[i]),
               "normal_ecg": not labels[i].any()}
        row.update({c: bool(labels[i, k]) for k, c in enumerate(CLASSES)})
        rows.append(row)
        zero = i in zero_pos
        tracings.append(np.zeros((N_SAMPLES, len(LEADS)), np.float32) if zero
                        else exam_tracing(exam_id, labels[i].astype(np.float32)))

    with ShardWriter(out_dir, shard_size=shard_size, sentinel=sentinel, overwrite=True) as writer:
        for start in range(0, n_total, shard_size):
            writer.add(np.stack(tracings[start:start + shard_size]), rows[start:start + shard_size])

    df = pd.read_csv(out_dir / EXAMS_CSV)
    if shuffle_csv:
        df.sample(frac=1.0, random_state=seed).to_csv(out_dir / EXAMS_CSV, index=False)
    df.attrs["zero_exam_ids"] = [int(exam_ids[i]) for i in sorted(zero_pos)]
    df.attrs["shards"] = sorted(set(df["trace_file"]))
    return df


def write_code_test_fixture(out_dir: str | Path, n_exams: int = 20, seed: int = 0) -> pd.DataFrame:
    """Write a CODE-test-layout set: ``ecg_tracings.hdf5`` (``tracings`` only) and
    ``annotations/gold_standard.csv`` (0/1, row-aligned). Tracings encode exam_id = row + 1."""
    import h5py

    rng = np.random.default_rng(seed)
    out_dir = Path(out_dir)
    (out_dir / "annotations").mkdir(parents=True, exist_ok=True)
    labels = (rng.random((n_exams, len(CLASSES))) < 0.3).astype(np.int64)
    x = np.stack([exam_tracing(i + 1, labels[i].astype(np.float32)) for i in range(n_exams)])
    with h5py.File(out_dir / "ecg_tracings.hdf5", "w") as f:
        f.create_dataset("tracings", data=x)
    df = pd.DataFrame(labels, columns=list(CLASSES))
    df.to_csv(out_dir / "annotations" / "gold_standard.csv", index=False)
    return df
