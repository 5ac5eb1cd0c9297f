"""Hydra multiruns, Optuna searches and W&B sweeps: grouping of runs and the summary of a sweep directory.

- :mod:`ecglit.sweeps.summarize`: ``python -m ecglit.sweeps.summarize MULTIRUN_DIR`` -> one table (CSV and
  markdown) with a row per job and a plot of a metric against every swept parameter.
- :mod:`ecglit.sweeps.wandb_group`: in a multirun, every job's W&B run is grouped by its sweep.
"""
