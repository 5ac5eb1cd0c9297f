"""Evaluate a model: `python evaluate.py report=ribeiro2020` (the paper's Table 2), `ckpt_path=... data=...`
(a checkpoint on a dataset) or `report.predictions=[...] report.labels=...` (prediction files).
The same as `ecglit-evaluate`."""

from ecglit.cli import evaluate

if __name__ == "__main__":
    evaluate("evaluate.py")
