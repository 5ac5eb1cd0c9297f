"""Index and Dataset over CODE-15%-layout data: ``exams_part*.hdf5`` shards plus ``exams.csv``.

The index is built from the shards' own ``exam_id`` arrays (never from ``trace_file`` or row order)
and labels are joined from exams.csv on exam_id. Dropped: the release's sentinel rows (exam_id 0),
all-zero tracings, and (by policy) tracings with NaN/inf and exams without labels. A log line reports
how many of each. See ../shared/design/datasets-and-models.md section 2.1 for the release's traps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ecglit.constants import CLASSES
from ecglit.data.h5dataset import H5RowsDataset
from ecglit.data.labels import read_labels_by_id
from ecglit.data.scan import ShardScan, scan_shards
from ecglit.data.shards import EXAMS_CSV
from ecglit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

MissingLabels = Literal["error", "drop", "keep"]
NonFinite = Literal["error", "drop"]


@dataclass
class Code15Index:
    """The usable exams of a CODE-15%-layout directory, in shard order (natural part order, then row)."""

    root: Path
    files: list[Path]
    file_index: np.ndarray  # (N,) int32
    row: np.ndarray  # (N,) int64
    exam_ids: np.ndarray  # (N,) int64
    labels: np.ndarray  # (N, 6) float32, 0/1
    patient_ids: np.ndarray  # (N,) int64 group codes (exams of one patient share a code)
    counts: dict[str, int] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)  # extra exams.csv columns asked for (text)

    def __len__(self) -> int:
        return len(self.exam_ids)

    def dataset(self, indices: np.ndarray | None = None, input_scale: float = 1.0) -> H5RowsDataset:
        """A Dataset of the exams ``indices`` (positions in this index; all exams when None)."""
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, np.int64)
        return H5RowsDataset(self.files, self.file_index[idx], self.row[idx], self.labels[idx],
                             self.exam_ids[idx], input_scale)


def _examples(ids: np.ndarray, k: int = 5) -> str:
    shown = ", ".join(str(int(i)) for i in ids[:k])
    return shown + (", ..." if len(ids) > k else "")


def _check_policy(name: str, value: str) -> None:
    if value not in ("error", "drop"):
        raise ConfigError(f"{name} must be 'error' or 'drop', got {value!r}")


def _check_duplicates(scan: ShardScan, keep: np.ndarray) -> None:
    ids = scan.exam_id[keep]
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[counts > 1]
        pos = np.flatnonzero(keep)[ids == dup[0]][:2]
        where = [f"{scan.shards[scan.shard[p]].name} row {scan.row[p]}" for p in pos]
        raise DataError(scan.shards[scan.shard[pos[0]]].parent,
                        f"{len(dup)} exam_id(s) occur more than once in the shards (e.g. {_examples(dup)}); "
                        f"exam_id {dup[0]} is at {' and '.join(where)}")


def _patient_codes(table: pd.DataFrame, csv_path: Path) -> np.ndarray:
    """Group code per CSV row; exams without patient_id count as their own patient (with a warning)."""
    exam_ids = table["exam_id"].str.strip()
    if "patient_id" not in table.columns:
        log.warning("%s has no patient_id column: splitting by exam_id, so one patient's exams may end up "
                    "in different splits", csv_path)
        return pd.factorize(exam_ids)[0].astype(np.int64)
    patient = table["patient_id"].str.strip()
    empty = patient == ""
    if empty.any():
        log.warning("%s: %d row(s) have no patient_id; each of those exams counts as its own patient",
                    csv_path, int(empty.sum()))
        patient = patient.where(~empty, "exam:" + exam_ids)
    return pd.factorize(patient)[0].astype(np.int64)


def build_code15_index(root: str | Path, csv: str | Path | None = None,
                       missing_labels: MissingLabels = "error", non_finite: NonFinite = "error",
                       cache_dir: str | Path | None = None, use_cache: bool = True,
                       extra_columns: tuple[str, ...] = ()) -> Code15Index:
    """Index the exams of a CODE-15%-layout directory and join their labels.

    Args:
        root: directory with ``exams_part*.hdf5`` and ``exams.csv``.
        csv: label table (default ``root/exams.csv``); needs ``exam_id`` and the six CLASSES columns.
        missing_labels: exams in the shards without a CSV row or with an empty label cell:
            ``"error"`` (default) raises a DataError listing a few ids; ``"drop"`` drops them with a count;
            ``"keep"`` keeps empty cells as NaN ("not annotated": masked out of losses and metrics, never
            a negative) and drops only the exams without a CSV row.
        non_finite: tracings holding NaN/inf: ``"error"`` (default) names the shard and row; ``"drop"``.
        cache_dir: where the shard-scan cache goes when ``root`` is read-only.
        use_cache: read/write the scan cache (``root/.ecglit-index.npz``).
        extra_columns: more exams.csv columns to keep per exam (as text), e.g. ``source_file`` for a
            hold-out split; a missing one is a DataError.
    """
    if missing_labels not in ("error", "drop", "keep"):
        raise ConfigError(f"missing_labels must be 'error', 'drop' or 'keep', got {missing_labels!r}")
    _check_policy("non_finite", non_finite)
    root = Path(root)
    scan = scan_shards(root, cache_dir=cache_dir, use_cache=use_cache)
    sentinel = scan.exam_id == 0
    keep = ~sentinel
    _check_duplicates(scan, keep)

    bad = keep & scan.non_finite
    if bad.any() and non_finite == "error":
        p = int(np.flatnonzero(bad)[0])
        raise DataError(scan.shards[scan.shard[p]], f"tracing holds NaN or inf values ({int(bad.sum())} such "
                        "exam(s) in the data set); pass non_finite='drop' to skip them",
                        record=f"row {scan.row[p]}, exam_id {scan.exam_id[p]}")
    keep &= ~bad
    zero = keep & scan.all_zero
    keep &= ~zero

    csv_path = Path(csv) if csv is not None else root / EXAMS_CSV
    table, csv_ids, csv_labels = read_labels_by_id(csv_path, "label table (exams.csv)",
                                                   optional=("patient_id", *extra_columns))
    absent = [c for c in extra_columns if c not in table.columns]
    if absent:
        raise DataError(csv_path, f"no column(s) {absent}; found {list(table.columns)}")
    if len(table) == 0:
        raise DataError(csv_path, "has a header but no rows: no exam in the shards has labels")
    csv_index = pd.Index(csv_ids)
    csv_patients = _patient_codes(table, csv_path)

    pos = csv_index.get_indexer(scan.exam_id)
    no_row = keep & (pos < 0)
    labels = np.full((len(pos), len(CLASSES)), np.nan, np.float32)
    labels[pos >= 0] = csv_labels[pos[pos >= 0]]
    empty_cells = keep & (pos >= 0) & np.isnan(labels).any(axis=1)
    if missing_labels == "keep":
        empty_cells = keep & (pos >= 0) & np.isnan(labels).all(axis=1)  # partly annotated exams stay
    if (no_row.any() or empty_cells.any()) and missing_labels == "error":
        parts = []
        if no_row.any():
            parts.append(f"{int(no_row.sum())} exam(s) in the shards have no row in it "
                         f"(exam_ids {_examples(scan.exam_id[no_row])})")
        if empty_cells.any():
            parts.append(f"{int(empty_cells.sum())} exam(s) have empty (not annotated) label cells "
                         f"(exam_ids {_examples(scan.exam_id[empty_cells])})")
        raise DataError(csv_path, "; ".join(parts) + "; pass missing_labels='drop' to skip them (or 'keep' "
                                                     "to keep empty cells as not annotated)")
    keep &= ~(no_row | empty_cells)

    counts = {"rows": len(scan.exam_id), "sentinel": int(sentinel.sum()), "all_zero": int(zero.sum()),
              "non_finite": int(bad.sum()), "missing_labels": int((no_row | empty_cells).sum()),
              "kept": int(keep.sum()),
              "csv_without_tracing": int((~np.isin(csv_ids, scan.exam_id[~sentinel])).sum())}
    log.info("CODE-15%% index of %s: %d rows in %d shard(s); dropped %d sentinel row(s), %d all-zero "
             "tracing(s), %d with NaN/inf, %d without labels; %d exams kept (%d exams.csv rows have no "
             "tracing)", root, counts["rows"], len(scan.shards), counts["sentinel"], counts["all_zero"],
             counts["non_finite"], counts["missing_labels"], counts["kept"], counts["csv_without_tracing"])
    if counts["kept"] == 0:
        raise DataError(root, "no usable exams left after dropping sentinel/empty/unlabelled rows")
    kept_pos = pos[keep]
    columns = {c: table[c].to_numpy()[kept_pos] for c in extra_columns}
    return Code15Index(root, scan.shards, scan.shard[keep], scan.row[keep], scan.exam_id[keep],
                       labels[keep], csv_patients[kept_pos], counts, columns)


class Code15Dataset(H5RowsDataset):
    """All usable exams of a CODE-15%-layout directory as one Dataset (items ``(x, y)``).

    Keyword arguments other than ``input_scale`` go to :func:`build_code15_index`; ``self.index`` keeps
    the index (patient ids, drop counts).
    """

    def __init__(self, root: str | Path, input_scale: float = 1.0, **index_kwargs) -> None:
        self.index = build_code15_index(root, **index_kwargs)
        ix = self.index
        super().__init__(ix.files, ix.file_index, ix.row, ix.labels, ix.exam_ids, input_scale)
