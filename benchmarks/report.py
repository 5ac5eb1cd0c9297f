"""The results tables of BENCHMARKS.md, rewritten by run.py between their markers (the text around stays).

A full run writes the block between the ``results`` markers, a quick run (``--quick``) its own block between
the ``quick-results`` markers, so a quick check never replaces the published full results."""

from __future__ import annotations

from pathlib import Path

MARKERS = {
    "full": ("<!-- results:start (written by benchmarks/run.py) -->", "<!-- results:end -->"),
    "quick": ("<!-- quick-results:start (written by benchmarks/run.py --quick) -->", "<!-- quick-results:end -->"),
}


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def table(r: dict) -> str:
    m, t, i, d, p, a = r["machine"], r["train"], r["infer"], r["data"], r["peak"], r["achieved"]
    g = r["synthetic"]
    ok = r["targets"]
    lines = [
        (f"Measured {r['started']} with `{r['command']}` ({r['mode']}, {r['minutes']} min; load average "
        f"{r['load_start']} at the start, {r['load_end']} at the end)."),
        (f"Machine: {m.get('cpu', '?')}, {m['cores']} cores ({', '.join(m.get('isa', []))}), "
        f"{m.get('memory_gb', '?')} GB; torch {m['torch']}, lightning {m.get('lightning', '?')}, "
        f"onnxruntime {m.get('onnxruntime', '?')}, h5py {m.get('h5py', '?')}, numpy {m['numpy']}, "
        f"Python {m['python']}."),
        "",
        "| measurement | plain PyTorch | ecglit | ratio | target | met |",
        "|---|---:|---:|---:|---:|:---:|",
    ]
    for k, tr in enumerate(t):
        row = (f"| training, paper net, batch {tr['batch_size']}, {tr['steps']} steps x {len(tr['rounds'])} rounds "
               f"(exams/s) | {tr['plain_exams_per_s']:.1f} | {tr['ecglit_exams_per_s']:.1f} | {tr['speedup']:.2f}x |")
        lines.append(row + (f" >= 1.5x | {_yes(ok['train_speedup>=1.5'])} |" if k == 0 else " | |"))
    lines += [
        (f"| inference, predict path, {i['exams']} exams x {len(i['rounds'])} rounds (exams/s) | "
        f"{i['plain_exams_per_s']:.1f} | {i['ecglit_exams_per_s']:.1f} | {i['speedup']:.2f}x | >= 4x | "
        f"{_yes(ok['infer_speedup>=4'])} |"),
        (f"| inference accuracy vs eager fp32 ({i['rounds'][0]['check_exams']} exams): max abs prob diff, "
        f"label agreement | | {r['infer_max_abs_prob_diff']:.1e}, {100 * r['infer_label_agreement']:.2f}% | | "
        f"<= 1e-2, >= 99.9% | {_yes(ok['infer_prob_diff<=1e-2'] and ok['infer_labels>=99.9%'])} |"),
        (f"| data pipeline, {max(d['sizes'])} exams on disk, best num_workers (exams/s) vs ecglit training | "
        f"{t[0]['ecglit_exams_per_s']:.1f} (training) | {d['best_datamodule_exams_per_s']:.0f} | "
        f"{r['data_over_train']:.0f}x | >= 10x | {_yes(ok['data_over_train>=10'])} |"),
    ]
    for n, rates in d["throughput"].items():
        cells = ", ".join(f"{k.replace('datamodule_workers', 'workers=')} {v:.0f}" for k, v in rates.items())
        lines.append(f"| data pipeline, {n} exams (exams/s) | | {cells} | | | |")
    rss = ", ".join(f"{int(n) // 1000}k: {v:.0f}" for n, v in d["rss_mb"].items())
    pss = ", ".join(f"{int(n) // 1000}k: {v['pss_total_mb']:.0f}" for n, v in d["memory"].items())
    lines += [
        (f"| peak RSS of the training-side process (MB) | | {rss} | spread {100 * d['rss_spread']:.1f}% | "
        f"+-10% | {_yes(ok['rss_within_10pct'])} |"),
        f"| PSS of process + 2 loader workers (MB) | | {pss} | spread {100 * d['pss_spread']:.1f}% | | |",
        f"| synthetic generation, 1 process (exams/s) | | {g['generation']['exams_per_s']:.0f} | | | |",
        (f"| synthetic materialise to shards, {g['cores']} workers (exams/s) | | "
        f"{g['materialise_all_cores']['exams_per_s']:.0f} | | | |"),
        (f"| matmul peak fp32 / bf16 (GFLOP/s) | | {p['fp32_peak_gflop_per_s']:.0f} / {p['bf16_peak_gflop_per_s']:.0f}"
        f" | | | |"),
        (f"| achieved, training (GFLOP/s, 3 x {a['gflop_per_exam_forward']} per exam) | "
        f"{a['train_plain_gflop_per_s']:.0f} ({100 * a['train_plain_of_fp32_peak']:.0f}% of fp32 peak) | "
        f"{a['train_ecglit_gflop_per_s']:.0f} ({100 * a['train_ecglit_of_bf16_peak']:.0f}% of bf16 peak) | | | |"),
        (f"| achieved, inference (GFLOP/s) | {a['infer_plain_gflop_per_s']:.0f} "
        f"({100 * a['infer_plain_of_fp32_peak']:.0f}% of fp32 peak) | {a['infer_ecglit_gflop_per_s']:.0f} "
        f"({100 * a['infer_ecglit_of_bf16_peak']:.0f}% of bf16 peak) | | | |"),
        "",
        "Per round (ABAB):",
        "",
    ]
    for tr in t:
        lines.append(f"- training batch {tr['batch_size']}: " + "; ".join(
            f"{x['plain_exams_per_s']:.1f} vs {x['ecglit_exams_per_s']:.1f} ({x['ratio']:.2f}x, other jobs busy "
            f"{x.get('busy_cores_at_start', float('nan')):.1f} cores at the start)" for x in tr["rounds"]))
    lines.append("- inference: " + "; ".join(
        f"{x['plain_exams_per_s']:.1f} vs {x['ecglit_exams_per_s']:.1f} ({x['ratio']:.2f}x, {x['backend']} "
        f"{x['precision']}, first batch incl. compile {x['ecglit_first_batch_s']:.0f} s "
        f"({'empty' if k == 0 else 'warm'} cache), other jobs busy {x.get('busy_cores_at_start', float('nan')):.1f} cores)"
        for k, x in enumerate(i["rounds"])))
    lines.append("- minor page faults per training step, plain vs ecglit: " + "; ".join(
        f"batch {tr['batch_size']}: " + ", ".join(f"{x['plain_page_faults_per_step'] / 1e3:.0f}k vs "
                                                  f"{x['ecglit_page_faults_per_step'] / 1e3:.0f}k" for x in tr["rounds"])
        for tr in t))
    if "infer_variants" in r:
        lines += ["", ("Inference backends x precisions (benchmarks/bench_backends.py, one process, batch 64, BatchNorm "
                  "statistics set on synthetic exams):"), "",
                  "| backend:precision | exams/s | vs eager fp32 | setup (s) | max abs prob diff |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {k} | {v['exams_per_s']:.1f} | {v['vs_eager_fp32']:.2f}x | {v['setup_s']:.0f} | "
                  f"{v['max_abs_prob_diff']:.1e} |" for k, v in r["infer_variants"].items()]
    if "infer_bound" in r:
        lines += ["", bound_lines(r["infer_bound"])]
    return "\n".join(lines)


def bound_lines(b: dict) -> str:
    """What bounds inference (benchmarks/bench_bound.py): convolutions alone, and int8."""
    c = b["convs"]
    text = (f"What bounds inference (benchmarks/bench_bound.py, batch {c['batch_size']}): the network's convolutions "
            f"timed alone take {100 * c['conv_share_of_eager_fp32']:.0f}% of the eager float32 forward "
            f"({c['eager_fp32_exams_per_s']:.1f} exams/s); run as ecglit's bf16 path runs them, with nothing else, "
            f"they allow at most {c['bf16_convs_only_exams_per_s']:.1f} exams/s = "
            f"**{c['bf16_conv_bound_speedup']:.2f}x** eager float32 (every convolution in bf16: "
            f"{c['all_bf16_conv_bound_speedup']:.2f}x). Per convolution (GFLOP/s, fp32 / bf16): "
            + ", ".join(f"{x['name']} {x['fp32_gflop_per_s']:.0f} / {x['bf16_gflop_per_s']:.0f}" for x in c["layers"])
            + ".")
    if "int8" in b:
        q = b["int8"]
        text += (f" int8 (ONNX Runtime, static per-channel QDQ): {q['onnx_int8_exams_per_s']:.1f} exams/s = "
                 f"{q['int8_speedup']:.2f}x, but max abs prob diff {q['int8_max_abs_prob_diff']:.1e} (int8 weights alone "
                 f"{q['int8_weights_only_max_abs_prob_diff']:.1e}, 8-bit activations alone "
                 f"{q['int8_activations_only_max_abs_prob_diff']:.1e})")
        if "one_layer_int8_max_abs_prob_diff" in q:
            worst = max(q["one_layer_int8_max_abs_prob_diff"].values())
            best = min(q["one_layer_int8_max_abs_prob_diff"].values())
            text += f"; one convolution alone in int8 already moves probabilities by {best:.1e} to {worst:.1e}"
        text += "."
    return text


def write_markdown(results: dict, path: Path, mode: str = "full") -> None:
    start, end = MARKERS[mode]
    title = "" if mode == "full" else "Quick run (smaller sizes; the full results above are the published ones):\n\n"
    block = f"{start}\n{title}{table(results)}\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
