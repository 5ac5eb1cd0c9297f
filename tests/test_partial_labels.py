"""Training and validation on labels with empty (not annotated) cells: the loss and the epoch metrics
leave those cells out, per class, and never flatten or drop whole exams (regression: torchmetrics'
CatMetric drops NaN by default, which turned a (N, 6) validation epoch into a 1-D vector)."""

from __future__ import annotations

import lightning
import numpy as np
import torch
from helpers.broken_inputs import TINY_NET
from sklearn.metrics import roc_auc_score
from torch.utils.data import DataLoader, TensorDataset

from ecglit.constants import N_SAMPLES
from ecglit.models.ecg_module import ECGClassifier


def _loader(n: int, seed: int) -> tuple[DataLoader, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 12, N_SAMPLES, generator=g) * 0.1  # (N, leads, samples), as the loaders give
    y = (torch.rand(n, 6, generator=g) < 0.4).float()
    y[:, 0] = torch.arange(n) % 2  # both values in every class that stays annotated
    y[: n // 2, 3] = float("nan")  # half of SB not annotated (as a source that never labels SB)
    y[:, 5] = float("nan")         # ST annotated nowhere
    return DataLoader(TensorDataset(x, y), batch_size=8), y


def test_validation_epoch_with_unannotated_cells(tmp_path):
    torch.manual_seed(0)
    train, _ = _loader(16, 0)
    val, y_val = _loader(24, 1)
    module = ECGClassifier(net=TINY_NET)
    trainer = lightning.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                enable_model_summary=False, default_root_dir=tmp_path, num_sanity_val_steps=0)
    trainer.fit(module, train, val)
    report = module.last_report
    assert report["n_exams"] == 24
    # AUROC of an annotated class equals sklearn's on every exam; of a half-annotated class on its half
    module.eval()
    with torch.no_grad():
        probs = torch.cat([module.predict_proba(x) for x, _ in val]).numpy()
    assert np.isclose(report["per_class"]["1dAVb"]["auroc"], roc_auc_score(y_val[:, 0], probs[:, 0]), atol=1e-5)
    sb = ~torch.isnan(y_val[:, 3])
    assert set(y_val[sb, 3].tolist()) == {0.0, 1.0}
    assert np.isclose(report["per_class"]["SB"]["auroc"], roc_auc_score(y_val[sb, 3], probs[sb.numpy(), 3]), atol=1e-5)
    # a class annotated nowhere has no metric and keeps its threshold; the others are finite
    assert np.isnan(report["per_class"]["ST"]["auroc"])
    assert report["thresholds"]["ST"] == 0.5
    assert all(np.isfinite(report["thresholds"][c]) for c in ("1dAVb", "RBBB", "LBBB", "SB", "AF"))
