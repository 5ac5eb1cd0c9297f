"""Evaluation: threshold selection, metrics and reports (the paper's Table 2 and beyond)."""
