"""ShardWriter: CODE-15% layout, streaming across shard boundaries, nothing complete lost on failure."""

import csv

import h5py
import numpy as np
import pytest

from ecglit.constants import CODE15_COLUMNS
from ecglit.data.shards import ShardWriter
from ecglit.errors import DataError


def _exams(ids):
    x = np.zeros((len(ids), 4096, 12), np.float32)
    x[:, 0, 0] = ids  # id-dependent content to check row order
    return x, [{"exam_id": i, "patient_id": i // 2, "AF": i % 2 == 0} for i in ids]


def test_streams_batches_across_shards_with_sentinels(tmp_path):
    with ShardWriter(tmp_path, shard_size=4, extra_columns=["source"]) as w:
        for batch in ([1, 2, 3], [4, 5, 6, 7, 8, 9], [10]):
            w.add(*_exams(batch))
    shards = sorted(tmp_path.glob("exams_part*.hdf5"))
    assert [p.name for p in shards] == ["exams_part0.hdf5", "exams_part1.hdf5", "exams_part2.hdf5"]
    ids = []
    for p in shards:
        with h5py.File(p) as f:
            assert f["tracings"].dtype == np.float32 and f["exam_id"].dtype == np.int64
            assert f["exam_id"][-1] == 0 and not f["tracings"][-1].any()  # the release's sentinel row
            np.testing.assert_array_equal(f["tracings"][:-1, 0, 0], f["exam_id"][:-1])
            ids += f["exam_id"][:-1].tolist()
    assert ids == list(range(1, 11))
    rows = list(csv.DictReader(open(tmp_path / "exams.csv")))
    assert list(rows[0]) == [*CODE15_COLUMNS, "source"]
    assert {r["exam_id"]: r["trace_file"] for r in rows}["9"] == "exams_part2.hdf5"
    assert rows[0]["age"] == ""  # unknown stays empty, not False or 0


def test_failure_keeps_complete_shards_and_their_rows(tmp_path):
    with pytest.raises(DataError, match="duplicate exam_id 2"):
        with ShardWriter(tmp_path, shard_size=2) as w:
            w.add(*_exams([1, 2]))  # completes shard 0
            w.add(*_exams([3]))
            w.add(*_exams([2]))
    assert [p.name for p in tmp_path.glob("exams_part*.hdf5")] == ["exams_part0.hdf5"]
    assert [r["exam_id"] for r in csv.DictReader(open(tmp_path / "exams.csv"))] == ["1", "2"]


def test_refuses_to_overwrite_and_checks_shapes(tmp_path):
    with ShardWriter(tmp_path) as w:
        w.add(*_exams([1]))
    with pytest.raises(DataError, match="exams_part0.hdf5: already exists"):
        ShardWriter(tmp_path)
    w = ShardWriter(tmp_path / "b")
    with pytest.raises(DataError, match=r"shape \(n, 4096, 12\)"):
        w.add(np.zeros((1, 12, 4096), np.float32), [{"exam_id": 1}])
