"""CODE-15%-layout index and Dataset, the CODE-test reader, and every bad-input case."""

from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from helpers.shards import (
    decode_exam_id,
    decode_labels,
    write_code15_fixture,
    write_code_test_fixture,
)

from ecglit.constants import CLASSES
from ecglit.data import scan as scan_module
from ecglit.data.code15 import Code15Dataset, build_code15_index
from ecglit.data.code_test import CodeTestDataset
from ecglit.data.scan import INDEX_CACHE, find_shards, scan_shards
from ecglit.errors import ConfigError, DataError

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="module")
def code15(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("code15")
    return root, write_code15_fixture(root, n_exams=36, n_shards=3, extra_zero_rows=2, patients=14, seed=3)


def copy_fixture(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(INDEX_CACHE))
    return dst


def test_fixture_csv_order_differs_from_shard_order(code15):
    root, _ = code15
    csv_ids = pd.read_csv(root / "exams.csv")["exam_id"].tolist()
    shard_ids = [i for p in find_shards(root) for i in _shard_arrays(p)[1] if i != 0]
    assert sorted(csv_ids) == sorted(shard_ids) and csv_ids != shard_ids


def test_index_drops_sentinels_and_all_zero_rows(code15, caplog):
    root, df = code15
    with caplog.at_level(logging.INFO, logger="ecglit"):
        index = build_code15_index(root, use_cache=False)
    zero_ids = set(df.attrs["zero_exam_ids"])
    assert len(zero_ids) == 2
    assert set(index.exam_ids.tolist()) == set(df["exam_id"]) - zero_ids
    assert 0 not in index.exam_ids
    assert index.counts["sentinel"] == 3 and index.counts["all_zero"] == 2 and index.counts["kept"] == 36
    assert "dropped 3 sentinel row(s), 2 all-zero" in caplog.text


def test_labels_are_joined_on_exam_id(code15):
    root, _ = code15
    csv = pd.read_csv(root / "exams.csv").set_index("exam_id")
    ds = Code15Dataset(root)
    assert len(ds) == 36
    for i in range(len(ds)):
        x, y = ds[i]
        assert x.shape == (12, 4096) and y.shape == (6,)
        exam_id = decode_exam_id(x)
        assert exam_id == ds.exam_ids[i]
        np.testing.assert_array_equal(y.numpy(), decode_labels(x))
        np.testing.assert_array_equal(y.numpy(), csv.loc[exam_id, list(CLASSES)].to_numpy(float))
        np.testing.assert_array_equal(x[:, 1].numpy(), np.arange(12))  # leads not permuted


def test_batched_read_equals_single_reads_in_requested_order(code15):
    root, _ = code15
    ds = Code15Dataset(root)
    indices = [7, 3, 4, 5, 30, 3, 0]  # unsorted, a duplicate, runs across shards
    batch = ds.__getitems__(indices)
    for i, (x, y) in zip(indices, batch):
        x1, y1 = ds[i]
        assert np.array_equal(x.numpy(), x1.numpy()) and np.array_equal(y.numpy(), y1.numpy())


def test_input_scale_applies_to_tracings_not_labels(code15):
    root, _ = code15
    x1, y1 = Code15Dataset(root)[5]
    x2, y2 = Code15Dataset(root, input_scale=0.5)[5]
    np.testing.assert_allclose(x2.numpy(), 0.5 * x1.numpy())
    assert x2.dtype == x1.dtype and np.array_equal(y1.numpy(), y2.numpy())


def test_dataset_pickles_without_handles_after_reading(code15):
    root, _ = code15
    ds = Code15Dataset(root)
    x, _ = ds[2]
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._handles == {}
    assert np.array_equal(clone[2][0].numpy(), x.numpy())


def test_shards_sorted_by_part_number(tmp_path):
    df = write_code15_fixture(tmp_path, n_exams=22, n_shards=11, extra_zero_rows=0)
    assert [p.name for p in find_shards(tmp_path)] == [f"exams_part{k}.hdf5" for k in range(11)]
    index = build_code15_index(tmp_path)
    assert index.exam_ids.tolist() == df["exam_id"].tolist()  # shard order, part10 after part9


def test_scan_is_cached_and_invalidated_by_changed_shards(code15, tmp_path, monkeypatch):
    root = copy_fixture(code15[0], tmp_path / "d")
    first = build_code15_index(root)
    assert (root / INDEX_CACHE).is_file()
    calls = []
    real_scan_one = scan_module._scan_one
    monkeypatch.setattr(scan_module, "_scan_one", lambda *a: calls.append(a) or real_scan_one(*a))
    again = build_code15_index(root)
    assert calls == [] and np.array_equal(first.exam_ids, again.exam_ids)
    shard = root / "exams_part1.hdf5"
    with h5py.File(shard, "r+") as f:  # any change to a shard invalidates the cache
        f["tracings"][0, 0, 0] = 12345.0
    build_code15_index(root)
    assert len(calls) == 3


def test_scan_in_small_chunks_matches_and_cache_falls_back_when_root_unwritable(code15, tmp_path):
    root = copy_fixture(code15[0], tmp_path / "d")
    (root / INDEX_CACHE).mkdir()  # the cache file cannot be written there
    scan = scan_shards(root, cache_dir=tmp_path / "cache", chunk_rows=5)
    reference = scan_shards(code15[0], use_cache=False)
    assert np.array_equal(scan.all_zero, reference.all_zero) and np.array_equal(scan.exam_id, reference.exam_id)
    assert len(list((tmp_path / "cache" / "index").glob("*.npz"))) == 1


def test_missing_patient_id_falls_back_to_exam_id_with_warning(code15, tmp_path, caplog):
    root = copy_fixture(code15[0], tmp_path / "d")
    csv = pd.read_csv(root / "exams.csv").drop(columns=["patient_id"])
    csv.to_csv(root / "exams.csv", index=False)
    with caplog.at_level(logging.WARNING, logger="ecglit"):
        index = build_code15_index(root)
    assert "no patient_id column" in caplog.text
    assert len(np.unique(index.patient_ids)) == len(index)


# -- bad input -----------------------------------------------------------------------------------

def _rewrite_shard(path: Path, **datasets: np.ndarray) -> None:
    with h5py.File(path, "w") as f:
        for name, value in datasets.items():
            f.create_dataset(name, data=value)


def _shard_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(path) as f:
        return f["tracings"][()], f["exam_id"][()]


def _case_no_tracings(root: Path) -> tuple[Path, str]:
    _, ids = _shard_arrays(root / "exams_part1.hdf5")
    _rewrite_shard(root / "exams_part1.hdf5", exam_id=ids)
    return root / "exams_part1.hdf5", "no 'tracings' dataset"


def _case_no_exam_id(root: Path) -> tuple[Path, str]:
    x, _ = _shard_arrays(root / "exams_part0.hdf5")
    _rewrite_shard(root / "exams_part0.hdf5", tracings=x)
    return root / "exams_part0.hdf5", "no 'exam_id' dataset"


def _case_transposed(root: Path) -> tuple[Path, str]:
    x, ids = _shard_arrays(root / "exams_part2.hdf5")
    _rewrite_shard(root / "exams_part2.hdf5", tracings=x.transpose(0, 2, 1), exam_id=ids)
    return root / "exams_part2.hdf5", "looks transposed"


def _case_length_mismatch(root: Path) -> tuple[Path, str]:
    x, ids = _shard_arrays(root / "exams_part1.hdf5")
    _rewrite_shard(root / "exams_part1.hdf5", tracings=x, exam_id=ids[:-2])
    return root / "exams_part1.hdf5", f"{len(x)} rows but 'exam_id' has {len(ids) - 2}"


def _case_label_columns_missing(root: Path) -> tuple[Path, str]:
    pd.read_csv(root / "exams.csv").drop(columns=["AF", "ST"]).to_csv(root / "exams.csv", index=False)
    return root / "exams.csv", "missing column(s) ['AF', 'ST']"


def _case_unlabelled_exams(root: Path) -> tuple[Path, str]:
    df = pd.read_csv(root / "exams.csv")
    df.iloc[3:].to_csv(root / "exams.csv", index=False)
    return root / "exams.csv", "3 exam(s) in the shards have no row in it (exam_ids"


def _case_empty_label_cells(root: Path) -> tuple[Path, str]:
    df = pd.read_csv(root / "exams.csv").astype({"SB": object})
    df.loc[[0, 4], "SB"] = None
    df.to_csv(root / "exams.csv", index=False)
    return root / "exams.csv", "2 exam(s) have empty (not annotated) label cells"


def _case_bad_label_value(root: Path) -> tuple[Path, str]:
    df = pd.read_csv(root / "exams.csv").astype({"LBBB": object})
    df.loc[5, "LBBB"] = "maybe"
    df.to_csv(root / "exams.csv", index=False)
    return root / "exams.csv", f"line 7, exam_id {df.loc[5, 'exam_id']}]: column 'LBBB' has value 'maybe'"


def _case_duplicate_ids_in_shards(root: Path) -> tuple[Path, str]:
    x, ids = _shard_arrays(root / "exams_part2.hdf5")
    first_ids = _shard_arrays(root / "exams_part0.hdf5")[1]
    ids[1] = first_ids[0]
    _rewrite_shard(root / "exams_part2.hdf5", tracings=x, exam_id=ids)
    return root, f"exam_id {first_ids[0]} is at exams_part0.hdf5 row 0 and exams_part2.hdf5 row 1"


def _case_duplicate_ids_in_csv(root: Path) -> tuple[Path, str]:
    df = pd.read_csv(root / "exams.csv")
    pd.concat([df, df.iloc[[2]]]).to_csv(root / "exams.csv", index=False)
    return root / "exams.csv", f"exam_id {df.loc[2, 'exam_id']} is on lines [4, {len(df) + 2}]"


def _case_nan(root: Path) -> tuple[Path, str]:
    with h5py.File(root / "exams_part1.hdf5", "r+") as f:
        f["tracings"][4, 100, 3] = np.nan
        exam_id = f["exam_id"][4]
    return root / "exams_part1.hdf5", f"[row 4, exam_id {exam_id}]: tracing holds NaN"


def _case_missing_csv(root: Path) -> tuple[Path, str]:
    (root / "exams.csv").unlink()
    return root / "exams.csv", "not found"


def _case_no_shards(root: Path) -> tuple[Path, str]:
    for p in root.glob("*.hdf5"):
        p.unlink()
    return root, "no exams_part*.hdf5 shards found"


def _case_not_hdf5(root: Path) -> tuple[Path, str]:
    (root / "exams_part1.hdf5").write_text("not an hdf5 file")
    return root / "exams_part1.hdf5", "cannot open as HDF5"


BAD_CASES = [_case_no_tracings, _case_no_exam_id, _case_transposed, _case_length_mismatch,
             _case_label_columns_missing, _case_unlabelled_exams, _case_empty_label_cells, _case_bad_label_value,
             _case_duplicate_ids_in_shards, _case_duplicate_ids_in_csv, _case_nan, _case_missing_csv,
             _case_no_shards, _case_not_hdf5]


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda f: f.__name__.removeprefix("_case_"))
def test_bad_input_raises_data_error_naming_file_and_cause(case, code15, tmp_path):
    root = copy_fixture(code15[0], tmp_path / "d")
    path, cause = case(root)
    with pytest.raises(DataError) as err:
        build_code15_index(root)
    assert err.value.path == str(path)
    assert str(path) in str(err.value) and cause in str(err.value), str(err.value)


def test_missing_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist") as err:
        build_code15_index(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value)


@pytest.mark.parametrize("case, dropped", [(_case_unlabelled_exams, 3), (_case_empty_label_cells, 2)])
def test_missing_labels_drop_policy_drops_and_logs(case, dropped, code15, tmp_path, caplog):
    root = copy_fixture(code15[0], tmp_path / "d")
    case(root)
    with caplog.at_level(logging.INFO, logger="ecglit"):
        index = build_code15_index(root, missing_labels="drop")
    assert len(index) == 36 - dropped and not np.isnan(index.labels).any()
    assert f"{dropped} without labels" in caplog.text


def test_non_finite_drop_policy(code15, tmp_path):
    root = copy_fixture(code15[0], tmp_path / "d")
    _case_nan(root)
    index = build_code15_index(root, non_finite="drop")
    assert len(index) == 35 and index.counts["non_finite"] == 1


def test_bad_policy_is_config_error(code15):
    with pytest.raises(ConfigError, match="missing_labels"):
        build_code15_index(code15[0], missing_labels="ignore")


# -- CODE-test layout ----------------------------------------------------------------------------

def test_code_test_reader_is_row_aligned(tmp_path):
    labels = write_code_test_fixture(tmp_path, n_exams=12)
    ds = CodeTestDataset(tmp_path, input_scale=2.0)
    assert len(ds) == 12 and ds.exam_ids.tolist() == list(range(12))
    for i in range(12):
        x, y = ds[i]
        assert decode_exam_id(x / 2.0) == i + 1
        np.testing.assert_array_equal(y.numpy(), labels.iloc[i].to_numpy(float))
        np.testing.assert_array_equal(y.numpy(), decode_labels(x / 2.0))
    # the HDF5 path itself works too; without labels y is NaN
    (tmp_path / "annotations" / "gold_standard.csv").rename(tmp_path / "other.csv")
    unlabelled = CodeTestDataset(tmp_path / "ecg_tracings.hdf5")
    assert np.isnan(unlabelled[0][1].numpy()).all()
    with pytest.raises(DataError, match="no label CSV"):
        CodeTestDataset(tmp_path, require_labels=True)


def test_code_test_bad_inputs(tmp_path):
    labels = write_code_test_fixture(tmp_path, n_exams=6)
    csv = tmp_path / "annotations" / "gold_standard.csv"
    labels.iloc[:5].to_csv(csv, index=False)
    with pytest.raises(DataError, match="has 5 rows but ecg_tracings.hdf5 has 6") as err:
        CodeTestDataset(tmp_path)
    assert str(csv) in str(err.value)
    labels.drop(columns=["RBBB"]).to_csv(csv, index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['RBBB'\]"):
        CodeTestDataset(tmp_path)
    with h5py.File(tmp_path / "ecg_tracings.hdf5", "w") as f:
        f.create_dataset("tracings", shape=(6, 12, 4096), dtype="f4")
    with pytest.raises(DataError, match="looks transposed"):
        CodeTestDataset(tmp_path, labels=tmp_path / "none.csv")


def test_code_test_reads_the_published_annotations(tmp_path):
    annotations = SHARED / "reference" / "code-test" / "annotations"
    if not annotations.is_dir():
        pytest.skip(f"reference annotations not found at {annotations} (../shared beside the repository)")
    with h5py.File(tmp_path / "ecg_tracings.hdf5", "w") as f:  # 827 unwritten (zero) tracings: no storage
        f.create_dataset("tracings", shape=(827, 4096, 12), dtype="f4", chunks=(1, 4096, 12))
    gold = CodeTestDataset(tmp_path, labels=annotations / "gold_standard.csv")
    assert gold.labels.sum(axis=0).tolist() == [28, 34, 30, 16, 13, 37]
    dnn = CodeTestDataset(tmp_path, labels=annotations / "dnn.csv")  # has an extra unnamed index column
    assert dnn.labels.shape == (827, 6) and set(np.unique(dnn.labels)) <= {0.0, 1.0}


def test_label_table_reads_only_the_columns_it_needs(tmp_path):
    from ecglit.data.labels import parse_labels, read_table

    csv = tmp_path / "exams.csv"
    rows = ["exam_id,age,1dAVb,RBBB,LBBB,SB,AF,ST,patient_id,trace_file",
            "7,50,True,false, 1 ,0.0,,FALSE,3,exams_part0.hdf5",
            "9,61,False,TRUE,0,1,1.0,0,4,exams_part0.hdf5"]
    csv.write_text("\n".join(rows) + "\n")
    table = read_table(csv, ["exam_id", *CLASSES], "label table", optional=["patient_id", "not_there"])
    assert sorted(table.columns) == sorted(["exam_id", *CLASSES, "patient_id"])
    np.testing.assert_array_equal(parse_labels(table, csv), [[1, 0, 1, 0, np.nan, 0], [0, 1, 0, 1, 1, 0]])
    assert len(read_table(csv, CLASSES, "label table").columns) == 10  # without optional: every column
    csv.write_text("exam_id,age,1dAVb,RBBB,LBBB,SB,AF,patient_id\n7,50,1,0,0,0,0,3\n")
    # the message lists the whole header, not only the columns that would have been read
    with pytest.raises(DataError, match=r"missing column\(s\) \['ST'\]; found \['exam_id', 'age', '1dAVb'"):
        read_table(csv, ["exam_id", *CLASSES], "label table", optional=["patient_id"])
    csv.write_text("exam_id,1dAVb,RBBB,LBBB,SB,AF,ST\n5,1,0,0,0,0,yes\n")
    with pytest.raises(DataError, match=r"exams.csv \[line 2, exam_id 5\]: column 'ST' has value 'yes'"):
        parse_labels(read_table(csv, ["exam_id", *CLASSES], "t", optional=[]), csv, row_names=[5])
