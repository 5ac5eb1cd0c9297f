"""Configuration of the synthetic 12-lead ECG generator: prevalence, label definitions, nuisances.

The label thresholds are part of the configuration because the 6 CODE labels are defined by
thresholds that differ between conventions: CODE/TNMG (SBC guideline) calls sinus bradycardia
below 50 bpm, PhysioNet/PTB-XL below 60 bpm. The generator samples near whichever thresholds are
configured and labels every exam by applying them to what it realised.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ecglit.constants import CLASSES
from ecglit.data.definitions import LABEL_DEFINITIONS, THRESHOLD_FIELDS
from ecglit.errors import ConfigError



def _default_prevalence() -> dict[str, float]:
    # A balanced training mix (real CODE prevalence is a few percent per class).
    return {c: 0.12 for c in CLASSES}


@dataclass
class SyntheticConfig:
    """Everything that shapes the synthetic exams; validated on construction (raises ConfigError).

    Attributes:
        prevalence: probability that an exam is positive for each class (keys from CLASSES; missing
            keys keep the default 0.12). Sampled from the joint rhythm x AV x ventricular x rate
            distribution, so the combinations must be possible (SB + ST + AF <= 1, ...).
        borderline_fraction: share of positives and of near-threshold negatives placed within
            5 bpm / 20 ms / 8 ms of their threshold (1dAVb at fast rates, where no longer PR fits
            between the previous T wave and the QRS, is borderline more often).
        label_definitions: threshold preset, "code" (SB < 50 bpm) or "physionet" (SB < 60 bpm).
        sb_max_bpm, st_min_bpm, pr_max_ms, qrs_min_ms (LBBB), rbbb_qrs_min_ms (RBBB): explicit thresholds;
            None takes the preset's.
        p_record_10s: probability of a 10 s record (else 7 s).
        noise_level_range: per-exam noise level is drawn uniformly in this range (1 = clinically
            poor but readable), then multiplied by noise_scale (0 gives clean exams with the same
            morphology as the noisy ones).
        p_fn, p_fp: per-class label-noise flip probabilities for positives / negatives (clean labels
            are always kept alongside).
        ectopy_rate: twice the probability of PVCs (in every rhythm, so they say nothing about AF)
            and of PACs (sinus exams only: atrial ectopics need an organised atrial rhythm), drawn
            independently. ``has_pac`` is therefore 0 in AF by physiology; alone it predicts AF with
            AUROC 0.5 + ectopy_rate / 4 (0.54 at the default).
        irbbb_fraction, ilbbb_fraction, ivcd_fraction: share of exams without a bundle-branch block
            that get incomplete RBBB, incomplete LBBB or a nonspecific intraventricular delay
            (all label-negative distractors; no incomplete RBBB when rbbb_qrs_min_ms leaves no narrower
            pattern, i.e. at most 82 ms: the physionet preset's 80 makes every right-bundle pattern RBBB).
        sinus_arrhythmia_fraction: share of sinus exams with marked respiratory sinus arrhythmia.
        low_p_fraction: share of sinus exams with a low-amplitude P wave (hard to see under noise).
        flutter_fraction: share of exams in atrial flutter (regular sawtooth F waves, 2:1-4:1 conduction):
            negative for AF, and for SB/ST/1dAVb, which need sinus rhythm.
        svt_fraction: share of exams in a regular supraventricular tachycardia without visible P waves
            (150-220 bpm): a tachycardia that is not sinus tachycardia.
        af_amp_mv: range of the f-wave amplitude per VCG axis (log-uniform): fine (< 0.02 mV, hidden in the
            noise, so that only the irregular rhythm and the missing P waves tell) to coarse AF.
        paced_fraction: share of exams with ventricular pacing (a pacing spike, then a wide LBBB-like QRS
            with a superior axis): a wide QRS that is neither bundle-branch block.

    Domain randomisation (v3; each 0 turns it off): the spread between and within real recordings that
    a single-dipole model lacks.
        rotation_scale: multiplies the per-exam heart-vector rotation (std 0.25/0.25/0.35 rad at 1).
        vector_anisotropy: std of the log per-axis heart-vector scale (body habitus, heart position).
        precordial_variability: non-dipolar precordial gains (std of their log) and chest-electrode
            misplacement (adjacent-lead mixing up to this fraction).
        beat_jitter: scale of the beat-to-beat changes: amplitude of every wave, P-wave timing, and the
            respiration-coupled rotation of the heart vector (``resp_rotation_deg`` at 1).
        resp_rotation_deg: peak respiratory rotation of the heart vector, degrees.
        morphology_spread: scale of the per-exam spread of the QRS, T and bundle-branch-block morphology
            (wave directions, amplitudes, notch depth of LBBB, size and direction of the RBBB R').
        motion_artifact_rate: probability of an electrode-motion artefact (a step with slow recovery).
    """

    prevalence: dict[str, float] = field(default_factory=_default_prevalence)
    borderline_fraction: float = 0.25
    label_definitions: str = "code"
    sb_max_bpm: float | None = None
    st_min_bpm: float | None = None
    pr_max_ms: float | None = None
    qrs_min_ms: float | None = None
    rbbb_qrs_min_ms: float | None = None
    p_record_10s: float = 0.6
    noise_level_range: tuple[float, float] = (0.0, 1.0)
    noise_scale: float = 1.0
    p_fn: float = 0.0
    p_fp: float = 0.0
    ectopy_rate: float = 0.16
    irbbb_fraction: float = 0.08
    ilbbb_fraction: float = 0.03
    ivcd_fraction: float = 0.06
    sinus_arrhythmia_fraction: float = 0.10
    low_p_fraction: float = 0.08
    flutter_fraction: float = 0.04
    svt_fraction: float = 0.02
    af_amp_mv: tuple[float, float] = (0.005, 0.12)
    paced_fraction: float = 0.02
    rotation_scale: float = 1.4
    vector_anisotropy: float = 0.15
    precordial_variability: float = 0.2
    beat_jitter: float = 1.0
    resp_rotation_deg: float = 4.0
    morphology_spread: float = 1.0
    motion_artifact_rate: float = 0.08

    def __post_init__(self) -> None:
        self._resolve_thresholds()
        self._check_prevalence()
        for name in ("borderline_fraction", "p_record_10s", "p_fn", "p_fp", "ectopy_rate", "irbbb_fraction",
                     "ilbbb_fraction", "ivcd_fraction", "sinus_arrhythmia_fraction", "low_p_fraction",
                     "flutter_fraction", "svt_fraction", "paced_fraction", "motion_artifact_rate"):
            _check_probability(name, getattr(self, name))
        for name in ("rotation_scale", "vector_anisotropy", "precordial_variability", "beat_jitter",
                     "resp_rotation_deg", "morphology_spread"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
        self.af_amp_mv = _positive_range("af_amp_mv", self.af_amp_mv)
        if self.irbbb_fraction + self.ilbbb_fraction + self.ivcd_fraction > 1.0 + 1e-9:
            raise ConfigError("irbbb_fraction + ilbbb_fraction + ivcd_fraction must be <= 1, got "
                              f"{self.irbbb_fraction + self.ilbbb_fraction + self.ivcd_fraction:.3f}")
        rng = self.noise_level_range
        if (not isinstance(rng, (tuple, list)) or len(rng) != 2
                or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in rng)):
            raise ConfigError(f"noise_level_range must be two numbers (low, high), got {rng!r}")
        lo, hi = float(rng[0]), float(rng[1])
        if not 0.0 <= lo <= hi:
            raise ConfigError(f"noise_level_range must satisfy 0 <= low <= high, got ({lo}, {hi})")
        self.noise_level_range = (lo, hi)
        if not (isinstance(self.noise_scale, (int, float)) and math.isfinite(self.noise_scale)
                and self.noise_scale >= 0):
            raise ConfigError(f"noise_scale must be a finite number >= 0, got {self.noise_scale!r}")

    def _resolve_thresholds(self) -> None:
        if self.label_definitions not in LABEL_DEFINITIONS:
            raise ConfigError(f"label_definitions must be one of {sorted(LABEL_DEFINITIONS)}, "
                              f"got {self.label_definitions!r}")
        preset = LABEL_DEFINITIONS[self.label_definitions]
        for name in THRESHOLD_FIELDS:
            value = getattr(self, name)
            value = preset[name] if value is None else value
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")
            setattr(self, name, float(value))
        if not 30.0 < self.sb_max_bpm < self.st_min_bpm - 10.0:
            raise ConfigError(f"need 30 < sb_max_bpm < st_min_bpm - 10 so that normal sinus rates exist, "
                              f"got sb_max_bpm={self.sb_max_bpm}, st_min_bpm={self.st_min_bpm}")
        if self.st_min_bpm > 160.0:
            raise ConfigError(f"st_min_bpm must be <= 160 bpm (generated tachycardia reaches 170), "
                              f"got {self.st_min_bpm}")
        if not 130.0 <= self.pr_max_ms <= 300.0:
            raise ConfigError(f"pr_max_ms must be in [130, 300] ms, got {self.pr_max_ms}")
        # LBBB needs a QRS of 100 ms or more; the right-bundle pattern is generated from 80 ms on.
        for name, low in (("qrs_min_ms", 100.0), ("rbbb_qrs_min_ms", 80.0)):
            if not low <= getattr(self, name) <= 140.0:
                raise ConfigError(f"{name} must be in [{low:.0f}, 140] ms, got {getattr(self, name)}")

    def _check_prevalence(self) -> None:
        if not isinstance(self.prevalence, Mapping):
            raise ConfigError(f"prevalence must be a mapping class -> probability, got {self.prevalence!r}")
        unknown = sorted(set(self.prevalence) - set(CLASSES))
        if unknown:
            raise ConfigError(f"prevalence has unknown classes {unknown}; valid classes are {list(CLASSES)}")
        merged = _default_prevalence()
        merged.update({k: v for k, v in self.prevalence.items()})
        for cls, p in merged.items():
            _check_probability(f"prevalence[{cls!r}]", p)
        self.prevalence = {c: float(merged[c]) for c in CLASSES}
        p = self.prevalence
        eps = 1e-9
        # SB, ST and 1dAVb need sinus rhythm; SB and ST exclude each other; RBBB and LBBB too.
        other = self.flutter_fraction + self.svt_fraction + self.paced_fraction  # non-sinus rhythms other than AF
        if p["SB"] + p["ST"] + p["AF"] + other > 1 + eps:
            raise ConfigError("impossible prevalence: SB, ST, AF, flutter, SVT and pacing exclude each other, so "
                              f"prevalence SB + ST + AF + flutter/svt/paced_fraction must be <= 1, got "
                              f"{p['SB']} + {p['ST']} + {p['AF']} + {other}")
        if p["1dAVb"] + p["AF"] > 1 + eps:
            raise ConfigError("impossible prevalence: 1dAVb needs sinus rhythm (excludes AF), so "
                              f"prevalence 1dAVb + AF must be <= 1, got {p['1dAVb']} + {p['AF']}")
        if p["RBBB"] + p["LBBB"] > 1 + eps:
            raise ConfigError("impossible prevalence: RBBB and LBBB exclude each other, so "
                              f"prevalence RBBB + LBBB must be <= 1, got {p['RBBB']} + {p['LBBB']}")

    @property
    def thresholds(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in THRESHOLD_FIELDS}

    @property
    def definitions(self) -> dict[str, Any]:
        """The label definitions of the generated labels (``ecglit.data.definitions``): the preset's name
        when every threshold is the preset's, else ``custom``."""
        preset = LABEL_DEFINITIONS[self.label_definitions]
        name = self.label_definitions if self.thresholds == preset else "custom"
        return {"name": name, **self.thresholds}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["noise_level_range"] = list(self.noise_level_range)
        d["af_amp_mv"] = list(self.af_amp_mv)
        return d

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any] | None) -> SyntheticConfig:
        """Build from a plain or OmegaConf mapping (e.g. Hydra's ``generator`` node); None -> defaults."""
        if mapping is None:
            return cls()
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"generator config must be a mapping, got {type(mapping).__name__}")
        data = _to_plain(mapping)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown synthetic generator settings {unknown}; valid: {sorted(names)}")
        for name in ("noise_level_range", "af_amp_mv"):
            if name in data and isinstance(data[name], list):
                data[name] = tuple(data[name])
        return cls(**data)


def register_schema() -> None:
    """``ecglit_synthetic_generator`` in Hydra's ConfigStore: :class:`SyntheticConfig` as the schema of the
    configs' generator options (conf/data/synthetic.yaml, conf/synthesize.yaml)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="ecglit_synthetic_generator", node=SyntheticConfig)


def _to_plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ListConfig":
        return [_to_plain(v) for v in value]
    return value


def _positive_range(name: str, value: Any) -> tuple[float, float]:
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in value)
            or not 0 < value[0] <= value[1]):
        raise ConfigError(f"{name} must be (low, high) with 0 < low <= high, got {value!r}")
    return float(value[0]), float(value[1])


def _check_probability(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}")
