"""Importers of real-world records: formats, leads, units, labels, resampling, plausibility.

Most tests read the real records in ../shared/realdata (skipped with a reason when it is absent).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.signal
import wfdb
from wfdb.io.header import HeaderSyntaxError

from ecglit.constants import CLASSES, LEADS, N_SAMPLES, UNITS_PER_MV
from ecglit.data.importers import (
    ImportOptions,
    LabelTables,
    find_records,
    load_record,
    scan_input,
    standardize,
)
from ecglit.data.importers.databases import database_of
from ecglit.data.importers.labels import labels_from_dx, labels_from_scp_codes
from ecglit.data.importers.leads import canonical_lead, to_code_leads
from ecglit.data.importers.plausibility import check_record, lead_amplitudes
from ecglit.data.importers.record import RecordRef
from ecglit.data.importers.resample import rational_factor, resample_to
from ecglit.errors import DataError

CINC21 = "torch_ecg/sample-data/cinc2021"
CPSC_DIR = "physionet_python_classifier_2020/input_directory"
PTBXL_LR = "ecg_image_kit/SampleData/PTB_XL_data/00001_lr"


def code_leads(raw) -> np.ndarray:
    return to_code_leads(raw.signal, raw.lead_names)[0]


# --- discovery and formats ------------------------------------------------------------------------

def test_scan_finds_every_record_and_the_label_tables(realdata: Path) -> None:
    found = scan_input(realdata)
    assert len(found.refs) == 269
    formats = {f: sum(r.format == f for r in found.refs) for f in {r.format for r in found.refs}}
    assert formats == {"cinc": 257, "cpsc": 10, "wfdb": 2}
    assert [p.name for p in found.cpsc_reference] == ["REFERENCE.csv"]
    assert [p.name for p in found.ptbxl_database] == ["ptbxl_database.csv"]
    assert sorted(p.name for p in found.ignored) == ["README.md", "labels.csv"]


def test_every_record_reads_like_labels_csv(realdata: Path, expected) -> None:
    """Rate, size, units/gains (lead II's p99.5 |x - median| in mV) and labels of every record match the
    independently made table; "not annotated" (empty) stays None, distinct from 0."""
    found = scan_input(realdata)
    tables = LabelTables.load(found.cpsc_reference, found.ptbxl_database, {"A[0-9]*": ["SB", "ST"]})
    for ref in found.refs:
        raw = load_record(ref, ImportOptions(tables=tables))
        row = expected[ref.relative_path.rsplit(".", 1)[0]]
        assert raw.fs == float(row["fs"]) and raw.n_samples == int(row["n_samples"]), ref.name
        assert len(raw.lead_names) == int(row["n_leads"])
        amp = lead_amplitudes(code_leads(raw))[LEADS.index("DII")]
        assert amp == pytest.approx(float(row["leadII_p99_5_abs_mV"]), abs=1e-3), ref.name
        assert raw.labels == {c: (None if row[c] == "" else int(row[c])) for c in CLASSES}, ref.name


def test_cinc_header_naming_record_with_extension(realdata: Path) -> None:
    hea = realdata / "awwong1_physionet2020/tests/data/E00015.hea"
    assert hea.read_text().split()[0] == "E00015.mat"
    with pytest.raises(HeaderSyntaxError):  # the strict parser rejects it: cinc.py parses headers itself
        wfdb.rdheader(str(hea.with_suffix("")))
    raw = load_record(hea)
    assert raw.signal.shape == (5000, 12) and raw.fs == 500.0
    assert raw.meta["header_gain"] == 4880.0 and "extension" in raw.meta["notes"][0]
    assert raw.meta["age"] == 67 and raw.meta["is_male"] is True


def test_gain_override_by_name_and_by_folder(realdata: Path) -> None:
    hea = realdata / "sebgood_physionet2020/data_pred/HR00001.hea"
    plain = load_record(hea)
    ref = RecordRef(hea, "cinc", "HR00001", root=realdata)
    by_name = load_record(ref, ImportOptions(gain_override={"HR*": 1000}))
    by_folder = load_record(ref, ImportOptions(gain_override={"sebgood_physionet2020/*": 1000}))
    other = load_record(ref, ImportOptions(gain_override={"E*": 1000}))
    np.testing.assert_allclose(by_name.signal * 5, plain.signal, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(by_folder.signal, by_name.signal)
    np.testing.assert_array_equal(other.signal, plain.signal)
    assert by_name.meta["gain_used"] == 1000.0 and plain.meta["gain_used"] == 200.0


def test_raw_cpsc_mat_with_reference_table(realdata: Path) -> None:
    mat = realdata / "torch_ecg/sample-data/cpsc2018/A1982.mat"
    bare = load_record(mat)
    assert all(v is None for v in bare.labels.values()) and bare.meta["label_source"] == "none"
    tables = LabelTables.load([realdata / "cpsc2018_reference/REFERENCE.csv"])
    raw = load_record(mat, ImportOptions(tables=tables))
    assert raw.labels == {"1dAVb": 1, "RBBB": 0, "LBBB": 0, "SB": None, "AF": 0, "ST": None}
    assert raw.fs == 500.0 and raw.signal.shape == (5000, 12) and raw.meta["is_male"] is True


def test_ptbxl_folder(realdata: Path, tmp_path: Path) -> None:
    """A PTB-XL layout: database rows -> records100/records500 files, labels from scp_codes."""
    folder = tmp_path / "ptbxl"
    (folder / "records100/00000").mkdir(parents=True)
    for ext in (".hea", ".dat"):
        shutil.copy(realdata / f"{PTBXL_LR}{ext}", folder / "records100/00000")
    with open(realdata / "ptbxl_metadata/ptbxl_database.csv") as f:
        lines = f.readlines()[:3]  # header + ecg_id 1 (present) + ecg_id 2 (no file here)
    (folder / "ptbxl_database.csv").write_text("".join(lines))
    refs = find_records(folder, ptbxl_rate=100)
    assert [(r.format, r.name, r.index) for r in refs] == [("ptbxl", "00001_lr", 1), ("ptbxl", "00002_lr", 2)]
    raw = load_record(refs[0], ImportOptions(ptbxl_rate=100))
    assert raw.labels == dict.fromkeys(CLASSES, 0)  # NORM
    assert raw.fs == 100.0 and raw.meta["age"] == 56 and raw.meta["is_male"] is False
    assert raw.meta["patient_key"] == "ptbxl:15709"
    with pytest.raises(DataError, match="missing"):
        load_record(refs[1])
    assert find_records(folder, ptbxl_rate=500)[0].path.name == "00001_hr.hea"


def test_code_test_hdf5_round_trip(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((3, N_SAMPLES, 12)) * 5).astype(np.float32)
    with h5py.File(tmp_path / "ecg_tracings.hdf5", "w") as f:
        f["tracings"] = x
    (tmp_path / "gold.csv").write_text(",".join(CLASSES) + "\n0,1,0,0,0,0\n1,0,0,0,1,0\n0,0,0,0,0,1\n")
    refs = find_records(tmp_path / "ecg_tracings.hdf5")
    assert [r.index for r in refs] == [0, 1, 2]
    raw = load_record(refs[1], ImportOptions(code_test_labels=tmp_path / "gold.csv"))
    assert raw.labels == {"1dAVb": 1, "RBBB": 0, "LBBB": 0, "SB": 0, "AF": 1, "ST": 0}
    std = standardize(raw)
    np.testing.assert_allclose(std.exams[0], x[1], rtol=1e-6, atol=1e-6)  # 400 Hz, 4096: unchanged


def test_plain_arrays(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    eight = rng.standard_normal((5000, 8))
    names = ["I", "II", "V1", "V2", "V3", "V4", "V5", "V6"]
    np.savetxt(tmp_path / "rec.csv", eight, delimiter=",", header=",".join(names), comments="")
    np.save(tmp_path / "rec_t.npy", eight.T * 1000)  # leads first, microvolts
    with pytest.raises(DataError, match="fs="):
        load_record(tmp_path / "rec.csv")
    a = standardize(load_record(tmp_path / "rec.csv", ImportOptions(fs=500)))
    micro = ImportOptions(fs=500, lead_names=names, array_gain=1000)
    b = standardize(load_record(tmp_path / "rec_t.npy", micro))
    np.testing.assert_allclose(a.exams[0], b.exams[0], atol=1e-5)
    assert "derived DIII, aVR, aVL, aVF from DI and DII" in a.notes


# --- leads ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, lead", [
    ("I", "DI"), ("i", "DI"), ("DI", "DI"), ("lead_i", "DI"), ("Lead II", "DII"), ("DIII", "DIII"),
    ("AVR", "aVR"), ("avl", "aVL"), ("aVF", "aVF"), ("v1", "V1"), ("V6", "V6"), ("vx", None), ("MLII", None),
])
def test_lead_aliases(name: str, lead: str | None) -> None:
    assert canonical_lead(name) == lead


def test_derived_limb_leads_equal_recorded_ones(realdata: Path) -> None:
    """Einthoven/Goldberger on a real record: deriving DIII, aVR, aVL, aVF from DI, DII reproduces them."""
    raw = load_record(realdata / CINC21 / "E07500.hea")
    full = code_leads(raw)
    keep = [k for k, n in enumerate(raw.lead_names) if n not in ("III", "aVR", "aVL", "aVF")]
    derived, made, dropped = to_code_leads(raw.signal[:, keep], [raw.lead_names[k] for k in keep])
    assert made == ["DIII", "aVR", "aVL", "aVF"] and dropped == []
    np.testing.assert_allclose(derived, full, atol=0.004)  # a few ADC steps of rounding in the source


def test_frank_leads_dropped(realdata: Path) -> None:
    std = standardize(load_record(realdata / "wfdb_python/sample-data/s0010_re.hea"))
    assert std.n_leads_original == 15
    assert any("dropped lead(s) vx, vy, vz" in n for n in std.notes)


def test_missing_leads_are_a_data_error(realdata: Path) -> None:
    raw = load_record(realdata / CINC21 / "E07500.hea")
    with pytest.raises(DataError, match=r"missing lead\(s\) V5"):
        to_code_leads(raw.signal[:, :10], raw.lead_names[:10], path="x.hea")
    no_dii = [k for k, n in enumerate(raw.lead_names) if n not in ("II", "III", "aVF")]
    with pytest.raises(DataError, match="DII, DIII, aVF .*both DI and DII"):
        to_code_leads(raw.signal[:, no_dii], [raw.lead_names[k] for k in no_dii])


# --- labels -----------------------------------------------------------------------------------------

def test_label_maps() -> None:
    labels, system = labels_from_dx("713427006,164889003,251146004")
    assert system == "snomed" and labels == {"1dAVb": 0, "RBBB": 1, "LBBB": 0, "SB": 0, "AF": 1, "ST": 0}
    assert labels_from_dx("733534002")[0]["LBBB"] == 1
    # incomplete RBBB, atrial flutter, plain bradycardia: deliberately not mapped
    assert labels_from_dx("713426002,164890007,426627000")[0] == dict.fromkeys(CLASSES, 0)
    cpsc, system = labels_from_dx("I-AVB,RBBB")
    assert system == "cpsc" and cpsc == {"1dAVb": 1, "RBBB": 1, "LBBB": 0, "SB": None, "AF": 0, "ST": None}
    assert labels_from_dx(" ")[0] == dict.fromkeys(CLASSES)
    assert labels_from_scp_codes("{'AFIB': 0.0, 'SBRAD': 0.0}")["AF"] == 1
    assert labels_from_scp_codes("{'AFLT': 100.0, 'IRBBB': 50.0}") == dict.fromkeys(CLASSES, 0)
    with pytest.raises(ValueError, match="unknown"):
        labels_from_dx("AF,Wenckebach")


# --- resampling and length --------------------------------------------------------------------------

@pytest.mark.parametrize("fs, factor", [(500, (4, 5)), (1000, (2, 5)), (100, (4, 1)), (257, (400, 257)),
                                        (360.0, (10, 9)), (400, (1, 1))])
def test_rational_factor(fs: float, factor: tuple[int, int]) -> None:
    assert rational_factor(fs) == factor


@pytest.mark.parametrize("record", [f"{CINC21}/E07500.hea", f"{PTBXL_LR}.hea",
                                    "wfdb_python/sample-data/s0010_re.hea"])
def test_resampling_matches_fft_reference(realdata: Path, record: str) -> None:
    raw = load_record(realdata / record)
    x = code_leads(raw)
    ours = resample_to(x, raw.fs)
    n = int(round(len(x) * 400 / raw.fs))
    reference = scipy.signal.resample(x, n, axis=0)
    assert ours.shape == reference.shape
    inner = slice(200, n - 200)  # the FFT method assumes a periodic signal: compare away from the edges
    diff = ours[inner] - reference[inner]
    rms = np.sqrt((diff ** 2).mean()) / np.sqrt(((reference[inner] - reference[inner].mean(0)) ** 2).mean())
    assert rms < 0.01 and np.abs(diff).max() < 0.02  # mV


def test_ten_seconds_at_500hz_become_4000_samples_centred(realdata: Path) -> None:
    raw = load_record(realdata / CINC21 / "E07500.hea")
    x = code_leads(raw)
    std = standardize(raw)
    (exam,) = std.exams
    assert exam.shape == (N_SAMPLES, 12) and exam.dtype == np.float32
    assert not exam[:48].any() and not exam[4048:].any()
    assert np.all(np.abs(exam[48:4048]).max(axis=0) > 0)
    np.testing.assert_allclose(exam[48:4048], resample_to(x, 500) * UNITS_PER_MV, rtol=1e-5, atol=1e-4)


def test_long_record_crop_and_windows(realdata: Path, expected) -> None:
    longest = max((r for r in expected.values() if r["header"].startswith(CPSC_DIR)),
                  key=lambda r: float(r["duration_s"]))
    raw = load_record(realdata / longest["header"])
    full = resample_to(code_leads(raw), raw.fs) * UNITS_PER_MV
    n = len(full)
    crop = standardize(raw)
    assert len(crop.exams) == 1
    start = (n - N_SAMPLES) // 2
    np.testing.assert_allclose(crop.exams[0], full[start:start + N_SAMPLES], rtol=1e-5, atol=1e-4)
    windows = standardize(load_record(realdata / longest["header"]), long_records="windows").exams
    k = n // N_SAMPLES
    assert len(windows) == k >= 5
    first = (n - k * N_SAMPLES) // 2
    np.testing.assert_allclose(np.concatenate(windows), full[first:first + k * N_SAMPLES],
                               rtol=1e-5, atol=1e-4)


# --- plausibility -----------------------------------------------------------------------------------

def test_plausibility_flags(realdata: Path) -> None:
    raw = load_record(realdata / CINC21 / "E07501.hea")
    x = code_leads(raw)
    assert check_record(x, raw.fs).flags == []
    assert check_record(x / 10, raw.fs).flags == ["amplitude_small"]
    assert check_record(x * 10, raw.fs).flags == ["amplitude_large"]
    flat = x.copy()
    flat[:, LEADS.index("V3")] = 0.0
    assert check_record(flat, raw.fs).flags == ["flat_leads"]
    assert check_record(np.zeros_like(x), raw.fs).flags == ["flat"]
    big = int(np.argmax(lead_amplitudes(x)))
    clipped = x.copy()
    level = np.percentile(np.abs(x[:, big] - np.median(x[:, big])), 99.0) * 0.6
    clipped[:, big] = np.clip(x[:, big], np.median(x[:, big]) - level, np.median(x[:, big]) + level)
    assert check_record(clipped, raw.fs).flags == ["clipped"]


@pytest.mark.parametrize(("name", "database"), [
    ("A0001", "CPSC 2018"), ("Q0048", "CPSC 2018 extra"), ("I01", "INCART"), ("S0010", "PTB"),
    ("HR00001", "PTB-XL"), ("E07509", "Georgia"), ("JS00012", "Chapman-Shaoxing-Ningbo"),
    ("records100/00000/00001_lr", "PTB-XL"), ("s0010_re", "PTB"), ("A000", ""), ("HR0001", ""), ("patient001", ""), ("E00009x", ""),
])
def test_database_from_the_public_record_names(name, database):
    assert database_of(name) == database
