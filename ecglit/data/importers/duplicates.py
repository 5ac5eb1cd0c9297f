"""Recordings that appear more than once (the same ECG copied into two sources or two rates) share a patient.

Public collections re-distribute the same exams: a CPSC record also sits in a CinC copy, a PTB-XL record
at 100 Hz and at 500 Hz. Split by patient, such copies would land in train and test at once. Each exam gets a
small fingerprint (leads II and V2 at 50 Hz, mean removed, unit norm); two exams whose fingerprints correlate
above ``threshold`` at zero lag are the same recording, and the converter gives them one patient_id.
"""

from __future__ import annotations

import numpy as np

FINGERPRINT_LEADS = (1, 7)  # II, V2
FINGERPRINT_STEP = 8  # 400 Hz -> 50 Hz
DUPLICATE_CORRELATION = 0.97
MAX_EXAMS = 200_000  # 200k fingerprints are 200 MB of float16; beyond that the check is skipped


def fingerprint(exam: np.ndarray) -> np.ndarray:
    """(4096, 12) exam -> (1024,) float16 unit vector."""
    x = np.asarray(exam, np.float32)[::FINGERPRINT_STEP, FINGERPRINT_LEADS]
    x = (x - x.mean(axis=0)).ravel()
    norm = float(np.linalg.norm(x))
    return (x / norm if norm > 0 else x).astype(np.float16)


def duplicate_pairs(prints: np.ndarray, threshold: float = DUPLICATE_CORRELATION, block: int = 2048
                    ) -> list[tuple[int, int]]:
    """Pairs (i < j) of fingerprints correlating above ``threshold``, computed block by block."""
    prints = np.asarray(prints, np.float32)
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(prints), block):
        corr = prints[start:start + block] @ prints.T
        rows, cols = np.nonzero(corr > threshold)
        pairs += [(start + i, j) for i, j in zip(rows.tolist(), cols.tolist()) if start + i < j]
    return pairs


def merged_groups(pairs: list[tuple[int, int]], n: int) -> np.ndarray:
    """Union-find over ``pairs``: the representative (smallest index) of each of ``n`` items' group."""
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        a, b = root(i), root(j)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return np.array([root(i) for i in range(n)])
