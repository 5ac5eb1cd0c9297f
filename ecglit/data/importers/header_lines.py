"""The record and signal lines of a WFDB-style header (``.hea``), checked field by field.

One set of rules for the WFDB and CinC importers. ``wfdb`` itself is lenient where guessing is harmful:
a sampling frequency it cannot read becomes 250 Hz and a gain it cannot read, or a gain of 0
("uncalibrated"), becomes 200 adu/mV. Here every such field is a :class:`DataError` naming the header,
the line and the value:

- record line ``name[/segments] n_signals fs[/counter[(base)]] [n_samples [time [date]]]``: ``n_signals``
  a whole number >= 1, ``fs`` a positive finite number (required: never assumed), ``n_samples`` a whole
  number >= 0 when given (0: not stated); multi-segment records are refused;
- exactly ``n_signals`` signal lines ``file format [gain[(baseline)][/units] [adc_res [adc_zero [init
  [checksum [block_size]]]]] [description]]``, each with a WFDB format and, when given, a readable gain.
  A gain that is absent, 0, negative or not finite is returned as None: :func:`usable_gains` refuses it
  unless a ``gain_override`` states the record's gain.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ecglit.errors import DataError

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_FS = re.compile(rf"^(?P<fs>{_NUMBER})(?:/{_NUMBER}(?:\(-?{_NUMBER}\))?)?$")
_FORMAT = re.compile(r"^\d+(?:x\d+)?(?::\d+)?(?:\+\d+)?$")
_GAIN = re.compile(rf"^(?P<gain>{_NUMBER})(?:\((?P<baseline>[-+]?\d+)\))?(?:/(?P<units>\S+))?$")
_INT = re.compile(r"^[-+]?\d+$")
_N_INT_FIELDS = 5  # adc_res, adc_zero, init_value, checksum, block_size: then the description


@dataclass
class SignalLine:
    file: str
    format: str
    gain: float | None  # None: absent, 0 (uncalibrated), negative or not finite (see ``gain_text``)
    gain_text: str | None
    baseline: int | None
    units: str | None
    adc_zero: int | None
    description: str


@dataclass
class HeaderLines:
    record: str
    n_sig: int
    fs: float
    n_samples: int | None
    signals: list[SignalLine]
    comments: list[str] = field(default_factory=list)

    @property
    def gains(self) -> list[float | None]:
        return [s.gain for s in self.signals]


def _number(token: str) -> float | None:
    return float(token) if re.fullmatch(_NUMBER, token) else None


def _record_line(line: str, path: Path, record: str | None) -> tuple[str, int, float, int | None]:
    tokens = line.split()
    if len(tokens) < 2:
        raise DataError(path, f"record line {line!r} has no signal count (expected 'name n_signals fs "
                              "[n_samples]')", record=record)
    name, segments = tokens[0].partition("/")[::2]
    if segments:
        raise DataError(path, f"multi-segment WFDB records are not supported (record line {line!r})",
                        record=record)
    if not _INT.match(tokens[1]) or int(tokens[1]) < 1:
        raise DataError(path, f"number of signals {tokens[1]!r} on the record line is not a whole number >= 1",
                        record=record)
    if len(tokens) < 3:
        raise DataError(path, f"record line {line!r} gives no sampling frequency (WFDB would assume 250 Hz; "
                              "ecglit does not guess it)", record=record)
    m = _FS.match(tokens[2])
    fs = float(m.group("fs")) if m else math.nan
    if not (math.isfinite(fs) and fs > 0):
        raise DataError(path, f"sampling frequency {tokens[2]!r} on the record line is not a positive number "
                              "of Hz", record=record)
    n_samples = None
    if len(tokens) > 3:
        if not _INT.match(tokens[3]) or int(tokens[3]) < 0:
            raise DataError(path, f"number of samples {tokens[3]!r} on the record line is not a whole number "
                                  ">= 0", record=record)
        n_samples = int(tokens[3]) or None  # WFDB: 0 means "not stated"
    return name, int(tokens[1]), fs, n_samples


def _signal_line(line: str, k: int, path: Path, record: str | None) -> SignalLine:
    tokens = line.split()
    if len(tokens) < 2 or not _FORMAT.match(tokens[1]):
        fmt = tokens[1] if len(tokens) > 1 else "none"
        raise DataError(path, f"signal line {k + 1} ({line!r}) has no WFDB storage format (got {fmt!r})",
                        record=record)
    gain = baseline = units = gain_text = None
    rest = tokens[2:]
    if rest:
        gain_text = rest.pop(0)
        m = _GAIN.match(gain_text)
        if m is None:
            raise DataError(path, f"signal line {k + 1} ({line!r}): gain {gain_text!r} is not a number "
                                  "(expected e.g. 1000/mV or 200(0)/mV)", record=record)
        value = float(m.group("gain"))
        gain = value if math.isfinite(value) and value > 0 else None
        baseline = int(m.group("baseline")) if m.group("baseline") is not None else None
        units = m.group("units")
    numbers: list[int] = []
    while rest and len(numbers) < _N_INT_FIELDS and _INT.match(rest[0]):
        numbers.append(int(rest.pop(0)))
    adc_zero = numbers[1] if len(numbers) > 1 else None
    return SignalLine(tokens[0], tokens[1], gain, gain_text, baseline, units, adc_zero, " ".join(rest))


def parse_header_lines(text: str, path: str | Path, record: str | None = None) -> HeaderLines:
    """Check and split the lines of a header (see the module docstring); DataError on the first bad field."""
    path = Path(path)
    lines = [ln.strip() for ln in text.splitlines()]
    comments = [ln for ln in lines if ln.startswith("#")]
    body = [ln for ln in lines if ln and not ln.startswith("#")]
    if not body:
        raise DataError(path, "empty header (no record line)", record=record)
    name, n_sig, fs, n_samples = _record_line(body[0], path, record)
    if len(body) - 1 != n_sig:
        raise DataError(path, f"record line announces {n_sig} signal(s) but {len(body) - 1} signal line(s) "
                              "follow", record=record)
    signals = [_signal_line(line, k, path, record) for k, line in enumerate(body[1:])]
    return HeaderLines(name, n_sig, fs, n_samples, signals, comments)


def read_header_lines(path: str | Path, record: str | None = None) -> tuple[str, HeaderLines]:
    """(text, parsed lines) of the header file ``path``."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as e:
        raise DataError(path, f"cannot read header ({e.strerror or e})", record=record) from None
    if "\x00" in text:
        raise DataError(path, "not a text header (holds NUL bytes)", record=record)
    return text, parse_header_lines(text, path, record)


def usable_gains(header: HeaderLines, override: float | None, path: str | Path, record: str | None = None
                 ) -> np.ndarray:
    """Per-signal gains (adu per unit): the override when given, else the header's, each positive."""
    if override is not None:
        return np.full(len(header.signals), float(override))
    bad = [f"{s.description or f'signal {k + 1}'} ({s.gain_text or 'no gain'})"
           for k, s in enumerate(header.signals) if s.gain is None]
    if bad:
        raise DataError(path, f"gain of {len(bad)} signal(s) is absent, 0 (uncalibrated), negative or not "
                              f"finite: {', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''}; set "
                              "gain_override for this record (adu per mV)", record=record)
    return np.array(header.gains, dtype=np.float64)
