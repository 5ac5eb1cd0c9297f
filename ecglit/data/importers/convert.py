"""Convert a file or folder of records into CODE-15%-layout shards with a conversion report.

Each record is read, standardised (12 leads, 400 Hz, 4096 samples, 1e-4 V) and written through
:class:`ecglit.data.shards.ShardWriter`; ``exams.csv`` gets provenance columns. A record that cannot be
converted is skipped and reported with its cause; ``strict=True`` stops at the first one instead (the
shards written so far, and the exams converted before it, are kept). Records with implausible
amplitudes are converted but flagged (see :mod:`ecglit.data.importers.plausibility`).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ecglit.constants import CLASSES
from ecglit.data.importers.databases import database_of
from ecglit.data.importers.duplicates import MAX_EXAMS, duplicate_pairs, fingerprint, merged_groups
from ecglit.data.importers.formats import load_record, scan_input
from ecglit.data.importers.labels import LabelTables
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.plausibility import group_flags, group_key
from ecglit.data.importers.record import RecordRef
from ecglit.data.importers.report import REPORT_FILES, ConversionReport
from ecglit.data.importers.resample import LONG_RECORD_MODES
from ecglit.data.importers.standardize import StandardRecord, standardize
from ecglit.data.shards import EXAMS_CSV, ShardWriter, check_output_dir, write_csv
from ecglit.errors import ConfigError, DataError

log = logging.getLogger(__name__)

PROVENANCE_COLUMNS = ("source_file", "record", "database", "window", "original_fs", "duration_s", "n_leads_original",
                      "gain_used", "flags", "label_source", "notes")


def _label_cell(value: int | None) -> bool | None:
    return None if value is None else bool(value)


class _Patients:
    """Stable integer patient ids: one per patient key (PTB-XL patient_id) or per record."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def __call__(self, key: str) -> int:
        return self.ids.setdefault(key, len(self.ids) + 1)


def _exam_rows(std: StandardRecord, ref: RecordRef, first_id: int, patient_id: int) -> list[dict[str, Any]]:
    raw, meta = std.raw, std.raw.meta
    base = {
        "age": meta.get("age"), "is_male": meta.get("is_male"), "patient_id": patient_id,
        **{c: _label_cell(raw.labels.get(c)) for c in CLASSES},
        "source_file": meta.get("source_file", ref.relative_path), "record": raw.name,
        "database": database_of(raw.name),
        "original_fs": raw.fs, "duration_s": round(std.duration_s, 3),
        "n_leads_original": std.n_leads_original, "gain_used": meta.get("gain_used"),
        "flags": ";".join(std.plausibility.flags), "label_source": meta.get("label_source"),
        "notes": "; ".join(std.notes),
    }
    multi = len(std.exams) > 1
    return [{**base, "exam_id": first_id + k, "window": k if multi else None} for k in range(len(std.exams))]


def _report_row(ref: RecordRef) -> dict[str, Any]:
    return {"record": ref.name, "source_file": ref.relative_path, "format": ref.format}


def _fill_report_row(row: dict[str, Any], std: StandardRecord, exam_ids: list[int]) -> None:
    p = std.plausibility
    row.update(status="flagged" if p.flags else "converted", reason="; ".join(p.reasons),
               flags=";".join(p.flags), notes="; ".join(std.notes), n_exams=len(exam_ids),
               exam_ids=";".join(map(str, exam_ids)), original_fs=std.raw.fs,
               duration_s=round(std.duration_s, 3), n_leads_original=std.n_leads_original,
               gain_used=std.raw.meta.get("gain_used"), header_gain=std.raw.meta.get("header_gain"),
               amplitude_mv=round(p.amplitude_mv, 4), label_source=std.raw.meta.get("label_source"))


def _apply_group_flags(report: ConversionReport, converted: list[dict[str, Any]], out_dir: Path) -> None:
    """Flag whole groups whose median amplitude is implausible, in the report and in exams.csv."""
    keys = [group_key(str(Path(r["source_file"]).parent), r["record"], r["gain_used"]) for r in converted]
    found = group_flags(keys, [float(r["amplitude_mv"]) for r in converted])
    if not found:
        return
    exam_flags: dict[str, str] = {}
    for i, (flag, reason) in found.items():
        row = converted[i]
        row["flags"] = ";".join(f for f in (row["flags"], flag) if f)
        row["reason"] = "; ".join(r for r in (row["reason"], reason) if r)
        row["status"] = "flagged"
        for exam_id in str(row["exam_ids"]).split(";"):
            exam_flags[exam_id] = row["flags"]
    exams_csv = out_dir / EXAMS_CSV
    with open(exams_csv, newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = list(reader.fieldnames or []), list(reader)
    for r in rows:
        if r["exam_id"] in exam_flags:
            r["flags"] = exam_flags[r["exam_id"]]
    write_csv(exams_csv, columns, rows)


def _merge_duplicate_patients(report: ConversionReport, prints: list[np.ndarray], out_dir: Path,
                              first_exam_id: int) -> None:
    """Give the exams of one recording found twice one patient_id (in exams.csv) and list them."""
    pairs = duplicate_pairs(np.stack(prints))
    if not pairs:
        return
    exams_csv = out_dir / EXAMS_CSV
    with open(exams_csv, newline="") as f:
        reader = csv.DictReader(f)
        columns, rows = list(reader.fieldnames or []), list(reader)
    by_id = {int(r["exam_id"]): r for r in rows}
    group = merged_groups(pairs, len(prints))
    for k, rep in enumerate(group):
        row, first = by_id.get(first_exam_id + k), by_id.get(first_exam_id + int(rep))
        if row is not None and first is not None:
            row["patient_id"] = first["patient_id"]
    write_csv(exams_csv, columns, rows)
    names = [f"{by_id[first_exam_id + i]['record']} = {by_id[first_exam_id + j]['record']}" for i, j in pairs
             if first_exam_id + i in by_id and first_exam_id + j in by_id]
    report.settings["duplicate recordings (one patient_id each)"] = names
    log.info("%d recording(s) found twice; each pair shares a patient_id: %s", len(pairs), ", ".join(names[:10]))


def convert(input: str | Path, output: str | Path, options: ImportOptions | None = None, *,
            long_records: str = "crop", strict: bool = False, discover_tables: bool = True,
            shard_size: int = 20_000, sentinel: bool = True, overwrite: bool = False,
            first_exam_id: int = 1, compression: str | None = None, progress: bool = False,
            merge_duplicates: bool = True) -> ConversionReport:
    """Convert every record under ``input`` into shards in ``output``; returns the report (also
    written as ``output/report.csv`` and ``output/report.md``). With ``merge_duplicates`` the same
    recording found twice (:mod:`ecglit.data.importers.duplicates`) gets one patient_id."""
    if long_records not in LONG_RECORD_MODES:
        raise ConfigError(f"long_records must be one of {LONG_RECORD_MODES}, got {long_records!r}")
    if first_exam_id < 1:
        raise ConfigError(f"first_exam_id must be >= 1 (0 is the shards' sentinel), got {first_exam_id}")
    check_output_dir(output, overwrite, REPORT_FILES)  # before reading anything
    options = options or ImportOptions()
    found = scan_input(input, options.ptbxl_rate, exclude=output)
    if discover_tables and (found.cpsc_reference or found.ptbxl_database):
        discovered = LabelTables.load(found.cpsc_reference, found.ptbxl_database)
        options = replace(options, tables=options.tables.merged_with(discovered))
    out_dir = Path(output)
    report = ConversionReport(str(input), str(out_dir), ignored=[str(p) for p in found.ignored],
                              settings={"long_records": long_records, "gain_override": options.gain_override,
                                        "cpsc_reference": [str(p) for p in found.cpsc_reference],
                                        "ptbxl_database": [str(p) for p in found.ptbxl_database]})
    writer = ShardWriter(out_dir, shard_size=shard_size, sentinel=sentinel, extra_columns=PROVENANCE_COLUMNS,
                         overwrite=overwrite, compression=compression, outputs=REPORT_FILES)
    patients = _Patients()
    next_id = first_exam_id
    converted: list[dict[str, Any]] = []
    prints: list[np.ndarray] = []  # one fingerprint per exam, in exam order (duplicates check)
    refs = found.refs
    for ref in tqdm(refs, desc="converting", unit="record", disable=not progress):
        row = _report_row(ref)
        report.rows.append(row)
        try:
            raw = load_record(ref, options)
            std = standardize(raw, long_records, path=ref.path)
        except Exception as e:  # one bad file must not stop a folder of thousands (unless strict)
            cause = e.cause if isinstance(e, DataError) else f"unexpected {type(e).__name__}: {e}"
            row.update(status="skipped", reason=str(e) if isinstance(e, DataError) else cause)
            log.warning("skipped %s: %s", ref.relative_path, row["reason"])
            if strict:
                writer.close()
                report.n_exams = writer.n_written
                _apply_group_flags(report, converted, out_dir)
                report.write(out_dir)
                where = e.path if isinstance(e, DataError) and e.path else ref.path
                raise DataError(where, f"{cause} (strict=true: stopped here; the {writer.n_written} exam(s) "
                                          f"converted before are kept in {out_dir}, see report.md)",
                                record=ref.name) from None
            continue
        patient = patients(std.raw.meta.get("patient_key") or f"record:{ref.relative_path}#{ref.index}")
        rows = _exam_rows(std, ref, next_id, patient)
        exam_ids = [r["exam_id"] for r in rows]
        next_id += len(rows)
        writer.add(np.stack(std.exams), rows)
        if merge_duplicates and len(prints) < MAX_EXAMS:
            prints += [fingerprint(x) for x in std.exams]
        _fill_report_row(row, std, exam_ids)
        converted.append(row)
    writer.close()
    report.n_exams = writer.n_written
    _apply_group_flags(report, converted, out_dir)
    if merge_duplicates and 0 < len(prints) < MAX_EXAMS:
        _merge_duplicate_patients(report, prints, out_dir, first_exam_id)
    report.write(out_dir)
    counts = report.counts
    log.info("converted %d record(s) into %d exam(s) (%d flagged), skipped %d; report: %s",
             counts["converted"] + counts["flagged"], report.n_exams, counts["flagged"], counts["skipped"],
             out_dir / "report.md")
    if report.n_exams == 0:
        raise DataError(input, f"no record could be converted ({len(refs)} found); see "
                               f"{out_dir / 'report.md'}")
    return report
