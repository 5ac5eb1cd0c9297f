"""Amplitude plausibility of a 12-lead record in millivolts: flat leads, clipping, wrong scale.

The amplitude of a lead is the 99.5th percentile of |x - median(x)| (robust to baseline offset and to
a few spikes); a record's amplitude is the median over its 12 leads. On the 269 real records in
../shared/realdata correct scales give medians of 0.3-2.0 mV (one noisy record 3.3 mV), header-gain
errors give 0.07-0.23 mV (Georgia copies, gain 4880/mV) and 2.6-7.3 mV (PTB-XL copies, 200/mV).

Two levels:
- per record, for order-of-magnitude errors: median < 0.15 mV or largest lead < 0.4 mV (too small),
  median > 4 mV or largest lead > 20 mV (too large);
- per group of records that share a folder, a name prefix and a header gain (gain errors are
  systematic per source): the group's median amplitude outside 0.25-2.5 mV flags every member. This
  catches a 5x error that single records cannot show (a large normal ECG vs a small one times 5).
Flags are warnings: flagged records are still converted, and listed in the report.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ecglit.constants import LEADS

RECORD_MEDIAN_MV = (0.15, 4.0)
RECORD_MAX_LEAD_MV = (0.4, 20.0)
GROUP_MEDIAN_MV = (0.25, 2.5)
FLAT_RANGE_MV = 0.01  # a lead spanning less than 10 uV carries no ECG
# Saturation: a lead that sits on its extreme value in >= 3 plateaus of >= 8 ms, or in one inner plateau
# of >= 1% of the record, where that extreme is a major excursion (>= 40% of the lead's range away from
# its median: clipping cuts the largest deflections, while a quantised flat T-wave top is small).
CLIP_RUNS = 3
CLIP_RUN_S = 0.008
CLIP_FRACTION = 0.01
CLIP_EXCURSION = 0.4


@dataclass
class Plausibility:
    """Amplitude statistics and flags of one record (12 CODE leads, mV)."""

    amplitude_mv: float  # median over leads of the per-lead amplitude
    max_lead_mv: float
    flags: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, flag: str, reason: str) -> None:
        self.flags.append(flag)
        self.reasons.append(reason)


def lead_amplitudes(signal: np.ndarray) -> np.ndarray:
    """(n, L) mV -> (L,) robust amplitude per lead."""
    centred = np.abs(signal - np.median(signal, axis=0, keepdims=True))
    return np.percentile(centred, 99.5, axis=0)


def plateau_runs(x: np.ndarray, value: float) -> list[tuple[int, int]]:
    """(start, length) of every run of >= 2 consecutive samples equal to ``value``."""
    at = np.concatenate([[False], x == value, [False]])
    edges = np.flatnonzero(np.diff(at.astype(np.int8)))
    return [(int(a), int(b - a)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= 2]


def is_clipped(x: np.ndarray, fs: float) -> bool:
    """Plateaus at a major extreme of the lead: >= CLIP_RUNS of them, or one long inner one.

    A value held at the very start or end of the recording (PTB-XL records often end on ~50 constant
    samples) is not saturation and does not count.
    """
    n = len(x)
    span = float(x.max() - x.min())
    centre = float(np.median(x))
    min_run = max(3, int(round(CLIP_RUN_S * fs)))
    for value in (x.max(), x.min()):
        if abs(value - centre) < CLIP_EXCURSION * span:
            continue
        runs = [(a, k) for a, k in plateau_runs(x, value) if a > 0 and a + k < n]
        if sum(k >= min_run for _, k in runs) >= CLIP_RUNS or any(k >= CLIP_FRACTION * n for _, k in runs):
            return True
    return False


def check_record(signal: np.ndarray, fs: float, lead_names: Sequence[str] = LEADS,
                 at_adc_limit: Sequence[str] = ()) -> Plausibility:
    """Flat leads, clipped leads and implausible overall amplitude of (n, 12) mV at ``fs`` Hz.

    ``at_adc_limit``: leads whose digital samples reach the converter's range (certain saturation,
    known only to readers of digital formats).
    """
    amps = lead_amplitudes(signal)
    span = signal.max(axis=0) - signal.min(axis=0)
    flat = span < FLAT_RANGE_MV
    live = ~flat
    result = Plausibility(float(np.median(amps)), float(amps.max()))
    if flat.all():
        result.add("flat", "all leads are flat (range < 10 uV)")
        return result
    if flat.any():
        names = [lead_names[i] for i in np.flatnonzero(flat)]
        result.add("flat_leads", f"flat lead(s) {', '.join(names)} (range < 10 uV)")
    clipped = [lead_names[j] for j in np.flatnonzero(live) if is_clipped(signal[:, j], fs)]
    clipped += [name for name in at_adc_limit if name not in clipped]
    if clipped:
        result.add("clipped", f"lead(s) {', '.join(clipped)} saturate: they sit on their extreme value "
                              "repeatedly or for a long stretch")
    live_amps = amps[live]
    med, top = float(np.median(live_amps)), float(live_amps.max())
    lo, hi = RECORD_MEDIAN_MV
    lo_max, hi_max = RECORD_MAX_LEAD_MV
    if med < lo or top < lo_max:
        result.add("amplitude_small", f"implausibly small amplitude (median lead {med:.3f} mV, largest "
                                      f"{top:.3f} mV): header gain too high or units not mV?")
    elif med > hi or top > hi_max:
        result.add("amplitude_large", f"implausibly large amplitude (median lead {med:.2f} mV, largest "
                                      f"{top:.2f} mV): header gain too low or units in uV?")
    return result


def group_key(folder: str, record_name: str, gain: object) -> tuple[str, str, str]:
    """Records of one source batch: same folder, same letter prefix of the name, same header gain."""
    m = re.match(r"[A-Za-z]*", record_name)
    return folder, m.group(0) if m else "", str(gain)


def group_flags(keys: Sequence[Hashable], amplitudes: Sequence[float], min_size: int = 2
                ) -> dict[int, tuple[str, str]]:
    """Index -> (flag, reason) for every record whose group's median amplitude is implausible."""
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, key in enumerate(keys):
        if np.isfinite(amplitudes[i]):
            groups[key].append(i)
    out: dict[int, tuple[str, str]] = {}
    lo, hi = GROUP_MEDIAN_MV
    for key, members in groups.items():
        if len(members) < min_size:
            continue
        med = float(np.median([amplitudes[i] for i in members]))
        if lo <= med <= hi:
            continue
        kind = "small" if med < lo else "large"
        reason = (f"group amplitude_{kind}: the {len(members)} records sharing folder, name prefix "
                  f"{key[1]!r} and gain {key[2]} have median amplitude {med:.3f} mV (plausible "
                  f"{lo}-{hi} mV): the header gain is probably wrong; set gain_override")
        for i in members:
            out[i] = (f"group_amplitude_{kind}", reason)
    return out
