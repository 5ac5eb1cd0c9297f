"""Ensemble: networks of one architecture trained from different seeds, whose probabilities are averaged.

A deep ensemble (Lakshminarayanan et al., NeurIPS 2017): members that differ only in their random
initialisation and data order agree on data like their training data and disagree where it differs
(e.g. real exams, when trained on synthetic ones), so the average of their probabilities depends less
on the luck of one seed (measured in docs/synthetic-vs-real.md). The module returns logits like any
ecglit network: the logit of the mean probability, so ``sigmoid`` of its output is exactly the members'
mean probability and thresholds, calibration and prediction work unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ecglit.errors import ConfigError

ENSEMBLE_TARGET = "ecglit.models.ensemble.Ensemble"


class Ensemble(nn.Module):
    """Networks with the same inputs and outputs: (B, 12, N) -> logits (B, C), ``logit(mean_i sigmoid(z_i))``,
    computed in log space (finite however confident the members are).

    From a config or a checkpoint it is built by :func:`ecglit.models.registry.build_network` from plain
    values, ``{_target_: ecglit.models.ensemble.Ensemble, member: <registered network>, member_kwargs: {...},
    n_members: 3}``, so its members go through the same allowlist as any network.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 1:
            raise ConfigError("an ensemble needs at least one member")
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([m(x) for m in self.members])  # (M, B, C)
        log_m = math.log(len(self.members))
        log_mean_p = torch.logsumexp(F.logsigmoid(logits), dim=0) - log_m
        log_mean_q = torch.logsumexp(F.logsigmoid(-logits), dim=0) - log_m
        return log_mean_p - log_mean_q
