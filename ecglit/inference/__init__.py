"""Prediction with trained classifiers: Predictor (batched, pluggable backend) and input streaming."""

from ecglit.inference.backends import BACKENDS, make_backend
from ecglit.inference.predictor import Predictor
from ecglit.data.sources import ExamBatch, PredictionSource, open_source

__all__ = ["BACKENDS", "ExamBatch", "PredictionSource", "Predictor", "make_backend", "open_source"]
