"""Map source diagnoses to the six CODE classes (see ../shared/realdata/README.md, design doc §4).

Three label systems:
- SNOMED CT codes (CinC 2020/2021 ``#Dx:``), scored equivalences merged (59118001 = 713427006 RBBB,
  164909002 = 733534002 LBBB). A record with codes annotates all six classes (absent codes are 0).
- CPSC 2018 names / REFERENCE.csv codes (Normal, AF, I-AVB, LBBB, RBBB, PAC, PVC, STD, STE): CPSC does
  not annotate SB or ST, so those stay None ("not annotated"), never 0.
- PTB-XL ``scp_codes`` dicts: any key present is positive (likelihood 0 means "unknown", as helme's
  benchmark reads it).
Incomplete bundle branch blocks, atrial flutter and plain "bradycardia" are deliberately not mapped.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ecglit.constants import CLASSES
from ecglit.data.importers.record import Labels, unannotated
from ecglit.data.labels import parse_int_column, read_table
from ecglit.errors import DataError

SNOMED_TO_CLASS: dict[str, str] = {
    "270492004": "1dAVb",
    "59118001": "RBBB", "713427006": "RBBB",
    "164909002": "LBBB", "733534002": "LBBB",
    "426177001": "SB",
    "164889003": "AF",
    "427084000": "ST",
}
CPSC_CODE_TO_NAME: dict[int, str] = {1: "Normal", 2: "AF", 3: "I-AVB", 4: "LBBB", 5: "RBBB", 6: "PAC",
                                     7: "PVC", 8: "STD", 9: "STE"}
CPSC_NAME_TO_CLASS: dict[str, str] = {"I-AVB": "1dAVb", "IAVB": "1dAVb", "RBBB": "RBBB", "LBBB": "LBBB",
                                      "AF": "AF"}
CPSC_ANNOTATED: tuple[str, ...] = ("1dAVb", "RBBB", "LBBB", "AF")
PTBXL_TO_CLASS: dict[str, str] = {"1AVB": "1dAVb", "CRBBB": "RBBB", "CLBBB": "LBBB", "SBRAD": "SB",
                                  "AFIB": "AF", "STACH": "ST"}

_CPSC_NAMES = {n.upper() for n in (*CPSC_CODE_TO_NAME.values(), "IAVB")}


def _annotated(classes: Iterable[str], positives: Iterable[str]) -> Labels:
    labels = unannotated()
    for c in classes:
        labels[c] = 0
    for c in positives:
        labels[c] = 1
    return labels


def labels_from_snomed(codes: Iterable[str]) -> Labels:
    """All six classes annotated: 1 when a (equivalent) code is present, else 0."""
    return _annotated(CLASSES, [SNOMED_TO_CLASS[c] for c in codes if c in SNOMED_TO_CLASS])


def labels_from_cpsc_names(names: Iterable[str]) -> Labels:
    """1dAVb, RBBB, LBBB, AF annotated; SB and ST None (CPSC 2018 has no such class)."""
    return _annotated(CPSC_ANNOTATED, [CPSC_NAME_TO_CLASS[n.upper()] for n in names
                                       if n.upper() in CPSC_NAME_TO_CLASS])


def labels_from_scp_codes(scp_codes: str | Mapping[str, float]) -> Labels:
    """PTB-XL ``scp_codes`` (the dict or its text): all six annotated, any key present is positive."""
    codes = ast.literal_eval(scp_codes) if isinstance(scp_codes, str) else scp_codes
    if not isinstance(codes, Mapping):
        raise ValueError(f"scp_codes is not a dict: {scp_codes!r}")
    return _annotated(CLASSES, [PTBXL_TO_CLASS[k] for k in codes if k in PTBXL_TO_CLASS])


def labels_from_dx(dx: str) -> tuple[Labels, str]:
    """A CinC ``#Dx:`` value -> (labels, label system). Empty -> nothing annotated ("none").

    All-numeric tokens are SNOMED CT codes; otherwise the tokens are CPSC names (the CinC 2020 v1 copies
    of CPSC 2018 write ``#Dx: AF,RBBB``). Unknown text tokens raise ValueError.
    """
    tokens = [t.strip() for t in re.split(r"[,;]", dx) if t.strip()]
    if not tokens:
        return unannotated(), "none"
    if all(t.isdigit() for t in tokens):
        return labels_from_snomed(tokens), "snomed"
    unknown = [t for t in tokens if not t.isdigit() and t.upper() not in _CPSC_NAMES]
    if unknown:
        raise ValueError(f"Dx {dx!r} holds unknown name(s) {unknown} (expected SNOMED CT codes or CPSC names)")
    codes = [t for t in tokens if t.isdigit()]
    if codes:
        raise ValueError(f"Dx {dx!r} mixes SNOMED CT codes {codes} with CPSC names")
    return labels_from_cpsc_names(tokens), "cpsc"


def ptbxl_ecg_id(record_name: str) -> int | None:
    """PTB-XL ecg_id of a record name: ``00001_lr``/``00001_hr`` (PTB-XL) or ``HR00001`` (CinC copy)."""
    m = re.fullmatch(r"(\d{5})_(?:lr|hr)|HR(\d{5})", record_name)
    if not m:
        return None
    return int(m.group(1) or m.group(2))


def read_cpsc_reference(path: str | Path) -> dict[str, Labels]:
    """CPSC 2018 ``REFERENCE.csv`` (Recording, First_label, Second_label, Third_label; codes 1-9)."""
    path = Path(path)
    df = read_table(path, ["Recording"], "CPSC 2018 REFERENCE.csv")
    recordings = df["Recording"].str.strip()
    repeated = recordings[recordings.duplicated(keep=False)]
    if len(repeated):
        first = repeated.iloc[0]
        lines = (np.flatnonzero(recordings.to_numpy() == first) + 2).tolist()
        raise DataError(path, f"{repeated.nunique()} Recording(s) appear on more than one row (e.g. "
                              f"{first!r} on lines {lines})")
    if (recordings == "").any():
        raise DataError(path, "empty Recording name",
                        record=f"line {int(np.flatnonzero(recordings == '')[0]) + 2}")
    label_columns = [c for c in df.columns if c != "Recording"]
    out: dict[str, Labels] = {}
    for i, (recording, cells) in enumerate(zip(recordings, df[label_columns].itertuples(index=False))):
        names = []
        for cell in cells:
            code = str(cell).strip()
            if not code:
                continue
            if not re.fullmatch(r"\d+(?:\.0*)?", code) or int(float(code)) not in CPSC_CODE_TO_NAME:
                raise DataError(path, f"label {cell!r} is not a CPSC code 1-9", record=f"line {i + 2}")
            names.append(CPSC_CODE_TO_NAME[int(float(code))])
        out[recording] = labels_from_cpsc_names(names)
    return out


def read_ptbxl_database(path: str | Path) -> pd.DataFrame:
    """``ptbxl_database.csv`` indexed by ecg_id, with a parsed ``labels`` column."""
    path = Path(path)
    table = read_table(path, ["ecg_id", "scp_codes"], "PTB-XL ptbxl_database.csv")
    ecg_id = parse_int_column(table, "ecg_id", path)
    repeated = np.unique(ecg_id[pd.Index(ecg_id).duplicated()])
    if len(repeated):
        lines = (np.flatnonzero(ecg_id == repeated[0]) + 2).tolist()
        raise DataError(path, f"{len(repeated)} ecg_id(s) appear on more than one row (e.g. ecg_id "
                              f"{repeated[0]} on lines {lines})")
    df = table.replace("", np.nan).set_index(pd.Index(ecg_id, name="ecg_id")).drop(columns=["ecg_id"])
    for column in ("age", "sex", "patient_id"):
        if column in df.columns:
            values = pd.to_numeric(df[column], errors="coerce")
            df[column] = values.where(np.isfinite(values))  # "inf" is no age, sex or patient
    labels = []
    for i, text in enumerate(df["scp_codes"]):
        try:
            labels.append(labels_from_scp_codes("" if pd.isna(text) else text))
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
            raise DataError(path, f"unparseable scp_codes {text!r} ({type(e).__name__}: {e})",
                            record=f"line {i + 2}, ecg_id {ecg_id[i]}") from None
    df["labels"] = labels
    return df


def ptbxl_meta(row: pd.Series) -> dict[str, Any]:
    """Demographics and patient key of one PTB-XL database row (sex: 0 male, 1 female)."""
    meta: dict[str, Any] = {}
    if pd.notna(row.get("age")):
        meta["age"] = float(row["age"])
    if pd.notna(row.get("sex")):
        meta["is_male"] = int(row["sex"]) == 0
    if pd.notna(row.get("patient_id")):
        meta["patient_key"] = f"ptbxl:{int(row['patient_id'])}"
    return meta


@dataclass
class LabelTables:
    """Label sources outside the records' own headers, consulted when a header has no diagnosis.

    Args:
        cpsc: record name -> labels from CPSC 2018 REFERENCE.csv.
        ptbxl: PTB-XL database (ecg_id index) for ``NNNNN_lr/hr`` and CinC ``HRNNNNN`` records.
        not_annotated: record-name glob -> classes the source does not annotate (set to None). The CinC
            copies of CPSC 2018 (``A0001``...) carry SNOMED codes but CPSC never annotated SB or ST.
    """

    cpsc: dict[str, Labels] = field(default_factory=dict)
    ptbxl: pd.DataFrame | None = None
    not_annotated: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, cpsc_reference: Sequence[str | Path] = (), ptbxl_database: Sequence[str | Path] = (),
             not_annotated: Mapping[str, Sequence[str]] | None = None) -> LabelTables:
        cpsc: dict[str, Labels] = {}
        for p in cpsc_reference:
            cpsc.update(read_cpsc_reference(p))
        frames = [read_ptbxl_database(p) for p in ptbxl_database]
        ptbxl = pd.concat(frames) if frames else None
        if ptbxl is not None:
            ptbxl = ptbxl[~ptbxl.index.duplicated(keep="last")]
        na = {str(k): [str(c) for c in v] for k, v in (not_annotated or {}).items()}
        bad = sorted({c for v in na.values() for c in v} - set(CLASSES))
        if bad:
            raise DataError(None, f"not_annotated names unknown class(es) {bad}; classes are {list(CLASSES)}")
        return cls(cpsc, ptbxl, na)

    def merged_with(self, other: LabelTables) -> LabelTables:
        """Both tables' entries; ``self`` wins where both know a record."""
        frames = [f for f in (other.ptbxl, self.ptbxl) if f is not None]
        ptbxl = pd.concat(frames) if frames else None
        if ptbxl is not None:
            ptbxl = ptbxl[~ptbxl.index.duplicated(keep="last")]
        return LabelTables({**other.cpsc, **self.cpsc}, ptbxl, {**other.not_annotated, **self.not_annotated})

    def lookup(self, record_name: str) -> tuple[Labels, str, dict[str, Any]] | None:
        """Labels from a table for a record (labels, source, extra meta), or None if no table knows it."""
        if record_name in self.cpsc:
            return dict(self.cpsc[record_name]), "cpsc_reference", {}
        ecg_id = ptbxl_ecg_id(record_name)
        if self.ptbxl is not None and ecg_id is not None and ecg_id in self.ptbxl.index:
            row = self.ptbxl.loc[ecg_id]
            return dict(row["labels"]), "ptbxl_database", ptbxl_meta(row)
        return None

    def mask_not_annotated(self, record_name: str, labels: Labels) -> Labels:
        """Set to None the classes that ``not_annotated`` says this record's source never annotates."""
        out = dict(labels)
        for pattern, classes in self.not_annotated.items():
            if fnmatch.fnmatchcase(record_name, pattern):
                for c in classes:
                    out[c] = None
        return out
