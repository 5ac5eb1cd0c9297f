"""Which exceptions end as one line (ecglit.utils.user_errors), including the round trips through Hydra's
instantiate, DataLoader worker processes and pickling; everything else stays a bug with its traceback."""

from __future__ import annotations

import pickle

import h5py
import hydra
import numpy as np
import pytest
from torch.utils.data import DataLoader, Dataset

from ecglit.configs import compose
from ecglit.data.h5dataset import H5RowsDataset
from ecglit.errors import ConfigError, DataError
from ecglit.utils.user_errors import DATA_EXIT, USAGE_EXIT, describe_user_error


class _CustomDataError(DataError):
    """A subclass whose __init__ takes other arguments: torch cannot rebuild it from its text."""

    def __init__(self, path: str, row: int) -> None:
        super().__init__(path, "bad row", record=f"row {row}")


class _Failing(Dataset):
    def __init__(self, error: Exception) -> None:
        self.error = error

    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int):
        raise self.error


def _from_worker(error: Exception) -> BaseException:
    loader = DataLoader(_Failing(error), batch_size=2, num_workers=1, multiprocessing_context="fork")
    with pytest.raises(Exception) as caught:
        next(iter(loader))
    return caught.value


def test_data_error_survives_the_dataloader_worker():
    err = _from_worker(DataError("/data/exams_part3.hdf5", "truncated", record="row 17"))
    assert isinstance(err, DataError)  # rebuilt from its text, no longer a RuntimeError
    assert "Traceback" in str(err)  # what torch put in it
    found = describe_user_error(err)
    assert found is not None and found.exit_code == DATA_EXIT
    assert found.message == "/data/exams_part3.hdf5 [row 17]: truncated"


def test_custom_data_error_from_a_worker_is_recognised_in_the_runtime_error():
    err = _from_worker(_CustomDataError("/data/x.hdf5", 5))
    assert type(err) is RuntimeError  # torch could not rebuild it
    found = describe_user_error(err)
    assert found is not None and found.message == "/data/x.hdf5 [row 5]: bad row" and found.exit_code == DATA_EXIT


def test_a_bug_in_a_worker_stays_a_bug():
    assert describe_user_error(_from_worker(ZeroDivisionError("division by zero"))) is None


def test_corrupt_shard_read_in_a_worker_names_the_file(tmp_path):
    """H5RowsDataset opens its files lazily in the worker: a file damaged after the index was built."""
    path = tmp_path / "exams_part0.hdf5"
    with h5py.File(path, "w") as f:
        f["tracings"] = np.zeros((4, 4096, 12), np.float32)
    ds = H5RowsDataset([path], np.zeros(4, np.int64), np.arange(4), np.zeros((4, 6), np.float32), np.arange(1, 5))
    path.write_bytes(b"not an HDF5 file any more")
    err = _from_worker_dataset(ds)
    found = describe_user_error(err)
    assert found is not None and found.message.startswith(f"{path}: cannot open as HDF5")


def _from_worker_dataset(ds: Dataset) -> BaseException:
    with pytest.raises(Exception) as caught:
        next(iter(DataLoader(ds, batch_size=2, num_workers=1, multiprocessing_context="fork")))
    return caught.value


def test_data_error_pickles_as_its_message():
    err = pickle.loads(pickle.dumps(DataError("/a/b.csv", "not 0/1", record="row 3")))
    assert isinstance(err, DataError) and str(err) == "/a/b.csv [row 3]: not 0/1"
    assert str(DataError("just a message")) == "just a message"


def test_instantiation_error_names_the_full_key():
    """``model.dropout=1.5`` fails inside ResNet1d, built by ECGClassifier, which Hydra instantiates from
    ``module``: the line names the key the user wrote."""
    cfg = compose("train", ["model.dropout=1.5", "logger=none"])
    from ecglit.training import build_module

    with pytest.raises(Exception) as caught:
        build_module(cfg)
    assert type(caught.value).__name__ == "InstantiationException"
    found = describe_user_error(caught.value, cfg)
    assert found == type(found)("model.dropout is a drop probability in [0, 1), got 1.5", USAGE_EXIT)
    cfg = compose("train", ["data=code15", "data.root=shards", "data.batch_size=-1"])
    with pytest.raises(Exception) as caught:
        hydra.utils.instantiate(cfg.data)
    found = describe_user_error(caught.value, cfg)
    assert found.message == "data.batch_size must be >= 1, got -1"
    # without the config, the node Hydra was instantiating still names where to look
    assert describe_user_error(caught.value).message == "data: batch_size must be >= 1, got -1"


def test_h5py_open_error_names_the_file(tmp_path):
    bad = tmp_path / "tracings.hdf5"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(OSError) as caught:
        h5py.File(bad, "r")
    assert str(bad) not in str(caught.value)  # h5py does not say which file
    found = describe_user_error(caught.value)
    assert found.message.startswith(f"{bad}: ") and "file signature not found" in found.message
    assert found.exit_code == DATA_EXIT


def test_plain_os_errors_and_bugs():
    missing = describe_user_error(FileNotFoundError(2, "No such file or directory", "/x/y.csv"))
    assert missing.message == "/x/y.csv: No such file or directory" and missing.exit_code == DATA_EXIT
    assert describe_user_error(ValueError("a bug")) is None
    assert describe_user_error(TypeError("unsupported operand")) is None
    assert describe_user_error(ConfigError("n must be >= 1, got 0")).exit_code == USAGE_EXIT
    chained = RuntimeError("wrapper")
    chained.__cause__ = DataError("/f.csv", "empty")
    assert describe_user_error(chained).message == "/f.csv: empty"


def test_spawned_process_traceback_text():
    """ddp_spawn workers come back as an exception holding the worker's traceback as text."""
    text = ("\n\n-- Process 1 terminated with the following error:\nTraceback (most recent call last):\n"
            '  File "x.py", line 3, in f\n    raise DataError(p, "bad")\n'
            "ecglit.errors.DataError: /d/exams_part0.hdf5: 'tracings' has shape (3, 12, 4096)\n")
    assert describe_user_error(Exception(text)).message == "/d/exams_part0.hdf5: 'tracings' has shape (3, 12, 4096)"
    assert describe_user_error(Exception(text.replace("ecglit.errors.DataError", "IndexError"))) is None
