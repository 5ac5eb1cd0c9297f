"""Raw CPSC 2018 records: a MATLAB ``.mat`` holding struct ``ECG`` (``sex``, ``age``, ``data`` 12 x N mV).

The files carry no header: the rate (500 Hz) and lead order (I, II, III, aVR, aVL, aVF, V1-V6) are the
challenge's; the labels are in a separate REFERENCE.csv (codes 1-9) found under the input folder or
set with ``cpsc_reference``. CPSC does not annotate SB or ST: those stay None.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.record import RawRecord, RecordRef, unannotated
from ecglit.errors import DataError

CPSC_LEADS = ["I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6"]


def mat_kind(path: Path) -> str:
    """'cpsc' for an ``ECG`` struct, 'cinc' for a ``val`` matrix (header missing), else 'unknown'."""
    try:
        names = {name for name, _, _ in scipy.io.whosmat(str(path))}
    except Exception:
        return "unknown"
    if "ECG" in names:
        return "cpsc"
    if "val" in names:
        return "cinc"
    return "unknown"


def read_cpsc(ref: RecordRef, options: ImportOptions) -> RawRecord:
    try:
        mat = scipy.io.loadmat(str(ref.path), simplify_cells=True, variable_names=["ECG"])
    except Exception as e:
        raise DataError(ref.path, f"cannot read MATLAB file ({type(e).__name__}: {e})",
                        record=ref.name) from None
    ecg = mat.get("ECG")
    if not isinstance(ecg, dict) or "data" not in ecg:
        raise DataError(ref.path, "no struct 'ECG' with field 'data' (expected a raw CPSC 2018 record)",
                        record=ref.name)
    data = np.asarray(ecg["data"])
    if data.dtype.kind not in "iuf":
        raise DataError(ref.path, f"ECG.data holds {data.dtype} values, expected numbers in mV", record=ref.name)
    data = data.astype(np.float64)
    if data.ndim != 2 or data.shape[0] != len(CPSC_LEADS):
        raise DataError(ref.path, f"ECG.data has shape {data.shape}, expected (12, n_samples)",
                        record=ref.name)
    override = options.gain_for(ref)
    gain = override or 1.0  # the data are in mV already
    found = options.tables.lookup(ref.name)
    labels, label_source, extra = found if found is not None else (unannotated(), "none", {})
    meta = {"source_file": ref.relative_path, "gain_used": gain, "label_source": label_source,
            "gain_overridden": override is not None, "header_gain": None, "notes": []}
    try:
        age = float(ecg.get("age"))
        if 0 <= age < 130:
            meta["age"] = age
    except (TypeError, ValueError):
        pass
    sex = str(ecg.get("sex", "")).strip().lower()
    if sex in ("male", "female"):
        meta["is_male"] = sex == "male"
    meta.update(extra)
    return RawRecord(ref.name, data.T / gain, float(options.cpsc_fs), list(CPSC_LEADS), labels, meta)
