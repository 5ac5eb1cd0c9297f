"""Training-time augmentation of ECG batches, on the device, for any dataset (synthetic or real).

The transforms act on a batch ``x`` (B, 12, 4096) in model units (stored 1e-4 V times ``input_scale``) and
keep the 12 leads one recording: each one changes the 8 independent leads (I, II, V1..V6) and re-derives
III, aVR, aVL and aVF (Einthoven/Goldberger), and leaves the zero padding of short records at zero.

- ``spatial``: 3KG-style rotation and scaling of the heart vector (the 8 leads -> VCG through the
  inverse Dower transform, rotated, scaled, projected back; the non-dipolar residual is kept), so the
  electrical axis and the precordial transition move as they do between patients;
- ``gain``: global (log-uniform) and per-lead amplitude changes (body habitus, device calibration);
- ``wander``: baseline wander, slow sinusoids per electrode (respiration, motion);
- ``powerline``: 50 or 60 Hz interference with its harmonic;
- ``emg``: broadband muscle noise with a burst envelope;
- ``shift``: a random crop of the recorded window, re-padded symmetrically (7-10.24 s records, any
  alignment), which never rescales time, so rates and intervals (the labels) are unchanged;
- ``lead_dropout``: a few leads flat (disconnected electrodes, missing leads).
No maintained package fits: torch_ecg's augmenters work on single records in numpy and do not keep the
lead relations; these are a few vectorised torch lines each.

Every transform draws from a torch.Generator that the caller seeds per batch (``seed``), so a batch is
augmented identically whatever the worker or process, and a resumed run repeats the same draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from ecglit.constants import SAMPLE_RATE, UNITS_PER_MV
from ecglit.errors import ConfigError

# Dower et al. (Clin Cardiol 1980): VCG (X, Y, Z) -> I, II, V1..V6, the same matrix as the generator's.
_DOWER = torch.tensor([
    [0.632, -0.235, 0.059], [0.235, 1.066, -0.132], [-0.515, 0.157, -0.917], [0.044, 0.164, -1.387],
    [0.882, 0.098, -1.277], [1.213, 0.127, -0.601], [1.125, 0.127, -0.086], [0.831, 0.076, 0.230],
])
_DOWER_INVERSE = torch.linalg.pinv(_DOWER)  # (3, 8) least-squares VCG of the 8 leads
INDEPENDENT = [0, 1, 6, 7, 8, 9, 10, 11]  # I, II, V1..V6 among the 12 leads
# Electrode potentials RA, LA, LL, C1..C6 -> I, II, V1..V6 (Vi = Ci - Wilson's central terminal): noise drawn
# per electrode shows up in every lead that uses the electrode, as it does in a recording.
_ELECTRODE_TO_LEAD = torch.zeros(8, 9)
_ELECTRODE_TO_LEAD[0, :2] = torch.tensor([-1.0, 1.0])
_ELECTRODE_TO_LEAD[1, [0, 2]] = torch.tensor([-1.0, 1.0])
_ELECTRODE_TO_LEAD[2:, :3] = -1.0 / 3.0
_ELECTRODE_TO_LEAD[2:, 3:] = torch.eye(6)


def derive_limb_leads(x8: torch.Tensor) -> torch.Tensor:
    """(B, 8, N) I, II, V1..V6 -> (B, 12, N) in CODE order with III, aVR, aVL, aVF derived."""
    i, ii = x8[:, 0], x8[:, 1]
    limb = torch.stack([i, ii, ii - i, -(i + ii) / 2, i - ii / 2, ii - i / 2], dim=1)
    return torch.cat([limb, x8[:, 2:]], dim=1)


def _rotation(angles: torch.Tensor) -> torch.Tensor:
    """(B, 3) angles about X, Y, Z -> (B, 3, 3) rotation matrices."""
    c, s = torch.cos(angles), torch.sin(angles)
    one, zero = torch.ones_like(c[:, 0]), torch.zeros_like(c[:, 0])
    rx = torch.stack([one, zero, zero, zero, c[:, 0], -s[:, 0], zero, s[:, 0], c[:, 0]], 1).view(-1, 3, 3)
    ry = torch.stack([c[:, 1], zero, s[:, 1], zero, one, zero, -s[:, 1], zero, c[:, 1]], 1).view(-1, 3, 3)
    rz = torch.stack([c[:, 2], -s[:, 2], zero, s[:, 2], c[:, 2], zero, zero, zero, one], 1).view(-1, 3, 3)
    return rz @ ry @ rx


@dataclass
class AugmentConfig:
    """Probabilities (``p_*``) and ranges of the transforms; ``p_*: 0`` turns one off.

    Amplitudes are in mV (converted with the data's units); angles in degrees.
    """

    p_spatial: float = 0.8
    max_rotation_deg: float = 25.0
    axis_scale: tuple[float, float] = (0.8, 1.25)
    p_gain: float = 0.8
    gain: tuple[float, float] = (0.5, 2.0)
    lead_gain: float = 0.15
    p_wander: float = 0.5
    wander_mv: float = 0.15
    p_powerline: float = 0.3
    powerline_mv: float = 0.05
    p_emg: float = 0.5
    emg_mv: float = 0.02
    p_shift: float = 0.5
    min_seconds: float = 7.0
    p_lead_dropout: float = 0.1
    max_dropped_leads: int = 2

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("p_") and not 0.0 <= float(value) <= 1.0:
                raise ConfigError(f"augment.{f.name} must be a probability in [0, 1], got {value!r}")
        for name in ("gain", "axis_scale"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= hi:
                raise ConfigError(f"augment.{name} must be (low, high) with 0 < low <= high, got {(lo, hi)}")
        if not 0 < self.min_seconds <= 4096 / SAMPLE_RATE:
            raise ConfigError(f"augment.min_seconds must be in (0, 10.24], got {self.min_seconds}")

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> AugmentConfig:
        data = dict(mapping or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown augment settings {unknown}; valid: {sorted(names)}")
        for name in ("gain", "axis_scale"):
            if name in data:
                data[name] = tuple(float(v) for v in data[name])
        return cls(**data)


@dataclass
class BatchAugmenter:
    """Applies the configured transforms to training batches (see the module docstring)."""

    config: AugmentConfig = field(default_factory=AugmentConfig)
    units_per_mv: float = UNITS_PER_MV  # stored units per mV times the data's input_scale

    def __call__(self, x: torch.Tensor, seed: int) -> torch.Tensor:
        """The augmented batch (a new tensor); ``seed`` fixes every draw."""
        gen = torch.Generator(device="cpu").manual_seed(int(seed) % (2**63))
        cfg = self.config
        b = x.shape[0]
        x8 = x[:, INDEPENDENT].float()
        recorded = _recorded_mask(x8)  # (B, 1, N) True inside the recording (zero padding outside)
        if cfg.p_shift > 0:
            x8, recorded = self._shift(x8, recorded, gen)
        if cfg.p_spatial > 0:
            x8 = self._spatial(x8, gen)
        if cfg.p_gain > 0:
            x8 = self._gain(x8, gen)
        electrodes = torch.zeros(b, 9, x8.shape[-1])
        for p, noise in ((cfg.p_wander, self._wander), (cfg.p_powerline, self._powerline), (cfg.p_emg, self._emg)):
            rows = torch.nonzero(torch.rand(b, generator=gen) < p).flatten()
            if len(rows):
                electrodes[rows] += noise(len(rows), x8.shape[-1], gen)
        x8 = x8 + torch.einsum("le,ben->bln", _ELECTRODE_TO_LEAD, electrodes).to(x8) * recorded.to(x8.device)
        out = derive_limb_leads(x8)
        if cfg.p_lead_dropout > 0:
            out = self._lead_dropout(out, gen)
        return out.to(x.dtype)

    # -- transforms ---------------------------------------------------------------------------------
    def _chosen(self, p: float, b: int, gen: torch.Generator) -> torch.Tensor:
        return torch.rand(b, generator=gen) < p

    def _spatial(self, x8: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b = x8.shape[0]
        cfg = self.config
        angles = (torch.rand(b, 3, generator=gen) * 2 - 1) * math.radians(cfg.max_rotation_deg)
        lo, hi = math.log(cfg.axis_scale[0]), math.log(cfg.axis_scale[1])
        scale = torch.exp(lo + (hi - lo) * torch.rand(b, 3, generator=gen))
        on = self._chosen(cfg.p_spatial, b, gen)
        # leads -> VCG -> rotated/scaled VCG -> leads, as one (8, 8) map per exam; the non-dipolar residual
        # (x8 - Dower @ inverse @ x8) passes unchanged: x8 + Dower (T - I) inverse x8
        change = _rotation(angles) * scale[:, None, :] - torch.eye(3)
        change[~on] = 0.0
        mix = torch.eye(8) + torch.einsum("lk,bkj,jm->blm", _DOWER, change, _DOWER_INVERSE)
        return torch.bmm(mix.to(x8), x8)

    def _gain(self, x8: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b = x8.shape[0]
        cfg = self.config
        lo, hi = math.log(cfg.gain[0]), math.log(cfg.gain[1])
        g = torch.exp(lo + (hi - lo) * torch.rand(b, 1, generator=gen))
        per_lead = 1 + cfg.lead_gain * (torch.rand(b, 8, generator=gen) * 2 - 1)
        factor = torch.where(self._chosen(cfg.p_gain, b, gen)[:, None], g * per_lead, torch.ones(b, 8))
        return x8 * factor[:, :, None].to(x8)

    def _wander(self, b: int, n: int, gen: torch.Generator) -> torch.Tensor:
        """Slow sinusoids per electrode, drawn on a coarse grid (they are smooth) and interpolated."""
        cfg = self.config
        coarse = torch.arange(0, n + 64, 64, dtype=torch.float32) / SAMPLE_RATE  # every 0.16 s
        freq = 0.05 + 0.55 * torch.rand(b, 9, 3, 1, generator=gen)
        phase = 2 * math.pi * torch.rand(b, 9, 3, 1, generator=gen)
        amp = cfg.wander_mv * self.units_per_mv * torch.rand(b, 9, 3, 1, generator=gen) / 3
        slow = (amp * torch.sin(2 * math.pi * freq * coarse + phase)).sum(2)  # (b, 9, n/64 + 1)
        return torch.nn.functional.interpolate(slow, scale_factor=64, mode="linear", align_corners=False)[..., :n]

    def _powerline(self, b: int, n: int, gen: torch.Generator) -> torch.Tensor:
        cfg = self.config
        t = torch.arange(n, dtype=torch.float32) / SAMPLE_RATE
        mains = 50.0 if float(torch.rand(1, generator=gen)) < 0.5 else 60.0
        basis = torch.stack([torch.sin(2 * math.pi * mains * t), torch.cos(2 * math.pi * mains * t),
                             0.3 * torch.sin(4 * math.pi * mains * t)])  # (3, n)
        amp = cfg.powerline_mv * self.units_per_mv * torch.rand(b, 9, 1, generator=gen)
        phase = 2 * math.pi * torch.rand(b, 9, 1, generator=gen)
        coef = torch.cat([amp * torch.cos(phase), amp * torch.sin(phase), amp], dim=2)  # (b, 9, 3)
        return coef @ basis

    def _emg(self, b: int, n: int, gen: torch.Generator) -> torch.Tensor:
        cfg = self.config
        white = torch.randn(b, 9, n + 1, generator=gen)
        noise = white[:, :, 1:] - white[:, :, :-1]  # first difference: muscle noise is broadband/high
        t = torch.arange(n, dtype=torch.float32) / SAMPLE_RATE
        burst_hz = 0.1 + 0.4 * torch.rand(b, 1, 1, generator=gen)
        phase = 2 * math.pi * torch.rand(b, 1, 1, generator=gen)
        envelope = 1 + 2 * torch.clamp(torch.sin(2 * math.pi * burst_hz * t + phase), min=0)
        amp = cfg.emg_mv * self.units_per_mv * torch.rand(b, 9, 1, generator=gen) / math.sqrt(2)
        return noise * envelope * amp

    def _shift(self, x8: torch.Tensor, recorded: torch.Tensor, gen: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """Crop a random window of the recording and re-pad it symmetrically (7-10.24 s)."""
        b, _, n = x8.shape
        out, mask = x8.clone(), recorded.clone()
        on = self._chosen(self.config.p_shift, b, gen)
        min_len = int(self.config.min_seconds * SAMPLE_RATE)
        lengths = recorded[:, 0].sum(-1)
        for i in torch.nonzero(on).flatten().tolist():
            length = int(lengths[i])
            if length <= min_len:
                continue
            first = int(torch.nonzero(recorded[i, 0])[0])
            new_len = int(torch.randint(min_len, length + 1, (1,), generator=gen))
            start = first + int(torch.randint(0, length - new_len + 1, (1,), generator=gen))
            pad = (n - new_len) // 2
            out[i].zero_()
            out[i, :, pad:pad + new_len] = x8[i, :, start:start + new_len]
            mask[i].zero_()
            mask[i, :, pad:pad + new_len] = True
        return out, mask

    def _lead_dropout(self, x12: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b = x12.shape[0]
        on = self._chosen(self.config.p_lead_dropout, b, gen)
        keep = torch.ones(b, 12, 1)
        for i in torch.nonzero(on).flatten().tolist():
            k = int(torch.randint(1, self.config.max_dropped_leads + 1, (1,), generator=gen))
            keep[i, torch.randperm(12, generator=gen)[:k]] = 0.0
        return x12 * keep.to(x12)


def _recorded_mask(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, N) True from the first to the last sample where any lead is non-zero (zero padding outside),
    on the CPU."""
    active = (x != 0).any(dim=1)  # (B, N)
    n = x.shape[-1]
    idx = torch.arange(n, device=x.device)
    has = active.any(dim=1)
    first = torch.where(has, torch.argmax(active.int(), dim=1), torch.zeros_like(has, dtype=torch.long))
    last = torch.where(has, n - 1 - torch.argmax(active.flip(1).int(), dim=1), torch.full_like(first, n - 1))
    return ((idx[None] >= first[:, None]) & (idx[None] <= last[:, None]))[:, None].cpu()
