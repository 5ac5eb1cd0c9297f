"""Demographics and diagnoses from WFDB header comments (CinC ``#Age: 78``, PTB ``# sex: female``)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ecglit.data.importers.labels import labels_from_dx
from ecglit.data.importers.options import ImportOptions
from ecglit.data.importers.record import Labels, unannotated
from ecglit.errors import DataError


def comment_fields(comments: Iterable[str]) -> dict[str, str]:
    """``key: value`` comment lines -> {lower-case key: value} (first occurrence wins)."""
    out: dict[str, str] = {}
    for line in comments:
        m = re.match(r"\s*#?\s*([A-Za-z][\w ]*?)\s*:\s*(.*?)\s*$", line)
        if m:
            out.setdefault(m.group(1).lower(), m.group(2))
    return out


def demographics(fields: dict[str, str]) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    try:
        age = float(fields.get("age", ""))
        if 0 <= age < 130:
            meta["age"] = age
    except ValueError:
        pass
    sex = fields.get("sex", "").strip().lower()
    if sex in ("male", "m"):
        meta["is_male"] = True
    elif sex in ("female", "f"):
        meta["is_male"] = False
    return meta


def header_labels(name: str, fields: dict[str, str], options: ImportOptions, path: object = None
                  ) -> tuple[Labels, str, dict[str, Any]]:
    """Labels from a header's ``Dx``; when it is empty or absent, from the label tables; else none."""
    dx = fields.get("dx", "")
    if dx.strip(" \t,;"):  # separators alone (``#Dx: ,``) say nothing: as empty
        try:
            labels, system = labels_from_dx(dx)
        except ValueError as e:
            raise DataError(path, str(e), record=name) from None
        return labels, f"header_dx_{system}", {}
    found = options.tables.lookup(name)
    if found is not None:
        return found
    return unannotated(), "none", {}
