"""ecglit.models.batchnorm.adapt_batchnorm: BatchNorm statistics re-estimated on other exams (AdaBN),
checked against the statistics computed by hand; weights untouched; a failed adaptation changes nothing."""

from __future__ import annotations

import pytest
import torch

from ecglit.errors import DataError
from ecglit.models.batchnorm import adapt_batchnorm, batchnorm_layers
from ecglit.models.registry import build_network

TINY_NET = {"_target_": "ecglit.models.resnet.ResNet1d", "stem_filters": 4, "filters": [8], "seq_lengths": [64],
            "kernel_size": 7, "dropout": 0.5}


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(TINY_NET, n_classes=6).eval()


def _x(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    return torch.randn(n, 12, 4096, generator=torch.Generator().manual_seed(seed)) * 3 + shift


def test_the_stem_statistics_are_those_of_the_new_exams_and_weights_do_not_move():
    net = _net()
    weights = {k: v.clone() for k, v in net.named_parameters()}
    x = _x(16, 1, shift=0.5)
    assert adapt_batchnorm(net, [x[:8], x[8:]]) == 16
    conv, bn = net.stem[0], net.stem[1]
    with torch.no_grad():
        out = conv(x)  # (16, C, L): the stem BatchNorm's input, whatever comes after it
    # pooled over all 16 exams, however they were batched
    mean = out.mean((0, 2))
    var = out.transpose(0, 1).flatten(1).var(1, unbiased=True)
    torch.testing.assert_close(bn.running_mean, mean, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var, var, rtol=1e-4, atol=1e-5)
    assert not net.training and not any(layer.training for layer in batchnorm_layers(net))
    assert all(layer.momentum == pytest.approx(0.01) for layer in batchnorm_layers(net))  # put back
    for name, value in net.named_parameters():
        assert torch.equal(value, weights[name]), name


def test_the_statistics_do_not_depend_on_batching_or_order():
    x = _x(12, 6)
    x[6:] += 4.0  # two groups of exams: batches of one group each would miss the spread between them
    a, b = _net(), _net()
    adapt_batchnorm(a, [x[:6], x[6:]])
    adapt_batchnorm(b, lambda: iter([x[[0, 6, 1, 7]], x[[2, 8, 3, 9, 4, 10]], x[[5, 11]]]))
    buffers_b = dict(b.named_buffers())
    for name, value in a.named_buffers():
        if name.startswith("stem."):  # the first layer's inputs do not depend on any statistics: exact
            torch.testing.assert_close(value, buffers_b[name], rtol=1e-5, atol=1e-5, msg=name)
        elif name.endswith(("running_mean", "running_var")):  # deeper: through the first pass, close
            torch.testing.assert_close(value, buffers_b[name], rtol=0.02, atol=0.02, msg=name)


def test_the_second_pass_gives_the_statistics_the_network_meets_at_prediction():
    """After adapting, each layer's statistics are those of its inputs when the whole network runs in eval
    mode on the same exams (up to the change of its upstream layers by the second pass itself)."""
    net = _net()
    x = _x(10, 8, shift=1.0)
    adapt_batchnorm(net, [x[:5], x[5:]])
    inputs = {}
    hooks = [layer.register_forward_pre_hook(lambda m, i, key=k: inputs.__setitem__(key, i[0]))
             for k, layer in enumerate(batchnorm_layers(net))]
    with torch.no_grad():
        net(x)
    for hook in hooks:
        hook.remove()
    first = batchnorm_layers(net)[0]
    torch.testing.assert_close(first.running_mean, inputs[0].mean((0, 2)), rtol=1e-4, atol=1e-5)
    for k, layer in enumerate(batchnorm_layers(net)):
        seen = inputs[k].transpose(0, 1).flatten(1)
        torch.testing.assert_close(layer.running_mean, seen.mean(1), rtol=0.05, atol=0.05)
        torch.testing.assert_close(layer.running_var, seen.var(1), rtol=0.1, atol=0.05)


def test_dropout_is_off_while_adapting_so_the_statistics_do_not_depend_on_chance():
    x = _x(8, 2)
    a, b = _net(), _net()
    torch.manual_seed(1)
    adapt_batchnorm(a, [x])
    torch.manual_seed(2)
    adapt_batchnorm(b, [x])
    for (name, u), v in zip(a.named_buffers(), b.buffers()):
        assert torch.equal(u, v), name


def test_the_adapted_network_predicts_otherwise_and_a_second_adaptation_replaces_the_first():
    net = _net()
    x_new = _x(8, 3, shift=2.0)
    with torch.no_grad():
        before = net(x_new)
        adapt_batchnorm(net, [_x(8, 4)])
        once = {k: v.clone() for k, v in net.named_buffers()}
        adapt_batchnorm(net, [x_new])
        adapt_batchnorm(net, [_x(8, 4)])  # statistics are re-estimated from scratch, not accumulated
        after = net(x_new)
    for name, value in net.named_buffers():
        assert torch.equal(value, once[name]), name
    assert (after - before).abs().max() > 1e-3


@pytest.mark.parametrize("failure", ["empty", "raises"])
def test_a_failed_adaptation_leaves_the_network_as_it_was(failure):
    net = _net()
    with torch.no_grad():
        for layer in batchnorm_layers(net):
            layer.running_mean.uniform_(-1, 1)
            layer.running_var.uniform_(0.5, 2)
    saved = {k: v.clone() for k, v in net.state_dict().items()}

    def broken():
        yield _x(4, 5)
        raise OSError("disk gone")

    with pytest.raises(DataError if failure == "empty" else OSError):
        adapt_batchnorm(net, [] if failure == "empty" else broken())
    for key, value in net.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert not net.training
