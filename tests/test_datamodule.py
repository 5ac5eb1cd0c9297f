"""ECGDataModule (splits, loaders, workers, external test sets), SyntheticDataModule and the data configs."""

from __future__ import annotations

import dataclasses
import types
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pandas as pd
import pytest
import torch
from helpers.shards import decode_exam_id, decode_labels, write_code15_fixture, write_code_test_fixture
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from torch.utils.data import Dataset

from ecglit.constants import CLASSES
from ecglit.data import synthetic_datamodule as synthetic_dm
from ecglit.data.datamodule import ECGDataModule
from ecglit.data.splits import split_by_patient, split_last_rows
from ecglit.data.synthetic.config import SyntheticConfig
from ecglit.data.synthetic_datamodule import SyntheticDataModule
from ecglit.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def code15(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("code15")
    return root, write_code15_fixture(root, n_exams=60, n_shards=3, extra_zero_rows=1, patients=25, seed=1)


def patients_of(dm: ECGDataModule, split: str, df: pd.DataFrame) -> set[int]:
    by_id = df.set_index("exam_id")["patient_id"]
    return set(by_id.loc[dm.exam_ids(split)].tolist())


def loader_ids_and_check(loader) -> list[int]:
    """exam_ids in loader order, checking every item's labels against the tracing's encoding."""
    ids = []
    for x, y in loader:
        assert x.dtype == torch.float32 and x.shape[1:] == (12, 4096) and y.shape[1:] == (6,)
        for xi, yi in zip(x, y):
            np.testing.assert_array_equal(yi.numpy(), decode_labels(xi))
            ids.append(decode_exam_id(xi))
    return ids


# -- splits --------------------------------------------------------------------------------------

def test_patient_split_keeps_patients_together_and_is_seeded():
    rng = np.random.default_rng(0)
    patients = rng.integers(0, 300, size=1000)
    a = split_by_patient(patients, 0.1, 0.2, seed=4)
    assert sorted(np.concatenate(a).tolist()) == list(range(1000))
    sets = [set(patients[idx]) for idx in a]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    assert abs(len(a.val) - 100) < 15 and abs(len(a.test) - 200) < 15  # whole patients: ~fractions
    b = split_by_patient(patients, 0.1, 0.2, seed=4)
    c = split_by_patient(patients, 0.1, 0.2, seed=5)
    assert all(np.array_equal(u, v) for u, v in zip(a, b))
    assert not np.array_equal(a.val, c.val)


def test_last_rows_split():
    s = split_last_rows(100, val_fraction=0.02, test_fraction=0.1)
    assert s.val.tolist() == [98, 99] and s.test.tolist() == list(range(88, 98))
    assert s.train.tolist() == list(range(88))


@pytest.mark.parametrize("val, test", [(-0.1, 0.1), (0.6, 0.5), (0.1, 1.0)])
def test_bad_fractions_are_config_errors(val, test):
    with pytest.raises(ConfigError):
        split_by_patient(np.arange(10), val, test)


# -- ECGDataModule -------------------------------------------------------------------------------

def test_datamodule_patient_split_loaders_and_labels(code15):
    root, df = code15
    dm = ECGDataModule(root, batch_size=8, val_fraction=0.2, test_fraction=0.2, seed=7)
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    ids = {s: dm.exam_ids(s).tolist() for s in ("train", "val", "test")}
    all_ids = set(df["exam_id"]) - set(df.attrs["zero_exam_ids"])
    assert sorted(i for split_ids in ids.values() for i in split_ids) == sorted(all_ids)
    p = {s: patients_of(dm, s, df) for s in ids}
    assert not (p["train"] & p["val"] or p["train"] & p["test"] or p["val"] & p["test"])
    assert 8 <= len(ids["val"]) <= 16 and 8 <= len(ids["test"]) <= 16
    # val/test/predict loaders are in exam_ids order; train covers its split once per epoch
    assert loader_ids_and_check(dm.val_dataloader()) == ids["val"]
    assert loader_ids_and_check(dm.predict_dataloader()) == ids["test"]
    assert sorted(loader_ids_and_check(dm.train_dataloader())) == sorted(ids["train"])
    csv = df.set_index("exam_id")
    _, y = dm.dataset("test")[0]
    np.testing.assert_array_equal(y.numpy(), csv.loc[ids["test"][0], list(CLASSES)].to_numpy(float))
    # same seed, same split; another seed, another split
    again = ECGDataModule(root, val_fraction=0.2, test_fraction=0.2, seed=7)
    again.setup("fit")
    assert again.exam_ids("val").tolist() == ids["val"]
    other = ECGDataModule(root, val_fraction=0.2, test_fraction=0.2, seed=8)
    other.setup("fit")
    assert other.exam_ids("val").tolist() != ids["val"]


def test_datamodule_last_rows_split(code15):
    root, df = code15
    dm = ECGDataModule(root, split="last_rows", val_fraction=0.1, test_fraction=0.0)
    dm.setup("fit")
    kept = [i for i in df["exam_id"] if i not in df.attrs["zero_exam_ids"]]  # df is in shard order
    assert dm.exam_ids("val").tolist() == kept[-6:]
    assert dm.exam_ids("train").tolist() == kept[:-6]
    with pytest.raises(ConfigError, match="no test set"):
        dm.test_dataloader()


def test_datamodule_input_scale(code15):
    root, _ = code15
    plain = ECGDataModule(root, input_scale=1.0)
    scaled = ECGDataModule(root, input_scale=0.5)
    for dm in (plain, scaled):
        dm.setup("fit")
    np.testing.assert_allclose(scaled.dataset("val")[0][0].numpy(), 0.5 * plain.dataset("val")[0][0].numpy())


def test_train_loader_with_two_spawn_workers(code15):
    root, _ = code15
    dm = ECGDataModule(root, batch_size=16, num_workers=2, multiprocessing_context="spawn",
                       persistent_workers=False)
    dm.setup("fit")
    ids = loader_ids_and_check(dm.train_dataloader())
    assert sorted(ids) == sorted(dm.exam_ids("train").tolist())


def test_external_test_sets(code15, tmp_path):
    root, _ = code15
    ext = tmp_path / "ext"
    ext_df = write_code15_fixture(ext, n_exams=10, n_shards=1, first_exam_id=90_000, seed=5)
    dm = ECGDataModule(root, test_root=ext, test_fraction=0.3, val_fraction=0.2)
    dm.setup("fit")
    dm.setup("test")
    assert dm.exam_ids("test").tolist() == [i for i in ext_df["exam_id"] if i not in ext_df.attrs["zero_exam_ids"]]
    assert len(dm.exam_ids("train")) + len(dm.exam_ids("val")) == 60  # no internal test split
    ct = tmp_path / "code_test"
    labels = write_code_test_fixture(ct, n_exams=7)
    dm = ECGDataModule(None, test_root=ct, test_format="code_test", batch_size=4)
    dm.setup("test")
    batches = list(dm.test_dataloader())
    y = torch.cat([b[1] for b in batches])
    np.testing.assert_array_equal(y.numpy(), labels.to_numpy(float))
    with pytest.raises(ConfigError, match="data.root is not set"):
        dm.setup("fit")


def test_datamodule_bad_inputs(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        ECGDataModule(tmp_path / "missing").setup("fit")
    with pytest.raises(ConfigError, match="test_format"):
        ECGDataModule(tmp_path, test_format="wfdb")
    with pytest.raises(ConfigError, match="split"):
        ECGDataModule(tmp_path, split="date")


# -- SyntheticDataModule with a stand-in generator -------------------------------------------------

@dataclasses.dataclass
class FakeConfig:
    prevalence: float = 0.3

    @classmethod
    def from_dict(cls, mapping):
        return cls(**dict(mapping or {}))

    def to_dict(self):
        return dataclasses.asdict(self)


class FakeSyntheticDataset(Dataset):
    def __init__(self, n, seed, config=None, input_scale=1.0):
        self.n, self.scale = n, input_scale

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return torch.full((12, 4096), float(i) * self.scale), torch.zeros(6)


@pytest.fixture
def fake_synthetic(monkeypatch):
    calls = []

    def materialize(out_dir, n, seed, config=None, shard_size=20_000, workers=None, progress=True,
                    first_exam_id=1):
        calls.append(Path(out_dir))
        if config.prevalence < 0:  # simulate a run that dies half-way through
            write_code15_fixture(out_dir, n_exams=n // 2, n_shards=1)
            raise KeyboardInterrupt
        write_code15_fixture(out_dir, n_exams=n, n_shards=2, extra_zero_rows=0, seed=seed,
                             first_exam_id=first_exam_id)
        return Path(out_dir)

    api = types.SimpleNamespace(SyntheticConfig=FakeConfig, SyntheticECGDataset=FakeSyntheticDataset,
                                materialize=materialize, GENERATOR_VERSION="fake-1")
    monkeypatch.setattr(synthetic_dm, "_synthetic_api", lambda: api)
    return calls


def test_synthetic_materializes_once_and_reuses_the_cache(fake_synthetic, tmp_path):
    kwargs = {"n": 30, "seed": 2, "generator": {"prevalence": 0.2}, "cache_dir": tmp_path, "batch_size": 8}
    dm = SyntheticDataModule(**kwargs)
    dm.prepare_data()
    dm.setup("fit")
    assert len(fake_synthetic) == 1 and dm.root.parent == tmp_path and dm.is_materialized()
    assert sum(len(dm.dataset(s)) for s in ("train", "val", "test")) == 30
    again = SyntheticDataModule(**kwargs)
    again.prepare_data()
    again.setup("fit")
    assert len(fake_synthetic) == 1 and again.root == dm.root  # reused, not regenerated
    assert again.exam_ids("val").tolist() == dm.exam_ids("val").tolist()
    SyntheticDataModule(**{**kwargs, "generator": {"prevalence": 0.25}}).setup("fit")
    assert len(fake_synthetic) == 2 and len(list(tmp_path.iterdir())) == 2  # new settings, new cache


def test_synthetic_interrupted_generation_leaves_no_cache(fake_synthetic, tmp_path):
    dm = SyntheticDataModule(n=20, generator={"prevalence": -1.0}, cache_dir=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        dm.prepare_data()
    assert list(tmp_path.iterdir()) == [] and not dm.is_materialized()


def test_synthetic_on_the_fly(fake_synthetic, tmp_path):
    dm = SyntheticDataModule(n=50, seed=1, mode="on_the_fly", cache_dir=tmp_path, val_fraction=0.2,
                             test_fraction=0.1, input_scale=2.0, batch_size=10)
    dm.prepare_data()
    dm.setup("fit")
    dm.setup("test")
    sizes = {s: len(dm.dataset(s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 35, "val": 10, "test": 5} and fake_synthetic == []
    assert list(tmp_path.iterdir()) == []  # nothing written
    ids = np.concatenate([dm.exam_ids(s) for s in ("train", "val", "test")])
    assert sorted(ids.tolist()) == list(range(1, 51))
    x, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(x[:, 0, 0], (torch.as_tensor(dm.exam_ids("val")[:10]) - 1).float() * 2.0)


# -- configs -------------------------------------------------------------------------------------

def compose_data(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base="1.3", config_dir=str(REPO / "conf")):
        return compose("train", overrides=overrides)


def test_data_configs_instantiate_our_classes(code15, tmp_path):
    root, _ = code15
    dm = instantiate(compose_data(["data=code15", f"data.root={root}", "data.num_workers=0"]).data)
    assert isinstance(dm, ECGDataModule) and dm.root == root and dm.batch_size == 64
    ct = compose_data(["data=code_test", f"data.test_root={tmp_path}"]).data
    assert ct.test_format == "code_test" and ct.root is None
    syn = compose_data([f"paths.data_dir={tmp_path}"]).data
    dm = instantiate(syn)
    assert isinstance(dm, SyntheticDataModule) and dm.root.parent == tmp_path / "synthetic"
    assert not dm.is_materialized()  # building it generates nothing
    assert dm.generator_config == SyntheticConfig()  # the composed generator node is the dataclass's defaults
    assert 12_000 <= syn.n <= 16_000 and syn.val_fraction == 0.1 and syn.test_fraction == 0.1


# -- with the real generator and a Trainer ----------------------------------------------------------

def test_synthetic_real_generator_materialized_equals_on_the_fly(tmp_path):
    common = {"n": 40, "seed": 3, "cache_dir": tmp_path, "batch_size": 8, "progress": False,
              "generator_workers": 1}
    stored = SyntheticDataModule(**common)
    stored.prepare_data()
    stored.setup("fit")
    live = SyntheticDataModule(**common, mode="on_the_fly")
    live.setup("fit")
    ds = stored.dataset("val")
    exam_id = int(ds.exam_ids[0])
    x_live, y_live = live.datasets["train"].dataset[exam_id - 1]  # on-the-fly item i is exam_id i + 1
    x, y = ds[0]
    torch.testing.assert_close(x, x_live)
    assert torch.equal(y, y_live)


class _TinyModule(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Linear(12, 6)

    def forward(self, x):
        return self.net(x.mean(dim=-1))

    def training_step(self, batch, _):
        x, y = batch
        return torch.nn.functional.binary_cross_entropy_with_logits(self(x), y)

    def validation_step(self, batch, _):
        self.log("val/loss", self.training_step(batch, _))

    def predict_step(self, batch, _):
        return self(batch[0])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_datamodule_drives_a_trainer_fit_and_predict(code15, tmp_path):
    dm = ECGDataModule(code15[0], batch_size=8)
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(_TinyModule(), datamodule=dm)
    assert trainer.global_step == -(-len(dm.dataset("train")) // 8)
    preds = torch.cat(trainer.predict(_TinyModule(), datamodule=dm))
    assert preds.shape == (len(dm.exam_ids("test")), 6)
