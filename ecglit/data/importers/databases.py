"""Which public database a record comes from, by the naming conventions of PhysioNet/CinC 2020-2021 and
PTB-XL (reported per source, and used for leave-one-database-out splits). Unknown names give ""."""

from __future__ import annotations

import re

# PhysioNet/CinC Challenge 2020-2021 record names: a database prefix, then a fixed number of digits
CINC_DATABASES = (
    (re.compile(r"A\d{4}"), "CPSC 2018"),
    (re.compile(r"Q\d{4}"), "CPSC 2018 extra"),
    (re.compile(r"I\d{2}"), "INCART"),
    (re.compile(r"S\d{4}"), "PTB"),
    (re.compile(r"HR\d{5}"), "PTB-XL"),
    (re.compile(r"E\d{5}"), "Georgia"),
    (re.compile(r"JS\d{5}"), "Chapman-Shaoxing-Ningbo"),
)
PTBXL_RECORD = re.compile(r"\d{5}_(lr|hr)")
PTB_RECORD = re.compile(r"s\d{4}_(re|rem)")  # PTB Diagnostic ECG Database (PhysioNet ptbdb)


def database_of(record_name: str) -> str:
    """The database of a record named as in its public release ("" when the name does not say)."""
    name = str(record_name).rsplit("/", 1)[-1]
    for pattern, database in CINC_DATABASES:
        if pattern.fullmatch(name):
            return database
    if PTBXL_RECORD.fullmatch(name):
        return "PTB-XL"
    return "PTB" if PTB_RECORD.fullmatch(name) else ""
