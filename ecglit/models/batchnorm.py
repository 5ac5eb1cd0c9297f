"""BatchNorm statistics re-estimated on other data: label-free adaptation to a new population.

A network trained on one domain normalises every layer with that domain's running means and variances.
Re-estimating them on exams of the population it will be used on (AdaBN, Li et al., 2016; no labels, no
gradient step, every weight unchanged) removes the part of the domain gap that is a shift of feature
statistics. On the real records of ../shared the shipped synthetic model gains ranking this way
(docs/transfer-realdata.md); a few dozen exams suffice, and they should be a mix like the data to
predict, since the statistics include the share of each abnormality.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from ecglit.errors import DataError


def batchnorm_layers(net: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


Batches = Callable[[], Iterable[torch.Tensor]] | Sequence[torch.Tensor]


@torch.no_grad()
def adapt_batchnorm(net: nn.Module, batches: Batches) -> int:
    """Replace the running statistics of every BatchNorm layer of ``net`` by the mean and (unbiased)
    variance of its inputs over all exams of ``batches`` (network inputs, (B, leads, samples): a sequence,
    or a function returning a fresh iterable, since the exams are read twice); returns the number of exams.

    Two passes. The first runs BatchNorm as in training (each batch normalised by its own statistics) to
    get every layer near its new statistics; the second runs the whole network in eval mode, as it will
    predict, and each layer's statistics become those of the inputs it then receives. Per-batch sums are
    pooled (the law of total variance), so the spread between batches of similar exams is kept, which a
    cumulative average of batch statistics (:func:`torch.optim.swa_utils.update_bn`) misses; the batching
    and order matter only through the first pass's per-batch normalisation (a little). Dropout is off
    throughout. ``net`` is left in eval mode with every weight unchanged; if a pass fails, nothing changes.
    """
    layers = batchnorm_layers(net)
    if not layers:
        raise DataError(None, f"{type(net).__name__} has no BatchNorm layer to adapt")
    saved = [{k: v.clone() for k, v in layer.state_dict().items()} for layer in layers]
    try:
        seen = _pass(net, layers, batches, batchnorm_train=True)
        if seen == 0:
            raise DataError(None, "no exam to adapt the BatchNorm statistics on")
        _pass(net, layers, batches, batchnorm_train=False)
    except BaseException:
        for layer, state in zip(layers, saved):
            layer.load_state_dict(state)
        raise
    finally:
        net.eval()
    return seen


def _pass(net: nn.Module, layers: list[nn.modules.batchnorm._BatchNorm], batches: Batches,
          batchnorm_train: bool) -> int:
    """One pass over the exams; sets every layer's running statistics to the pooled ones of its inputs."""
    sums: dict[int, list] = {id(layer): [0, 0.0, 0.0] for layer in layers}  # count, sum, sum of squares

    def record(layer: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].transpose(0, 1).flatten(1).double()  # (C, B * L)
        acc = sums[id(layer)]
        acc[0] += x.shape[1]
        acc[1] = acc[1] + x.sum(1)
        acc[2] = acc[2] + (x * x).sum(1)

    hooks = [layer.register_forward_pre_hook(record) for layer in layers]
    momenta = [layer.momentum for layer in layers]
    seen = 0
    try:
        net.eval()
        for layer in layers:
            layer.momentum = 0.0  # a training-mode pass must not move the statistics it is measuring
            layer.train(batchnorm_train)
        for x in (batches() if callable(batches) else batches):
            net(x)
            seen += len(x)
    finally:
        for hook in hooks:
            hook.remove()
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        net.eval()
    if seen:
        for layer in layers:
            n, total, squares = sums[id(layer)]
            mean = total / n
            var = (squares / n - mean * mean).clamp(min=0.0) * (n / max(n - 1, 1))
            layer.running_mean.copy_(mean.to(layer.running_mean.dtype))
            layer.running_var.copy_(var.to(layer.running_var.dtype))
            if layer.num_batches_tracked is not None:  # counted by the training-mode pass; means nothing here
                layer.num_batches_tracked.zero_()
    return seen
