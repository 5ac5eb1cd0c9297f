"""Batch augmentation (ecglit/data/augment.py): lead relations, padding, determinism, and each transform
checked against an independent computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from ecglit.constants import SAMPLE_RATE
from ecglit.data.augment import INDEPENDENT, AugmentConfig, BatchAugmenter
from ecglit.data.synthetic import SyntheticConfig, generate_batch
from ecglit.errors import ConfigError

OFF = {"p_spatial": 0.0, "p_gain": 0.0, "p_wander": 0.0, "p_powerline": 0.0, "p_emg": 0.0, "p_shift": 0.0,
       "p_lead_dropout": 0.0}
DOWER = np.array([[0.632, -0.235, 0.059], [0.235, 1.066, -0.132], [-0.515, 0.157, -0.917],
                  [0.044, 0.164, -1.387], [0.882, 0.098, -1.277], [1.213, 0.127, -0.601],
                  [1.125, 0.127, -0.086], [0.831, 0.076, 0.230]])  # Dower et al. 1980, rows I, II, V1..V6


@pytest.fixture(scope="module")
def batch() -> torch.Tensor:
    x, _, _, _ = generate_batch(3, range(16), SyntheticConfig(p_record_10s=0.5))
    return torch.from_numpy(x).transpose(1, 2).contiguous()


def _augment(x: torch.Tensor, seed: int = 0, **on: float) -> torch.Tensor:
    return BatchAugmenter(AugmentConfig(**{**OFF, **on}))(x, seed)


def _limb_residuals(x: np.ndarray) -> float:
    i, ii, iii, avr, avl, avf = (x[:, k] for k in range(6))
    return float(max(np.abs(iii - (ii - i)).max(), np.abs(avr + (i + ii) / 2).max(),
                     np.abs(avl - (i - ii / 2)).max(), np.abs(avf - (ii - i / 2)).max()))


def test_everything_off_is_the_identity(batch):
    assert torch.equal(_augment(batch), batch)


def test_all_transforms_keep_the_limb_lead_identities(batch):
    out = BatchAugmenter(AugmentConfig(p_spatial=1, p_gain=1, p_wander=1, p_powerline=1, p_emg=1, p_shift=1,
                                       p_lead_dropout=0))(batch, 5).numpy()
    assert _limb_residuals(out) < 1e-3 * np.abs(out).max()


def test_same_seed_same_batch_other_seed_other_batch(batch):
    aug = BatchAugmenter(AugmentConfig())
    assert torch.equal(aug(batch, 11), aug(batch, 11))
    assert not torch.equal(aug(batch, 11), aug(batch, 12))


def test_noise_stays_out_of_the_zero_padding(batch):
    padded = (batch == 0).all(dim=1)  # (B, N): the padding of 7 s records
    assert padded.any()
    out = _augment(batch, p_wander=1, p_powerline=1, p_emg=1)
    assert torch.all(out.transpose(1, 2)[padded] == 0)
    assert not torch.equal(out, batch)


def test_spatial_rotation_of_a_dipolar_signal_matches_scipy():
    rng = np.random.default_rng(0)
    vcg = rng.standard_normal((1, 3, 4096)).astype(np.float32)
    x8 = np.einsum("lk,bkn->bln", DOWER, vcg)
    x12 = np.zeros((1, 12, 4096), np.float32)
    x12[:, INDEPENDENT] = x8
    x12[:, 2], x12[:, 3] = x8[:, 1] - x8[:, 0], -(x8[:, 0] + x8[:, 1]) / 2
    x12[:, 4], x12[:, 5] = x8[:, 0] - x8[:, 1] / 2, x8[:, 1] - x8[:, 0] / 2
    aug = BatchAugmenter(AugmentConfig(**{**OFF, "p_spatial": 1.0, "max_rotation_deg": 30.0,
                                          "axis_scale": (1.0, 1.0)}))
    out = aug(torch.from_numpy(x12), 3).numpy()[:, INDEPENDENT]
    # recover the rotation the augmenter drew: least squares VCG of the output, then compare with scipy
    moved = np.linalg.lstsq(DOWER, out[0], rcond=None)[0]
    rot, _ = Rotation.align_vectors(moved.T, vcg[0].T)
    assert np.allclose(rot.apply(vcg[0].T).T, moved, atol=1e-3)
    assert 0.0 < rot.magnitude() <= np.radians(30.0) * np.sqrt(3) + 1e-6  # rotated, within the range


def test_spatial_keeps_the_non_dipolar_residual():
    rng = np.random.default_rng(1)
    x8 = rng.standard_normal((1, 8, 4096))
    residual = x8 - np.einsum("lk,kj,bjn->bln", DOWER, np.linalg.pinv(DOWER), x8)  # orthogonal to Dower
    x12 = np.zeros((1, 12, 4096), np.float32)
    x12[:, INDEPENDENT] = residual
    out = _augment(torch.from_numpy(x12).float(), 4, p_spatial=1.0).numpy()[:, INDEPENDENT]
    assert np.allclose(out, residual, atol=1e-5)


def test_gain_scales_within_range(batch):
    out = _augment(batch, p_gain=1.0).numpy()
    ratio = np.abs(out).max(axis=(1, 2)) / np.abs(batch.numpy()).max(axis=(1, 2))
    assert np.all(ratio > 0.5 * 0.85 - 1e-6) and np.all(ratio < 2.0 * 1.15 + 1e-6)


def test_powerline_is_at_50_or_60_hz(batch):
    clean = batch[:1].clone()
    clean.zero_()
    clean[..., 10:-10] = 1e-6  # a recording with nothing in it
    noise = _augment(clean, 7, p_powerline=1.0)[0, 0].numpy()
    spectrum = np.abs(np.fft.rfft(noise))
    peak_hz = np.fft.rfftfreq(len(noise), 1 / SAMPLE_RATE)[int(np.argmax(spectrum))]
    assert min(abs(peak_hz - 50), abs(peak_hz - 60)) < 0.2


def test_shift_crops_a_contiguous_window_and_never_rescales_time(batch):
    out = _augment(batch, 9, p_shift=1.0).numpy()
    x = batch.numpy()
    for b in range(len(x)):
        rec = np.flatnonzero((out[b] != 0).any(axis=0))
        seg = out[b, :, rec[0]:rec[-1] + 1]
        assert seg.shape[1] >= 7 * SAMPLE_RATE - 1
        # the window is a slice of the original recording, sample for sample
        lead = x[b, 1]
        starts = [s for s in range(0, lead.size - seg.shape[1] + 1) if np.array_equal(lead[s:s + 50], seg[1, :50])]
        assert any(np.array_equal(x[b, :, s:s + seg.shape[1]], seg) for s in starts)


def test_lead_dropout_flattens_whole_leads(batch):
    out = _augment(batch, 2, p_lead_dropout=1.0, max_dropped_leads=2).numpy()
    flat = (out == 0).all(axis=2) & ~(batch.numpy() == 0).all(axis=2)
    assert np.all((flat.sum(axis=1) >= 1) & (flat.sum(axis=1) <= 2))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"p_emg": 1.5}, "p_emg must be a probability"),
    ({"gain": (2.0, 1.0)}, "gain must be (low, high)"),
    ({"min_seconds": 20}, "min_seconds"),
])
def test_bad_settings_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AugmentConfig(**kwargs)
    with pytest.raises(ConfigError, match="unknown augment settings"):
        AugmentConfig.from_dict({"p_emgg": 0.1})


def test_datamodule_augments_training_batches_only(batch):
    from ecglit.data.datamodule import ECGDataModule

    dm = ECGDataModule(root=None, augment={"p_gain": 1.0})

    class Trainer:
        training, current_epoch, global_rank = True, 0, 0

        class fit_loop:  # noqa: N801 - mimics the attribute path Lightning exposes
            class epoch_loop:  # noqa: N801
                class batch_progress:  # noqa: N801
                    class current:  # noqa: N801
                        ready = 3

    dm.trainer = Trainer()
    y = torch.zeros(len(batch), 6)
    augmented, _ = dm.on_after_batch_transfer([batch, y], 0)
    assert not torch.equal(augmented, batch)
    Trainer.training = False
    same, _ = dm.on_after_batch_transfer([batch, y], 0)
    assert torch.equal(same, batch)
