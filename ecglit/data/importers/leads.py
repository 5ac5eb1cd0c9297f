"""Map a source's lead names onto the 12 CODE leads, deriving missing limb leads from DI and DII.

Names are matched case-insensitively after dropping spaces, ``-``, ``_`` and a ``lead`` prefix, so
``I``, ``i``, ``DI``, ``lead_i``, ``Lead I`` all mean DI and ``AVR``, ``aVR``, ``avr`` mean aVR. Leads
that are not among the 12 (Frank vx/vy/vz, a rhythm strip, ...) are dropped and reported.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ecglit.constants import LEADS
from ecglit.errors import DataError

_ALIASES: dict[str, str] = {}
for _canonical, _names in {
    "DI": ("i", "di", "1", "l1"),
    "DII": ("ii", "dii", "2", "l2"),
    "DIII": ("iii", "diii", "3", "l3"),
    "aVR": ("avr",),
    "aVL": ("avl",),
    "aVF": ("avf",),
    **{f"V{k}": (f"v{k}", f"c{k}") for k in range(1, 7)},
}.items():
    for _name in _names:
        _ALIASES[_name] = _canonical

# The limb leads are linear in DI and DII (Einthoven and Goldberger): how to derive each when missing.
_DERIVED = {
    "DIII": lambda i, ii: ii - i,
    "aVR": lambda i, ii: -(i + ii) / 2.0,
    "aVL": lambda i, ii: i - ii / 2.0,
    "aVF": lambda i, ii: ii - i / 2.0,
}


def canonical_lead(name: str) -> str | None:
    """The CODE lead a source name stands for, or None if it is not one of the 12."""
    key = re.sub(r"[\s\-_]", "", str(name).strip().lower())
    key = key.removeprefix("lead")
    return _ALIASES.get(key)


def to_code_leads(signal: np.ndarray, lead_names: Sequence[str], *, path: object = None,
                  record: str | None = None) -> tuple[np.ndarray, list[str], list[str]]:
    """Reorder ``signal`` (n, L) to the 12 CODE leads.

    Returns ``(signal (n, 12), derived, dropped)``: the limb leads computed from DI and DII, and the
    source leads that were not used. Raises DataError when a lead is missing and cannot be derived,
    or when two source leads map to the same CODE lead.
    """
    if signal.ndim != 2 or signal.shape[1] != len(lead_names):
        raise DataError(path, f"signal has shape {signal.shape} but {len(lead_names)} lead names were given",
                        record=record)
    column: dict[str, int] = {}
    dropped: list[str] = []
    for k, name in enumerate(lead_names):
        lead = canonical_lead(name)
        if lead is None:
            dropped.append(str(name))
        elif lead in column:
            raise DataError(path, f"leads {lead_names[column[lead]]!r} and {name!r} both map to {lead}",
                            record=record)
        else:
            column[lead] = k
    out = np.empty((signal.shape[0], len(LEADS)), dtype=np.float64)
    derived: list[str] = []
    missing: list[str] = []
    for j, lead in enumerate(LEADS):
        if lead in column:
            out[:, j] = signal[:, column[lead]]
        elif lead in _DERIVED and "DI" in column and "DII" in column:
            out[:, j] = _DERIVED[lead](signal[:, column["DI"]], signal[:, column["DII"]])
            derived.append(lead)
        else:
            missing.append(lead)
    if missing:
        why = ("; limb leads can be derived only when both DI and DII are present"
               if set(missing) & set(_DERIVED) else "")
        raise DataError(path, f"missing lead(s) {', '.join(missing)} that cannot be derived (found "
                              f"{', '.join(map(str, lead_names))}){why}", record=record)
    return out, derived, dropped
