"""ResNet1d: the paper's Keras network (parameter count, TF 'same' padding, shapes) and its options."""

from __future__ import annotations

import inspect
import math
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ecglit.errors import ConfigError
from ecglit.models import ResNet1d
from ecglit.models.layers import SamePadConv1d, SamePadMaxPool1d, tf_same_pads
from ecglit.models.resnet import INITS

MODEL_CONF = Path(__file__).resolve().parents[1] / "conf" / "model"
PRESETS = sorted(MODEL_CONF.glob("*.yaml"))
TINY = dict(stem_filters=4, filters=(4, 8, 8, 8), kernel_size=5)


def n_trainable(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def load_preset(name: str, *overrides: str) -> ResNet1d:
    cfg = OmegaConf.load(MODEL_CONF / f"{name}.yaml")
    cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist(list(overrides)))
    return instantiate(cfg)


def expected_tf_pads(in_len: int, k: int, stride: int) -> tuple[int, int]:
    """TensorFlow's rule, written out independently of the module under test."""
    out = -(-in_len // stride)
    total = max((out - 1) * stride + k - in_len, 0)
    return total // 2, total - total // 2


@pytest.fixture(scope="module")
def paper() -> ResNet1d:
    """The paper preset, built once (several tests only read it)."""
    return load_preset("resnet_paper").eval()


def test_paper_preset_has_exactly_the_keras_parameter_count(paper: ResNet1d) -> None:
    model = paper
    assert isinstance(model, ResNet1d)
    assert n_trainable(model) == 6_421_910
    # BN running mean/var (the Keras non-trainable weights), besides num_batches_tracked
    running = sum(b.numel() for name, b in model.named_buffers() if "running" in name)
    assert running == 3_728
    assert model.head.in_features == 16 * 320


def test_constructor_defaults_are_the_paper_preset(paper: ResNet1d) -> None:
    default = ResNet1d(init="torch_default")  # init does not show in the repr; it is tested below
    assert repr(default) == repr(paper)
    assert n_trainable(default) == 6_421_910


def test_forward_gives_logits_of_shape_batch_by_classes() -> None:
    model = ResNet1d(**TINY).eval()
    with torch.no_grad():
        out = model(torch.randn(3, 12, 4096))
    assert out.shape == (3, 6) and out.dtype == torch.float32
    assert (out < 0).any() and (out > 0).any()  # logits, not sigmoid probabilities


def test_per_unit_outputs_follow_the_paper(paper: ResNet1d) -> None:
    model = paper
    x = y = model.stem(torch.randn(1, 12, 4096))
    assert x.shape == (1, 64, 4096)
    shapes = []
    with torch.no_grad():
        for unit in model.units:
            x, y = unit(x, y)
            assert y.shape == x.shape
            shapes.append((x.shape[2], x.shape[1]))
    assert shapes == [(1024, 128), (256, 196), (64, 256), (16, 320)]


@pytest.mark.parametrize(
    "in_len,k,stride",
    [(4096, 16, 1), (4096, 16, 4), (1024, 16, 4), (4095, 16, 4), (100, 16, 3), (37, 5, 2),
     (4096, 17, 1), (4096, 17, 4), (64, 9, 4), (10, 1, 1), (10, 4, 4), (7, 16, 1)],
)
def test_same_padding_follows_tensorflow(in_len: int, k: int, stride: int) -> None:
    pads = expected_tf_pads(in_len, k, stride)
    assert tf_same_pads(in_len, k, stride) == pads
    conv = SamePadConv1d(3, 5, k, in_len, stride=stride, bias=True).double()
    assert conv.same_pads == pads
    x = torch.randn(2, 3, in_len, dtype=torch.float64)
    reference = F.conv1d(F.pad(x, pads), conv.weight, conv.bias, stride=stride)
    out = conv(x)
    assert out.shape[-1] == math.ceil(in_len / stride) == conv.out_length
    torch.testing.assert_close(out, reference, rtol=0, atol=1e-12)
    if stride == 1:  # PyTorch's own 'same' (stride 1 only) puts the extra sample on the right too
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "even kernel ... zero-padded copy"
            torch_same = F.conv1d(x, conv.weight, conv.bias, padding="same")
        torch.testing.assert_close(out, torch_same, rtol=0, atol=1e-12)


def test_paper_kernel_pads_seven_left_eight_right_then_six_six(paper: ResNet1d) -> None:
    model = paper
    assert model.stem[0].same_pads == (7, 8)
    assert model.units[0].conv1.same_pads == (7, 8)
    assert [unit.conv2.same_pads for unit in model.units] == [(6, 6)] * 4
    # odd kernel: symmetric at stride 1, as in the PyTorch port
    assert ResNet1d(**{**TINY, "kernel_size": 17}).units[0].conv1.same_pads == (8, 8)


@pytest.mark.parametrize("in_len,pool", [(4096, 4), (10, 4), (9, 2), (7, 16)])
def test_same_max_pooling_pads_with_minus_infinity(in_len: int, pool: int) -> None:
    pads = expected_tf_pads(in_len, pool, pool)
    layer = SamePadMaxPool1d(pool, in_len)
    x = -1.0 - torch.rand(2, 3, in_len)  # all negative: zero padding would show up as 0
    out = layer(x)
    padded = F.pad(x, pads, value=float("-inf"))
    expected = padded.reshape(2, 3, -1, pool).amax(-1)
    assert out.shape[-1] == math.ceil(in_len / pool) == layer.out_length
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert (out < 0).all()


def test_width_multiplier_scales_every_conv(paper: ResNet1d) -> None:
    half = ResNet1d(width=0.5, init="torch_default")
    assert half.channels == (32, 64, 98, 128, 160)
    assert half.units[1].conv2.out_channels == 98
    assert half.head.in_features == 16 * 160
    with torch.no_grad():
        assert half.eval()(torch.randn(1, 12, 4096)).shape == (1, 6)
    assert n_trainable(half) < n_trainable(paper) / 3


@pytest.mark.parametrize(
    "filters,seq_lengths",
    [
        ((8, 16), (256, 16)),
        ((8, 8, 8, 16, 16, 16), (2048, 1024, 256, 64, 16, 4)),
        ((8, 8, 16), (4096, 1024, 1024)),  # downsample factor 1 twice
    ],
)
def test_depth_follows_the_lists(filters: tuple[int, ...], seq_lengths: tuple[int, ...]) -> None:
    model = ResNet1d(stem_filters=8, filters=filters, seq_lengths=seq_lengths, kernel_size=9).eval()
    assert len(model.units) == len(filters)
    with torch.no_grad():
        assert model.forward_features(torch.randn(2, 12, 4096)).shape == (2, filters[-1], seq_lengths[-1])
    # downsample factor 1 or an unchanged channel count means no pooling / no 1x1 conv on the skip
    for unit, ds, c_in, c_out in zip(model.units, model.downsample, model.channels, model.channels[1:]):
        assert isinstance(unit.skip_pool, SamePadMaxPool1d) == (ds > 1)
        assert isinstance(unit.skip_conv, torch.nn.Conv1d) == (c_in != c_out)


def test_receptive_field_matches_the_gradient_support() -> None:
    torch.manual_seed(0)
    model = ResNet1d(stem_filters=8, filters=(8, 8, 8, 8), kernel_size=9, stem_activation="none")
    model = model.double().eval()
    x = torch.randn(1, 12, 4096, dtype=torch.float64, requires_grad=True)
    model.forward_features(x)[0, :, 8].sum().backward()  # a position near the middle
    support = (x.grad.abs().sum(1)[0] > 0).nonzero().flatten()
    assert model.receptive_field == 1 + 8 * (1 + 2 * (1 + 4 + 16 + 64))
    assert support.max() - support.min() + 1 == model.receptive_field


def test_head_flattens_time_major_like_keras() -> None:
    model = ResNet1d(**TINY).eval()
    x = torch.randn(2, 12, 4096)
    c, t = 5, 3
    with torch.no_grad():
        features = model.forward_features(x)
        model.head.weight.zero_()
        model.head.bias.zero_()
        model.head.weight[0, t * features.shape[1] + c] = 1.0  # Keras (L, C) row-major index
        torch.testing.assert_close(model(x)[:, 0], features[:, c, t])


def test_he_normal_matches_keras_variance_and_truncation(paper: ResNet1d) -> None:
    conv = paper.units[0].conv1.weight.detach()  # fan_in = 64 * 16, as Keras computes it
    std = math.sqrt(2.0 / (64 * 16))
    assert conv.std().item() == pytest.approx(std, rel=0.01)
    assert conv.abs().max().item() <= 2 * std / 0.87962566103423978 + 1e-7
    assert conv.abs().max().item() > 1.9 * std / 0.87962566103423978  # truncated near 2 sigma, not earlier
    head = paper.head.weight.detach()
    assert head.std().item() == pytest.approx(math.sqrt(2.0 / 5120), rel=0.02)
    assert torch.all(paper.head.bias == 0) and torch.all(paper.stem[1].weight == 1)
    default = ResNet1d(**{**TINY, "init": "torch_default"}).units[2].conv1.weight.detach()
    bound = 1 / math.sqrt(8 * 5)  # PyTorch's kaiming-uniform(a=sqrt 5): U(-1/sqrt(fan_in), +)
    assert default.abs().max().item() <= bound + 1e-7 and default.std().item() < bound / math.sqrt(3) * 1.2


def test_port_preset_is_the_pytorch_port() -> None:
    model = load_preset("resnet_port")
    assert n_trainable(model) == 6_810_790  # k=17 count of the port with 6 outputs
    assert isinstance(model.stem[2], torch.nn.Identity)
    assert model.stem[1].momentum == 0.1 and model.stem[1].eps == 1e-5
    assert model.units[0].dropout1.p == pytest.approx(0.2)


@pytest.mark.parametrize(
    "kwargs,fragment",
    [
        (dict(filters=(128, 196), seq_lengths=(1024, 256, 64)), "same, non-zero length"),
        (dict(filters=(), seq_lengths=()), "same, non-zero length"),
        (dict(seq_lengths=(1000, 256, 64, 16)), "seq_lengths[0]=1000"),
        (dict(seq_lengths=(1024, 256, 48, 16)), "seq_lengths[2]=48"),
        (dict(seq_lengths=(1024, 2048, 64, 16)), "seq_lengths[1]=2048"),
        (dict(filters=(128, 0, 256, 320)), "positive"),
        (dict(seq_lengths=(1024, 256, 64, -16)), "positive"),
        (dict(kernel_size=0), "kernel_size"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropout=-0.1), "dropout"),
        (dict(width=0.0), "width"),
        (dict(stem_activation="tanhh"), "stem_activation"),
        (dict(bn_momentum=-0.5), "bn_momentum"),
        (dict(bn_eps=0.0), "bn_eps"),
        (dict(init="glorot"), "init"),
        (dict(filters=("a", 2, 3, 4)), "list of integers"),
        (dict(n_classes=0), "n_classes"),
    ],
)
def test_invalid_configuration_raises_config_error(kwargs: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        ResNet1d(**kwargs)
    assert fragment in str(info.value)


@pytest.mark.parametrize("preset", PRESETS, ids=[p.stem for p in PRESETS])
def test_every_preset_instantiates_and_runs(preset: Path) -> None:
    cfg = OmegaConf.load(preset)
    assert cfg._target_ == "ecglit.models.resnet.ResNet1d"
    assert cfg.init in INITS
    # every constructor argument is explicit, so `model.<arg>=...` overrides always apply
    assert set(cfg) - {"_target_"} == set(inspect.signature(ResNet1d).parameters)
    model = instantiate(cfg, init="torch_default").eval()  # skips the (slow) truncated-normal draw
    with torch.no_grad():
        assert model(torch.randn(1, 12, 4096)).shape == (1, 6)


def test_hydra_override_changes_the_kernel() -> None:
    model = load_preset("resnet_small", "kernel_size=9", "dropout=0.0")
    assert model.units[2].conv1.kernel_size == (9,)
    assert model.units[2].dropout2.p == 0.0


def test_small_preset_is_much_cheaper_and_still_sees_seconds(paper: ResNet1d) -> None:
    small = load_preset("resnet_small")
    assert n_trainable(small) * 10 < n_trainable(paper)
    assert small.receptive_field / 400 >= 2.0  # seconds: at least two beats even below 50 bpm


def test_eval_is_deterministic_and_train_uses_dropout() -> None:
    torch.manual_seed(0)
    model = ResNet1d(**TINY)
    x = torch.randn(4, 12, 4096)
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), rtol=0, atol=0)
        model.train()
        assert not torch.equal(model(x), model(x))


def test_torch_export_with_dynamic_batch_matches_eager() -> None:
    model = ResNet1d(**TINY).eval()
    x = torch.randn(2, 12, 4096)
    batch = torch.export.Dim("batch", min=1, max=512)
    program = torch.export.export(model, (x,), dynamic_shapes={"x": {0: batch}})
    x5 = torch.randn(5, 12, 4096)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x5), model(x5))


def test_group_norm_option_normalises_each_exam_alone():
    """model.norm=group: no running statistics, and an exam's output does not depend on the rest of its
    batch, in training mode too (with BatchNorm it does)."""
    from ecglit.errors import ConfigError

    cfg = dict(stem_filters=8, filters=[8, 16], seq_lengths=[1024, 256], kernel_size=7, dropout=0.0)
    torch.manual_seed(0)
    group = ResNet1d(norm="group", **cfg).train()
    torch.manual_seed(0)
    batch = ResNet1d(**cfg).train()
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in group.modules())
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in group.modules()) == 5  # stem + 2 per unit
    x = torch.randn(4, 12, 4096, generator=torch.Generator().manual_seed(1))
    other = torch.cat([x[:1], 5.0 * torch.randn(3, 12, 4096, generator=torch.Generator().manual_seed(2))])
    torch.testing.assert_close(group(x)[:1], group(other)[:1], rtol=1e-4, atol=1e-5)
    assert (batch(x)[:1] - batch(other)[:1]).abs().max() > 1e-3
    with pytest.raises(ConfigError, match="norm must be one of"):
        ResNet1d(norm="layer", **cfg)
