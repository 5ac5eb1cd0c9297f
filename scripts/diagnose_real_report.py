"""Tables of scripts/diagnose_real.py: delineator validation, per-class comparison, misses, per source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ecglit.constants import CLASSES

CLASS_FEATURES: dict[str, list[str]] = {
    "1dAVb": ["ecglit_pr_ms", "nk_p_to_r_ms", "p_amp_II", "p_corr_II", "hr_bpm", "ecglit_qrs_ms"],
    "RBBB": ["ecglit_qrs_ms", "v1_late_max", "r_V1", "s_V1", "i_late_min", "v6_late_min", "t_V1", "t_V2",
             "frontal_axis_deg", "hr_bpm"],
    "LBBB": ["ecglit_qrs_ms", "r_V6", "r_DI", "s_V1", "s_V2", "t_V6", "t_DI", "t_V1", "frontal_axis_deg",
             "ecglit_pr_ms"],
    "SB": ["hr_bpm", "ecglit_hr_bpm", "rr_irregularity", "p_corr_II", "p_amp_II", "ecglit_pr_ms"],
    "AF": ["rr_irregularity", "rr_cv", "p_corr_II", "ecglit_p_consistency", "p_amp_II", "f_rms_uv_V1",
           "f_rms_uv_DII", "f_rms_uv_DI", "f_peak_hz_V1", "f_concentration_V1", "hr_bpm", "ecglit_qrs_ms"],
    "ST": ["hr_bpm", "p_corr_II", "p_amp_II", "ecglit_pr_ms", "rr_irregularity", "t_DII", "ecglit_qrs_ms"],
}
COMMON_FEATURES = ["hf_noise_uv", "baseline_wander_mv", "power_above_40hz_frac", "powerline_50_db",
                   "powerline_60_db", "ptp_DII", "ptp_V2", "ptp_V5"]
# features in volts: records whose scale is a guess (CinC 2020 Georgia copies) are left out of them
AMPLITUDE_PREFIXES = ("r_", "s_", "t_", "ptp_", "v1_late", "i_late", "v6_late", "p_amp", "f_rms", "hf_noise",
                      "baseline_wander")
GROUPS = ("real+ missed", "real+ caught", "real- false pos", "real- true neg", "synthetic+", "synthetic-")
PER_SOURCE_FEATURES = ["ecglit_qrs_ms", "hr_bpm", "rr_irregularity", "p_corr_II", "f_rms_uv_V1",
                       "ecglit_pr_ms"]


def _auroc(pos: pd.Series, neg: pd.Series) -> float:
    """P(pos > neg) (Mann-Whitney); NaN when either side is empty."""
    a, b = pos.dropna(), neg.dropna()
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(stats.mannwhitneyu(a, b).statistic / (len(a) * len(b)))


def _cell(v: pd.Series) -> str:
    v = v.dropna()
    if len(v) == 0:
        return "-"
    q = v.quantile([0.25, 0.5, 0.75]).to_numpy()
    digits = 0 if abs(q[1]) >= 20 else (2 if abs(q[1]) < 2 else 1)
    return f"{q[1]:.{digits}f} [{q[0]:.{digits}f}, {q[2]:.{digits}f}] ({len(v)})"


# ------------------------------------------------------------------ validation on synthetic exams
def _interval_rows(syn: pd.DataFrame, name: str, truth: str, measured: list[str], mask: pd.Series,
                   tolerance: float, unit: str) -> list[dict]:
    rows = []
    for m in measured:
        err = (syn.loc[mask, m] - syn.loc[mask, truth]).dropna()
        rho = syn.loc[mask, [m, truth]].corr(method="spearman").iloc[0, 1]
        within = float((err.abs() <= tolerance).mean())
        rows.append({"quantity": name, "measurement": m, "n": len(err), "bias": err.median(),
                     "median_abs_error": err.abs().median(), "p90_abs_error": err.abs().quantile(0.9),
                     f"share_within": within, "tolerance": f"{tolerance:g} {unit}", "spearman": rho,
                     "holds": bool(within >= 0.8 and rho >= 0.7)})
    return rows


def validation(syn: pd.DataFrame) -> pd.DataFrame:
    """Each measurement against what the generator realised (meta), with a holds/does-not-hold verdict."""
    no_ectopy = ~(syn["meta_has_pac"].astype(bool) | syn["meta_has_pvc"].astype(bool))
    sinus = syn["meta_rhythm"] == "sinus"
    rows = _interval_rows(syn, "heart rate (exams without ectopic beats)", "meta_hr_bpm",
                          ["hr_bpm", "hr_xqrs", "hr_nk", "hr_gqrs", "ecglit_hr_bpm"], no_ectopy, 5, "bpm")
    rows += _interval_rows(syn, "PR (sinus)", "meta_pr_ms", ["nk_p_to_r_ms", "ecglit_pr_ms"], sinus, 20, "ms")
    rows += _interval_rows(syn, "QRS duration", "meta_qrs_ms", ["nk_q_to_s_ms", "ecglit_qrs_ms"],
                           syn["meta_qrs_ms"].notna(), 15, "ms")
    wide = syn["meta_qrs_ms"] >= 120
    for r in rows[-2:]:
        r["auroc_qrs_ge_120"] = _auroc(syn.loc[wide, r["measurement"]], syn.loc[~wide, r["measurement"]])
    visible = (syn["meta_rhythm"] == "af") & (syn["meta_af_amp_mv"] * syn["meta_gain"] >= 0.05)
    rows += _interval_rows(syn, "f-wave frequency (AF, f amplitude >= 0.05 mV)", "meta_af_f0_hz",
                           ["f_peak_hz_V1"], visible, 1.0, "Hz")
    af = syn["meta_rhythm"] == "af"
    syn = syn.assign(meta_f_amp=syn["meta_af_amp_mv"] * syn["meta_gain"],
                     meta_p_amp=syn["meta_p_amp_mv"] * syn["meta_gain"])
    every = pd.Series(True, index=syn.index)
    for name, m, truth, mask in (("f-wave amplitude (AF)", "f_rms_uv_V1", "meta_f_amp", af),
                                 ("P amplitude (sinus)", "p_amp_II", "meta_p_amp", sinus),
                                 ("noise level", "hf_noise_uv", "meta_noise_level", every),
                                 ("noise level", "baseline_wander_mv", "meta_noise_level", every)):
        rho = syn.loc[mask, [m, truth]].corr(method="spearman").iloc[0, 1]
        rows.append({"quantity": name, "measurement": m, "n": int(mask.sum()), "spearman": rho,
                     "holds": bool(rho >= 0.7)})
    for m in ("rr_irregularity", "rr_cv", "p_corr_II", "ecglit_p_consistency", "f_rms_uv_V1",
              "f_concentration_V1", "p_amp_II"):
        a = _auroc(syn.loc[af, m], syn.loc[~af, m])
        rows.append({"quantity": "AF vs not AF", "measurement": m, "n": len(syn), "auroc_af": a,
                     "holds": bool(max(a, 1 - a) >= 0.9)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ real vs synthetic, per class
def group_masks(df: pd.DataFrame, cls: str, synthetic: bool) -> dict[str, pd.Series]:
    truth = df[f"true_{cls}"]
    if synthetic:
        return {"synthetic+": truth == 1, "synthetic-": truth == 0}
    said = df[f"label_{cls}"] == 1
    return {"real+ missed": (truth == 1) & ~said, "real+ caught": (truth == 1) & said,
            "real- false pos": (truth == 0) & said, "real- true neg": (truth == 0) & ~said}


def comparison(real: pd.DataFrame, syn: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for cls, features in CLASS_FEATURES.items():
        masks = {**group_masks(real, cls, False), **group_masks(syn, cls, True)}
        for f in features + COMMON_FEATURES:
            trusted = ~real["scale_uncertain"] if f.startswith(AMPLITUDE_PREFIXES) else real["id"].notna()
            row = {"class": cls, "feature": f}
            for g in GROUPS:
                values = (syn if g.startswith("synthetic") else real[trusted]).loc[
                    masks[g] if g.startswith("synthetic") else masks[g][trusted], f]
                row[g] = _cell(values)
                row[f"median {g}"] = values.median()
            pos, neg = real[trusted & (real[f"true_{cls}"] == 1)], real[trusted & (real[f"true_{cls}"] == 0)]
            row["auroc real+ vs real-"] = _auroc(pos[f], neg[f])
            row["auroc synthetic+ vs synthetic-"] = _auroc(syn.loc[syn[f"true_{cls}"] == 1, f],
                                                           syn.loc[syn[f"true_{cls}"] == 0, f])
            rows.append(row)
    return pd.DataFrame(rows)


def errors_table(real: pd.DataFrame) -> pd.DataFrame:
    """The real records the model got wrong (thresholded labels), per class, with their features."""
    rows = []
    for cls, features in CLASS_FEATURES.items():
        masks = group_masks(real, cls, False)
        for kind, ascending in (("real+ missed", True), ("real- false pos", False)):
            part = real[masks[kind]].sort_values(f"prob_{cls}", ascending=ascending)
            for _, r in part.iterrows():
                rows.append({"class": cls, "error": kind, "record": r["record"], "origin": r["origin_group"],
                             "prob": r[f"prob_{cls}"], "diagnoses": r["diagnoses"],
                             "duplicate_of": r["duplicate_of"], "scale_uncertain": r["scale_uncertain"],
                             **{f: r[f] for f in features}, "hf_noise_uv": r["hf_noise_uv"],
                             "baseline_wander_mv": r["baseline_wander_mv"], "id": r["id"]})
    return pd.DataFrame(rows)


def per_source(real: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for cls in CLASSES:
        for src, part in real.groupby("origin_group"):
            pos = part[part[f"true_{cls}"] == 1]
            neg = part[part[f"true_{cls}"] == 0]
            if len(pos) + len(neg) == 0:
                continue
            row = {"class": cls, "source": src, "positives": len(pos),
                   "missed": int((pos[f"label_{cls}"] == 0).sum()), "negatives": len(neg),
                   "false_pos": int((neg[f"label_{cls}"] == 1).sum()),
                   "median_prob_positives": pos[f"prob_{cls}"].median(),
                   "positives_qrs_lt_120": int((pos["ecglit_qrs_ms"] < 120).sum())}
            row.update({f"positives {f}": pos[f].median() for f in PER_SOURCE_FEATURES})
            rows.append(row)
    return pd.DataFrame(rows)


def _md(df: pd.DataFrame, floatfmt: str = ".3g") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        cells = [format(v, floatfmt) if isinstance(v, float) and np.isfinite(v)
                 else ("" if isinstance(v, float) else str(v)) for v in r]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(real: pd.DataFrame, syn: pd.DataFrame, out: Path,
                 probes: pd.DataFrame | None = None) -> Path:
    val, comp, errs, src = validation(syn), comparison(real, syn), errors_table(real), per_source(real)
    val.to_csv(out / "validation.csv", index=False)
    comp.to_csv(out / "comparison.csv", index=False)
    errs.to_csv(out / "missed_and_false_positives.csv", index=False)
    src.to_csv(out / "per_source.csv", index=False)
    lines = [f"# Real vs synthetic, measured (generator v{syn.attrs.get('generator_version')}, seed "
             f"{syn.attrs.get('seed')}, {len(syn)} synthetic exams; {len(real)} real exams)", "",
             "## Validation of the measurements on synthetic exams (truth = generator meta)", "",
             _md(val.drop(columns=[c for c in val if val[c].isna().all()])), ""]
    if "prob_AF" in syn:
        aurocs = [_auroc(syn.loc[syn[f"true_{c}"] == 1, f"prob_{c}"],
                         syn.loc[syn[f"true_{c}"] == 0, f"prob_{c}"]) for c in CLASSES]
        lines += ["## The model on these synthetic exams (AUROC per class)", "",
                  "| " + " | ".join(CLASSES) + " |", "|" + "---|" * len(CLASSES),
                  "| " + " | ".join(f"{a:.3f}" for a in aurocs) + " |", ""]
    if probes is not None:
        from diagnose_real_probes import probe_table

        lines += ["## Probes: the real exams re-scored after one change to all of them",
                  "", "Cells: AUROC / positives found at the model's thresholds / false positives.", "",
                  _md(probe_table(probes)), ""]
    for cls in CLASS_FEATURES:
        part = comp[comp["class"] == cls]
        lines += [f"## {cls}", "", "Median [IQR] (n). AUROC columns: how well the feature alone separates "
                  "positives from negatives (real, synthetic).", "",
                  _md(part[["feature", *GROUPS, "auroc real+ vs real-",
                            "auroc synthetic+ vs synthetic-"]]), "",
                  f"### {cls}: errors", "",
                  _md(errs[errs["class"] == cls].drop(columns=["class", "id"]).dropna(axis=1, how="all")), "",
                  f"### {cls}: per source", "", _md(src[src["class"] == cls].drop(columns=["class"])), "",
                  f"![{cls}](figures/{cls}.png)", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines))
    return path
