"""Import real-world ECG records (WFDB, CinC, CPSC 2018, PTB-XL, CODE HDF5, plain arrays) into ecglit.

    refs = find_records("path/to/folder")
    raw = load_record(refs[0], ImportOptions(gain_override={"HR*": 1000}))
    std = standardize(raw)          # exams (4096, 12) float32 in 1e-4 V, plausibility flags
    convert(input, output, ...)     # folder -> CODE-15%-layout shards + exams.csv + report.csv/md
"""

from ecglit.data.importers.convert import convert
from ecglit.data.importers.formats import detect_format, find_records, load_record, scan_input
from ecglit.data.importers.labels import LabelTables
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.record import RawRecord, RecordRef
from ecglit.data.importers.standardize import StandardRecord, standardize

__all__ = [
    "ImportOptions", "LabelTables", "RawRecord", "RecordRef", "StandardRecord",
    "convert", "detect_format", "find_records", "load_record", "scan_input", "standardize",
]
