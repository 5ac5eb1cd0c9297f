"""The 12-lead printout and the synthesize command's figure mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from ecglit.data.synthetic import generate_exam
from ecglit.errors import DataError
from ecglit.plotting import plot_ecg12
from ecglit.plotting.ecg12 import record_window

CONF = Path(__file__).resolve().parents[1] / "conf"


def test_plot_ecg12_writes_png_of_the_recorded_part(tmp_path: Path):
    exam = generate_exam(0, 1)
    start, stop = record_window(exam.signal)
    assert (start, stop) == (exam.meta["pad_left"], exam.meta["pad_left"] + int(exam.meta["record_seconds"] * 400))
    fig = plot_ecg12(exam.signal, title="exam 1", path=tmp_path / "ecg.png")
    assert fig is not None
    with Image.open(tmp_path / "ecg.png") as img:
        w, h = img.size
        assert w > 600 and 0.3 < h / w < 0.9              # landscape page
        assert len(img.getcolors(maxcolors=4096) or []) > 4  # grid + trace, not blank
    with pytest.raises(DataError, match="expected a"):
        plot_ecg12(np.zeros((4096, 8)), path=tmp_path / "bad.png")


def test_synthesize_figure_command_writes_pngs(tmp_path: Path):
    from ecglit.data.synthesize import COMBINED_FIGURE, run

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("synthesize", overrides=["figure=true", f"out={tmp_path}"])
    path = run(cfg)
    assert path == tmp_path / COMBINED_FIGURE
    for name in ("synthetic_examples", "synthetic_RBBB", "synthetic_LBBB", "synthetic_AF", "synthetic_normal"):
        png = tmp_path / f"{name}.png"
        assert png.stat().st_size > 5000
        with Image.open(png) as img:
            assert img.format == "PNG"
    assert sum(p.stat().st_size for p in tmp_path.glob("*.png")) < 1_000_000


def test_synthesize_command_materialises(tmp_path: Path):
    from ecglit.data.synthesize import run

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        cfg = compose("synthesize", overrides=["n=40", "seed=3", f"out={tmp_path}", "workers=1", "progress=false",
                                               "generator.label_definitions=physionet"])
    out = run(cfg)
    assert (out / "exams_part0.hdf5").is_file() and (out / "metadata.csv").is_file()
    assert '"label_definitions": "physionet"' in (out / "synthetic_config.json").read_text()
