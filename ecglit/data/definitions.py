"""Label definitions: the thresholds that say what the six labels mean in a given source.

The six CODE classes are defined by thresholds that differ between conventions: CODE/TNMG (SBC guideline)
calls sinus rhythm below 50 bpm bradycardia, PhysioNet/CinC, PTB-XL, LUDB and the AHA below 60 bpm. A model
answers the question its training labels asked, so every checkpoint records the definitions it was trained
with, every labelled test set declares its own, and a mismatch is stated (:func:`mismatches`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ecglit.errors import ConfigError

# SB: sinus HR < sb_max_bpm; ST: sinus HR > st_min_bpm; 1dAVb: PR > pr_max_ms;
# LBBB: QRS >= qrs_min_ms with the LBBB morphology; RBBB: QRS >= rbbb_qrs_min_ms with the RBBB morphology.
# CODE follows the AHA/ACCF/HRS 2009 criteria (complete blocks, QRS >= 120 ms). The PhysioNet/CinC sources
# differ: SB below 60 bpm, and their "RBBB" (CPSC 2018 above all) is the right-bundle pattern (rSR' in
# V1, a broad terminal S in I and V6) whether complete or not: 23 of the 39 RBBB positives of
# ../shared/realdata measure QRS < 120 ms, 15 below 100 ms (docs/real-diagnosis.md). So the physionet
# preset calls every right-bundle pattern RBBB (80 ms is the narrowest the generator makes).
LABEL_DEFINITIONS: dict[str, dict[str, float]] = {
    "code": {"sb_max_bpm": 50.0, "st_min_bpm": 100.0, "pr_max_ms": 200.0, "qrs_min_ms": 120.0,
             "rbbb_qrs_min_ms": 120.0},
    "physionet": {"sb_max_bpm": 60.0, "st_min_bpm": 100.0, "pr_max_ms": 200.0, "qrs_min_ms": 120.0,
                  "rbbb_qrs_min_ms": 80.0},
}
THRESHOLD_FIELDS = ("sb_max_bpm", "st_min_bpm", "pr_max_ms", "qrs_min_ms", "rbbb_qrs_min_ms")
# Which class each threshold defines (for naming the classes a mismatch affects).
FIELD_CLASSES = {"sb_max_bpm": ("SB",), "st_min_bpm": ("ST",), "pr_max_ms": ("1dAVb",),
                 "qrs_min_ms": ("LBBB",), "rbbb_qrs_min_ms": ("RBBB",)}


def label_definitions(spec: str | Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``{"name": ..., <threshold>: value, ...}`` from a preset name or a mapping (None stays None).

    A mapping may name a preset (``{"name": "physionet"}``) and override single thresholds.
    """
    if spec is None:
        return None
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"label definitions must be a preset name {sorted(LABEL_DEFINITIONS)} or a mapping, "
                          f"got {spec!r}")
    name = str(spec.get("name", "custom"))
    base = LABEL_DEFINITIONS.get(name)
    if base is None and any(spec.get(f) is None for f in THRESHOLD_FIELDS if f != "rbbb_qrs_min_ms"):
        raise ConfigError(f"unknown label definitions {name!r}: use one of {sorted(LABEL_DEFINITIONS)} or give "
                          f"all of {list(THRESHOLD_FIELDS)}")
    unknown = sorted(set(spec) - {"name", *THRESHOLD_FIELDS})
    if unknown:
        raise ConfigError(f"unknown label-definition keys {unknown}; valid: {['name', *THRESHOLD_FIELDS]}")
    out: dict[str, Any] = {"name": name}
    for field in THRESHOLD_FIELDS:
        value = spec.get(field)
        if value is None and base is None and field == "rbbb_qrs_min_ms":
            value = spec.get("qrs_min_ms")  # a custom definition without its own RBBB threshold
        out[field] = float(base[field] if value is None else value)
    return out


def mismatches(model: Mapping[str, Any] | None, data: Mapping[str, Any] | None) -> list[str]:
    """Human-readable differences between a model's and a data set's definitions (empty when they agree
    or either is unknown)."""
    if not model or not data:
        return []
    out = []
    for field in THRESHOLD_FIELDS:
        if model.get(field) is not None and data.get(field) is not None and float(model[field]) != float(data[field]):
            classes = "/".join(FIELD_CLASSES[field])
            out.append(f"{classes}: the model was trained with {field}={float(model[field]):g} "
                       f"({model.get('name')}), the data set uses {float(data[field]):g} ({data.get('name')})")
    return out
