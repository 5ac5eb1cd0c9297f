"""`python -m ecglit.data.convert`: real records -> CODE-15%-layout shards + report, bad input, strict."""

from __future__ import annotations

import csv
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from hydra import compose, initialize_config_dir

from ecglit.constants import CLASSES, CODE15_COLUMNS, N_SAMPLES
from ecglit.data.code15 import build_code15_index
from ecglit.data.importers import ImportOptions
from ecglit.data.importers.cli import run_conversion
from ecglit.data.importers.convert import PROVENANCE_COLUMNS, convert
from ecglit.data.importers.plausibility import GROUP_MEDIAN_MV
from ecglit.errors import DataError

REPO = Path(__file__).resolve().parents[1]
AMPLITUDE_FLAGS = {"amplitude_small", "amplitude_large", "group_amplitude_small", "group_amplitude_large"}
# Small real records of several formats (CinC 2020/2021, CPSC text labels, WFDB .dat)
GOOD = ["awwong1_physionet2020/tests/data/A5432", "awwong1_physionet2020/tests/data/Q0001",
        "torch_ecg/sample-data/cinc2021/E07500", "torch_ecg/sample-data/cinc2021/JS20000",
        "physionet_python_classifier_2020/input_directory/A0002"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def copy_record(realdata: Path, stem: str, dest: Path, exts=(".hea", ".mat")) -> None:
    for ext in exts:
        target = dest / Path(stem + ext).name
        shutil.copy(realdata / (stem + ext), target)
        target.chmod(0o644)


def options(**kw) -> ImportOptions:
    from ecglit.data.importers import LabelTables

    return ImportOptions(tables=LabelTables.load(not_annotated={"A[0-9]*": ["SB", "ST"]}), **kw)


@pytest.fixture(scope="module")
def converted_all(realdata: Path, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("realdata_shards")
    return out, convert(realdata, out, options(), shard_size=100)


def test_convert_all_realdata(converted_all, expected) -> None:
    out, report = converted_all
    assert report.counts["skipped"] == 0 and len(report.rows) == 269 == report.n_exams
    exams = read_csv(out / "exams.csv")
    assert list(exams[0].keys()) == [*CODE15_COLUMNS, *PROVENANCE_COLUMNS]
    assert len(exams) == 269 and len({e["exam_id"] for e in exams}) == 269
    for e in exams:
        row = expected[e["source_file"].rsplit(".", 1)[0]]
        for c in CLASSES:  # annotated cells equal; "not annotated" stays empty (not False)
            assert e[c] == ("" if row[c] == "" else str(bool(int(row[c])))), (e["record"], c)
        assert float(e["original_fs"]) == float(row["fs"])
        assert int(e["n_leads_original"]) == int(row["n_leads"])
    shards = sorted(out.glob("exams_part*.hdf5"))
    assert len(shards) == 3
    with h5py.File(shards[0]) as f:
        assert f["tracings"].shape == (101, N_SAMPLES, 12) and f["tracings"].dtype == np.float32
        assert f["exam_id"][-1] == 0  # the release's sentinel row
    # the DataModule's reader takes the shards as they are (unlabelled exams dropped on request)
    index = build_code15_index(out, missing_labels="drop", use_cache=False)
    n_complete = sum(all(e[c] != "" for c in CLASSES) for e in exams)
    assert len(index) == n_complete
    report_rows = read_csv(out / "report.csv")
    assert len(report_rows) == 269 and (out / "report.md").read_text().startswith("# Conversion report")


def test_wrong_header_gains_are_flagged(converted_all, expected) -> None:
    """Exactly the records whose header gain is known to be wrong get amplitude flags."""
    out, report = converted_all
    amplitude_flagged = {r["source_file"].rsplit(".", 1)[0] for r in report.rows
                         if AMPLITUDE_FLAGS & set(r["flags"].split(";"))}
    wrong_gain = {k for k, r in expected.items() if "SCALE" in r["note"]}
    assert len(wrong_gain) == 26 and amplitude_flagged == wrong_gain
    exams = {e["source_file"].rsplit(".", 1)[0]: e for e in read_csv(out / "exams.csv")}
    assert all(AMPLITUDE_FLAGS & set(exams[k]["flags"].split(";")) for k in wrong_gain)
    other = {r["record"]: r["flags"] for r in report.rows if r["status"] == "flagged"
             and r["source_file"].rsplit(".", 1)[0] not in wrong_gain}
    assert other == {"JS20004": "flat_leads", "JS20008": "flat_leads"}  # V2, V4, V6 are all zero there
    assert "Flagged records (28)" in (out / "report.md").read_text()


def test_gain_override_makes_amplitudes_physiological(realdata: Path, expected, converted_all,
                                                     tmp_path: Path) -> None:
    wrong = sorted(k for k, r in expected.items() if "SCALE" in r["note"])
    src = tmp_path / "src"
    for folder in {Path(k).parent for k in wrong}:
        (src / folder).mkdir(parents=True, exist_ok=True)
    for stem in wrong:
        copy_record(realdata, stem, src / Path(stem).parent)
    fixed = convert(src, tmp_path / "out", options(gain_override={"HR*": 1000, "E*": 1000}))
    assert fixed.counts == {"converted": 26, "flagged": 0, "skipped": 0}
    lo, hi = GROUP_MEDIAN_MV
    header_gain = {"HR": 200.0, "E": 4880.0}
    before = {r["source_file"]: r["amplitude_mv"] for r in converted_all[1].rows}
    for row in fixed.rows:
        assert lo <= row["amplitude_mv"] <= hi, row["record"]
        assert row["gain_used"] == 1000.0
        gain = header_gain[row["record"].rstrip("0123456789")]
        assert row["amplitude_mv"] == pytest.approx(before[row["source_file"]] * gain / 1000.0, rel=1e-3)
    exams = read_csv(tmp_path / "out/exams.csv")
    assert all(e["flags"] == "" for e in exams)


def test_long_records_as_windows_share_the_patient(realdata: Path, expected, tmp_path: Path) -> None:
    stem = max((k for k in expected if k.startswith("physionet_python")),
               key=lambda k: float(expected[k]["duration_s"]))
    copy_record(realdata, stem, tmp_path)
    convert(tmp_path, tmp_path / "out", long_records="windows")
    exams = read_csv(tmp_path / "out/exams.csv")
    n_windows = int(float(expected[stem]["duration_s"]) * 400) // N_SAMPLES
    assert len(exams) == n_windows >= 5
    assert [e["window"] for e in exams] == [str(k) for k in range(n_windows)]
    assert len({e["patient_id"] for e in exams}) == 1 and len({e["exam_id"] for e in exams}) == n_windows
    # the output lies inside the input: a second run must not read its own shards as records
    again = convert(tmp_path, tmp_path / "out", long_records="windows", overwrite=True)
    assert len(again.rows) == 1 and again.n_exams == n_windows


# --- bad input --------------------------------------------------------------------------------------

@pytest.fixture
def mixed_folder(realdata: Path, tmp_path: Path) -> Path:
    """Five good records and five bad files: truncated .dat, wrong sample count, damaged .mat, an
    unknown .mat, NaN samples."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for stem in GOOD:
        copy_record(realdata, stem, folder)
    wfdb_src = realdata / "ecg_image_kit/SampleData/PTB_XL_data/00001_lr"
    for name in ("z_truncated", "z_wrong_count"):
        for ext in (".hea", ".dat"):
            text = (wfdb_src.with_suffix(ext)).read_bytes()
            if ext == ".hea":
                text = text.replace(b"00001_lr", name.encode())
                if name == "z_wrong_count":
                    text = text.replace(b" 12 100 1000", b" 12 100 1200", 1)
            elif name == "z_truncated":
                text = text[: len(text) // 3]
            (folder / f"{name}{ext}").write_bytes(text)
    copy_record(realdata, "awwong1_physionet2020/tests/data/Q0010", folder)
    (folder / "Q0010.mat").write_bytes((folder / "Q0010.mat").read_bytes()[:3000])  # damaged .mat
    np.save(folder / "z_nan.npy", np.where(np.arange(60000).reshape(5000, 12) % 499 == 0, np.nan, 0.1))
    import scipy.io

    scipy.io.savemat(folder / "z_unknown.mat", {"something": np.zeros(3)})
    return folder


BAD_CAUSES = {"z_truncated": "truncated file or wrong sample count",
              "z_wrong_count": "header says 1200 samples",
              "Q0010": "cannot read MATLAB file", "z_nan": "NaN/inf sample(s)",
              "z_unknown": "neither a CinC record"}


def test_folder_with_bad_files_completes_with_report(mixed_folder: Path, tmp_path: Path) -> None:
    report = convert(mixed_folder, tmp_path / "out", options(fs=500))
    assert report.counts["skipped"] == 5 and report.n_exams == len(GOOD)
    skipped = {r["record"]: r["reason"] for r in report.rows if r["status"] == "skipped"}
    assert set(skipped) == set(BAD_CAUSES)
    for name, cause in BAD_CAUSES.items():
        assert cause in skipped[name] and name in skipped[name]  # names the file and the cause
    md = (tmp_path / "out/report.md").read_text()
    assert "Skipped records (5)" in md and all(name in md for name in BAD_CAUSES)
    assert len(read_csv(tmp_path / "out/exams.csv")) == len(GOOD)


def test_strict_stops_and_keeps_what_was_written(mixed_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(DataError, match="Q0010.mat.*cannot read MATLAB file.*strict=true") as info:
        convert(mixed_folder, out, options(fs=500), strict=True)
    assert "kept" in str(info.value)
    exams = read_csv(out / "exams.csv")  # the records before Q0010 in sorted order were written
    assert [e["record"] for e in exams] == ["A0002", "A5432", "E07500", "JS20000", "Q0001"]
    with h5py.File(out / "exams_part0.hdf5") as f:
        assert list(f["exam_id"][:-1]) == [1, 2, 3, 4, 5]


def test_unknown_single_file_and_empty_result(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="notes.txt: unknown record format '.txt'"):
        convert(tmp_path / "notes.txt", tmp_path / "out")
    np.save(tmp_path / "only.npy", np.full((5000, 12), np.nan))
    with pytest.raises(DataError, match="no record could be converted"):
        convert(tmp_path / "only.npy", tmp_path / "out2", ImportOptions(fs=500))
    assert "NaN" in (tmp_path / "out2/report.md").read_text()


def test_hydra_entry_point(mixed_folder: Path, tmp_path: Path) -> None:
    """In-process compose for the config, one subprocess for the exit code and message of strict=true."""
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose("convert", overrides=[f"input={mixed_folder}", f"output={tmp_path / 'ok'}", "fs=500",
                                            "gain_override={HR*:1000}", "progress=false"])
    report = run_conversion(cfg)
    assert report.counts["skipped"] == 5 and report.settings["gain_override"] == {"HR*": 1000.0}
    proc = subprocess.run(
        [sys.executable, "-m", "ecglit.data.convert", f"input={mixed_folder}",
         f"output={tmp_path / 'strict'}", "fs=500", "strict=true", "progress=false",
         f"hydra.run.dir={tmp_path / 'hydra'}"],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "Q0010.mat" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "strict/exams_part0.hdf5").is_file()
