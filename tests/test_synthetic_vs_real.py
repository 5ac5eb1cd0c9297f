"""scripts/synthetic_vs_real.py on a few real records (skipped without ../shared/realdata)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ecglit.constants import CLASSES

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "realdata"


def _comparison_script():
    spec = importlib.util.spec_from_file_location("synthetic_vs_real", REPO / "scripts" / "synthetic_vs_real.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not (REAL / "labels.csv").is_file(), reason=f"real records not found at {REAL}")
def test_synthetic_vs_real_comparison_on_a_few_records() -> None:
    script = _comparison_script()
    table = pd.read_csv(REAL / "labels.csv").set_index("record", drop=False)
    # A CPSC RBBB record, a PTB-XL copy with the 200/mV header trap, a Georgia copy with 4880/mV.
    rows = [table.loc["A0001"], table[table["record"] == "HR00001"].iloc[0],
            table[table["source"] == "sebgood_physionet2020"].loc["E00001"]]
    flags, signals = [], []
    for row in rows:
        mv, fs, flag = script.read_real_record(REAL, row)
        assert mv.shape[1] == 12 and fs == 500
        flags.append(flag)
        signals.append(script.to_exam(mv, fs))
    assert flags == ["ok", "fixed-gain", "scale-unknown"]
    real = script.exam_features(signals)
    synth_signals, synth_labels = script.load_synthetic(12, seed=3)
    synth = script.exam_features(synth_signals)
    assert 40 < real.loc[0, "hr_bpm"] < 150 and real.loc[0, "qrs_ms"] >= 110  # A0001 is RBBB
    labels = pd.DataFrame([{c: float(r[c]) if not pd.isna(r[c]) else np.nan for c in CLASSES} for r in rows])
    out = script.compare_features(synth, real, ["hr_bpm", "std_DII"], script.groups(synth_labels),
                                  script.groups(labels))
    row = out[(out["group"] == "all") & (out["feature"] == "hr_bpm")].iloc[0]
    assert row["n_synthetic"] == 12 and row["n_real"] == 3
    assert row["ratio"] == pytest.approx(synth["hr_bpm"].median() / real["hr_bpm"].median())
    assert set(out["group"]) == {"all", "none of the six", *CLASSES}
