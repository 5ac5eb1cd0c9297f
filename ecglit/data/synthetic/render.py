"""Rendering: Gaussian waves -> heart vector (batched, local windows + bincount) -> leads in 1e-4 V.

Arrays are lead-major, (B, channels, N), so every elementwise pass is contiguous; the final matmul
that derives the 12 leads also writes the stored time-major layout (B, N, 12).
Only I, II and V1..V6 are projected (Dower matrix); III, aVR, aVL and aVF are derived from I and II
in 1e-4 V, each a sum of at most two exact terms rounded once, so Einthoven and Goldberger hold to
float32 rounding on every stored record. Arithmetic that mixes exams is elementwise, a bincount
within each exam's own bins, or a matmul whose per-exam shape never depends on the batch, so an
exam rendered in a batch is bit-identical to the same exam rendered alone.
"""

from __future__ import annotations

import numpy as np

from ecglit.constants import N_SAMPLES, SAMPLE_RATE, UNITS_PER_MV
from ecglit.data.synthetic.morphology import Waves

# Dower et al. (Clin Cardiol 1980) VCG -> lead coefficients; rows I, II, V1..V6, columns X, Y, Z.
DOWER = np.array([
    [0.632, -0.235, 0.059],
    [0.235, 1.066, -0.132],
    [-0.515, 0.157, -0.917],
    [0.044, 0.164, -1.387],
    [0.882, 0.098, -1.277],
    [1.213, 0.127, -0.601],
    [1.125, 0.127, -0.086],
    [0.831, 0.076, 0.230],
])
DOWER_UNITS = (DOWER * UNITS_PER_MV).astype(np.float32)  # mV heart vector -> 1e-4 V leads

# (8, 12): I, II, V1..V6 -> the 12 leads. Every derived lead has at most two non-zero, exactly
# representable coefficients (+-1, +-1/2): III = II - I, aVR = -(I + II)/2, aVL = I - II/2,
# aVF = II - I/2, so a matmul rounds each once, exactly like the elementwise formulas.
LEADS_FROM_INDEPENDENT = np.zeros((8, 12), np.float32)
LEADS_FROM_INDEPENDENT[0, [0, 2, 3, 4, 5]] = [1.0, -1.0, -0.5, 1.0, -0.5]
LEADS_FROM_INDEPENDENT[1, [1, 2, 3, 4, 5]] = [1.0, 1.0, -0.5, -0.5, 1.0]
for _k in range(6):
    LEADS_FROM_INDEPENDENT[2 + _k, 6 + _k] = 1.0
WINDOW_SIGMAS = 4.0  # exp(-8) = 3e-4 of the peak is dropped at the window edge
# Gaussians are evaluated on local windows; width groups keep the windows short for narrow waves.
SIGMA_GROUPS_S = (0.004, 0.007, 0.011, 0.016, 0.024, 0.036, 0.052, 0.075)


def render_vcg(waves: list[Waves], pads: list[int]) -> np.ndarray:
    """Heart vectors (B, 3, N) float32 in mV over each exam's 4096-sample frame.

    Windows are clipped to the exam's frame; what falls on the frame edges lies in the padding,
    which :func:`assemble` sets to zero.
    """
    n_exams = len(waves)
    # Positions are kept local to each exam's frame (adding b * N to a float would change rounding).
    centre = np.concatenate([w.tau * SAMPLE_RATE + pads[b] for b, w in enumerate(waves)])
    sigma = np.concatenate([w.sigma * SAMPLE_RATE for w in waves]).astype(np.float32)
    vec = np.concatenate([w.vec for w in waves]).astype(np.float32)
    offset = np.concatenate([np.full(len(w.tau), b * N_SAMPLES) for b, w in enumerate(waves)])
    group = np.searchsorted(np.array(SIGMA_GROUPS_S) * SAMPLE_RATE, sigma)
    if group.max(initial=0) >= len(SIGMA_GROUPS_S):
        raise ValueError(f"wave width {sigma.max() / SAMPLE_RATE:.3f} s exceeds the renderer's widest window")
    targets: list[np.ndarray] = []
    weights: list[list[np.ndarray]] = [[], [], []]
    for g, sigma_max in enumerate(SIGMA_GROUPS_S):
        sel = group == g
        if not sel.any():
            continue
        half = int(np.ceil(WINDOW_SIGMAS * sigma_max * SAMPLE_RATE))
        start = np.floor(centre[sel]).astype(np.int64)
        frac = (centre[sel] - start).astype(np.float32)
        z = (np.arange(-half, half + 1, dtype=np.float32)[None, :] - frac[:, None]) / sigma[sel, None]
        kernel = np.exp(np.float32(-0.5) * z * z)
        idx = np.clip(start[:, None] + np.arange(-half, half + 1)[None, :], 0, N_SAMPLES - 1)
        targets.append((idx + offset[sel, None]).ravel())
        for axis in range(3):
            weights[axis].append((kernel * vec[sel, axis, None]).ravel())
    target = np.concatenate(targets)
    out = np.empty((n_exams, 3, N_SAMPLES), np.float32)
    for axis in range(3):
        acc = np.bincount(target, np.concatenate(weights[axis]), minlength=n_exams * N_SAMPLES)
        out[:, axis] = acc.reshape(n_exams, N_SAMPLES)
    return out


def project(vcg: np.ndarray) -> np.ndarray:
    """(B, 3, N) heart vector in mV -> (B, 8, N) float32 leads I, II, V1..V6 in 1e-4 V."""
    return np.matmul(DOWER_UNITS, vcg)


def assemble(leads8: np.ndarray, pads: list[int], lengths: list[int]) -> np.ndarray:
    """(B, 8, N) in 1e-4 V -> (B, N, 12) float32 with derived limb leads and exactly-zero padding.

    The transposition to the stored time-major layout happens inside the matmul (BLAS reads the
    lead-major input as a transposed matrix)."""
    out = np.matmul(leads8.transpose(0, 2, 1), LEADS_FROM_INDEPENDENT)
    for b, (pad, length) in enumerate(zip(pads, lengths)):
        out[b, :pad] = 0.0
        out[b, pad + length:] = 0.0
    return out
