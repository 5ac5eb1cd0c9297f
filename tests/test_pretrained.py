"""The shipped model (ecglit/pretrained/): small, loadable as data, and what its model card says it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from ecglit.constants import CLASSES
from ecglit.evaluation.test_sets import evaluate_test_set, specs_from_config
from ecglit.inference.predictor import Predictor
from ecglit.models.checkpoint import load_classifier, resolve_checkpoint

NAME = "synthetic_resnet_small"
REPO = Path(__file__).resolve().parents[1]
REALDATA = REPO.parent / "shared" / "realdata"


def test_the_shipped_file_is_small_and_loads_as_data():
    path = resolve_checkpoint(NAME)
    assert path.parent == REPO / "ecglit" / "pretrained" and path.stat().st_size <= 5_000_000
    payload = torch.load(path, map_location="cpu", weights_only=True)  # no pickled code in it
    assert "optimizer_states" not in payload and payload["provenance"]["command"].startswith(
        "python scripts/build_pretrained.py")
    module = load_classifier(NAME)
    assert module.hparams.label_definitions["name"] == "physionet"
    assert module.hparams.threshold_source == "validation" and list(module.class_names) == list(CLASSES)
    seeds = payload["provenance"]["seeds"]  # one network per seed, joined into an ensemble when several
    assert len(getattr(module.net, "members", [module.net])) == len(seeds)


def test_the_model_card_states_the_files_thresholds():
    card = (REPO / "ecglit" / "pretrained" / f"{NAME}.md").read_text()
    stated = dict(re.findall(r"(\w+) ([0-9.]+)[,.]", card.split("on synthetic validation:")[1].split("\n")[0]))
    thresholds = load_classifier(NAME).thresholds.tolist()
    assert list(stated) == list(CLASSES)
    assert [float(stated[c]) for c in CLASSES] == pytest.approx(thresholds, rel=5e-3)  # 3 significant digits


@pytest.mark.skipif(not REALDATA.is_dir(), reason="../shared/realdata (the real records) is absent")
def test_real_record_results_are_those_of_the_model_card():
    """Zero-shot on the 252 labelled real records: the macro AUROC and F1 the card publishes (3 decimals),
    with the preset of conf/test_sets/realdata.yaml (its gain fixes and unannotated cells)."""
    preset = OmegaConf.load(REPO / "conf" / "test_sets" / "realdata.yaml")
    spec_cfg = OmegaConf.to_container(preset, resolve=False)["realdata"]
    spec_cfg["root"] = str(REALDATA)
    spec = specs_from_config({"realdata": spec_cfg})[0]
    predictor = Predictor.from_checkpoint(NAME, device="cpu", backend="eager", precision="32")
    macro = evaluate_test_set(predictor, spec).report["overall"]["macro"]
    card = (REPO / "ecglit" / "pretrained" / f"{NAME}.md").read_text()
    auroc, f1 = re.search(r"\*\*macro\*\* \| \*\*([0-9.]+) \[[^]]*\]\*\* \| \*\*([0-9.]+) ", card).groups()
    assert macro["auroc"]["value"] == pytest.approx(float(auroc), abs=6e-4)
    assert macro["f1"]["value"] == pytest.approx(float(f1), abs=6e-4)
    assert macro["auroc"]["value"] >= 0.93  # the level docs/synthetic-vs-real.md reports
