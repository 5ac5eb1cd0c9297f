"""Write small ECG inputs, good and broken, for the malformed-input matrix and the fuzz tests.

Every writer produces a file that ecglit reads when left alone, and takes the one change a case needs
(a header edit, a dtype, a truncation), so each case differs from a good input in exactly one way. The
signals are known: lead k of a record is ``lead_signal(t, k)`` in mV, so a test can check the values read
back against numbers computed here, independently of the readers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from ecglit.constants import CLASSES, LEADS, N_SAMPLES

WFDB_LEADS = ("I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6")
TINY_NET = {"_target_": "ecglit.models.resnet.ResNet1d", "stem_filters": 4, "filters": [8],
            "seq_lengths": [64], "kernel_size": 7}


def lead_signal(n: int, fs: float, n_leads: int = 12) -> np.ndarray:
    """(n, n_leads) mV: a 1.2 Hz wave of 0.5-1.6 mV plus a small 15 Hz one, a different phase per lead."""
    t = np.arange(n)[:, None] / fs
    k = np.arange(n_leads)[None, :]
    return (0.5 + 0.1 * k) * np.sin(2 * np.pi * 1.2 * t + k) + 0.05 * np.sin(2 * np.pi * 15 * t)


# --- WFDB and CinC ------------------------------------------------------------------------------------

def wfdb_header(name: str, fs: object = 500, n: object = 5000, gain: object = "1000", leads: Sequence[str] = WFDB_LEADS,
                signal_file: str | None = None, fmt: str = "16", comments: Sequence[str] = ()) -> str:
    lines = [f"{name} {len(leads)} {fs} {n}"]
    lines += [f"{signal_file or name + '.dat'} {fmt} {gain}/mV 16 0 0 0 0 {lead}" for lead in leads]
    return "\n".join([*lines, *comments]) + "\n"


def write_wfdb(folder: Path, name: str = "rec", fs: float = 500, n: int = 5000, gain: float = 1000,
               leads: Sequence[str] = WFDB_LEADS, edit: Callable[[str], str] | None = None,
               signal: np.ndarray | None = None) -> Path:
    """A WFDB record (format 16, baseline 0): ``name.hea`` + ``name.dat``; ``edit`` rewrites the header text."""
    folder.mkdir(parents=True, exist_ok=True)
    x = lead_signal(n, fs, len(leads)) if signal is None else signal
    np.round(x * gain).astype("<i2").tofile(folder / f"{name}.dat")
    text = wfdb_header(name, fs, n, f"{gain:g}", leads)
    (folder / f"{name}.hea").write_text(edit(text) if edit else text)
    return folder / f"{name}.hea"


def write_cinc(folder: Path, name: str = "A0001", fs: float = 500, n: int = 5000, gain: float = 1000,
               leads: Sequence[str] = WFDB_LEADS, edit: Callable[[str], str] | None = None,
               val: np.ndarray | None = None, dx: str = "164889003") -> Path:
    """A CinC record: ``name.hea`` + MATLAB v4 ``name.mat`` with ``val`` (leads, samples) int16."""
    folder.mkdir(parents=True, exist_ok=True)
    if val is None:
        val = np.round(lead_signal(n, fs, len(leads)).T * gain).astype(np.int16)
    scipy.io.savemat(folder / f"{name}.mat", {"val": val}, format="4")
    text = wfdb_header(name, fs, n, f"{gain:g}", leads, signal_file=f"{name}.mat", fmt="16+24",
                       comments=[f"#Dx: {dx}", "#Age: 61", "#Sex: Male"])
    (folder / f"{name}.hea").write_text(edit(text) if edit else text)
    return folder / f"{name}.hea"


def replace_token(text: str, line: int, token: int, value: str) -> str:
    """``text`` with token ``token`` of line ``line`` (0 = the record line) replaced by ``value``."""
    lines = text.splitlines()
    tokens = lines[line].split()
    tokens[token] = value
    lines[line] = " ".join(tokens)
    return "\n".join(lines) + "\n"


def every_signal_line(text: str, token: int, value: str) -> str:
    n = int(text.split()[1])
    for k in range(1, n + 1):
        text = replace_token(text, k, token, value)
    return text


def write_cpsc(folder: Path, name: str = "A0001", data: object = None) -> Path:
    """A raw CPSC 2018 .mat: struct ECG with sex, age and data (12, n) in mV."""
    folder.mkdir(parents=True, exist_ok=True)
    data = lead_signal(5000, 500).T if data is None else data
    scipy.io.savemat(folder / f"{name}.mat", {"ECG": {"sex": "Male", "age": 50, "data": data}})
    return folder / f"{name}.mat"


# --- HDF5 exam files and label tables -----------------------------------------------------------------

def exam_block(n: int, seed: int = 0) -> np.ndarray:
    """(n, 4096, 12) float32 tracings in 1e-4 V (about 1 mV peaks), different per exam."""
    x = lead_signal(N_SAMPLES, 400)[None] * 10.0
    return (x * (1.0 + 0.1 * np.arange(n))[:, None, None]
            + np.random.default_rng(seed).normal(0, 0.1, (n, N_SAMPLES, len(LEADS)))).astype(np.float32)


def write_h5(path: Path, **datasets: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f[key] = value
    return path


def label_rows(ids: Sequence[int], seed: int = 0) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    return [{"exam_id": int(i), "patient_id": 100 + int(i), **{c: bool(rng.random() < 0.4) for c in CLASSES}}
            for i in ids]


def write_csv(path: Path, rows: Sequence[dict[str, object]], columns: Sequence[str] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(columns or (rows[0].keys() if rows else ["exam_id", "patient_id", *CLASSES]))
    lines = [",".join(columns)] + [",".join("" if r.get(c) is None else str(r.get(c)) for c in columns)
                                   for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_shard_folder(folder: Path, ids: Sequence[int] = (5, 6, 7), shards: int = 1,
                       x: np.ndarray | None = None, csv: bool = True) -> Path:
    """CODE-15%-layout shards (``exams_part{k}.hdf5``, exams split evenly) + ``exams.csv``."""
    ids = np.asarray(ids, np.int64)
    x = exam_block(len(ids)) if x is None else x
    for k, part in enumerate(np.array_split(np.arange(len(ids)), shards)):
        write_h5(folder / f"exams_part{k}.hdf5", tracings=x[part], exam_id=ids[part])
    if csv:
        write_csv(folder / "exams.csv", label_rows(ids))
    return folder


# --- checkpoints --------------------------------------------------------------------------------------

def write_checkpoint(path: Path, nan_weight: bool = False, net: dict | None = None,
                     drop_key: str | None = None, class_names: list[str] | None = None) -> Path:
    """A tiny ECGClassifier checkpoint as Lightning saves it (optionally broken in one way)."""
    import lightning
    import torch

    from ecglit.models.ecg_module import ECGClassifier

    torch.manual_seed(0)
    module = ECGClassifier(net=TINY_NET, **({"class_names": class_names} if class_names else {}))
    state = module.state_dict()
    if nan_weight:
        state["net.stem.0.weight"].view(-1)[0] = float("nan")
    if drop_key:
        state.pop(drop_key)
    hparams = dict(module.hparams)
    if net is not None:
        hparams["net"] = net
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "hyper_parameters": hparams,
                "pytorch-lightning_version": lightning.__version__}, path)
    return path


def file_bytes(folder: Path) -> dict[str, bytes]:
    """{relative path: content} of every file under ``folder`` (to show that nothing was changed)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
