"""Ensembles (ecglit/models/ensemble.py): the mean of the members' probabilities, one checkpoint that loads
as data, float16 storage that holds exactly the scored model, and clear refusals of members that differ."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from ecglit.errors import ConfigError, DataError
from ecglit.inference.predictor import Predictor
from ecglit.models.checkpoint import ensemble_of, load_classifier, round_weights_to_float16, save_classifier
from ecglit.models.ecg_module import ECGClassifier
from ecglit.models.ensemble import ENSEMBLE_TARGET, Ensemble
from ecglit.models.registry import build_network

TINY_NET = {"_target_": "ecglit.models.resnet.ResNet1d", "stem_filters": 4, "filters": [8],
            "seq_lengths": [64], "kernel_size": 7}


def _member(path: Path, seed: int, **hparams) -> Path:
    torch.manual_seed(seed)
    module = ECGClassifier(net=hparams.pop("net", TINY_NET), **hparams)
    with torch.no_grad():  # non-trivial BatchNorm statistics and thresholds
        for name, buffer in module.net.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_(0.0, 0.3)
            elif name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
        module.thresholds.uniform_(0.2, 0.8)
    return save_classifier(module.eval(), path)


def _x(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 12, 4096, generator=torch.Generator().manual_seed(7)) * 5


def test_the_ensemble_probability_is_the_mean_of_its_members(tmp_path):
    paths = [_member(tmp_path / f"m{i}.ckpt", seed=i) for i in range(3)]
    ensemble = ensemble_of(paths)
    with torch.no_grad():
        members = torch.stack([load_classifier(p).predict_proba(_x()) for p in paths])
        probs = ensemble.predict_proba(_x())
    assert probs.shape == (4, 6)
    assert torch.allclose(probs, members.mean(0), atol=1e-6)
    assert not torch.allclose(members[0], members[1], atol=1e-3)  # the members differ: not a trivial mean
    expected = torch.stack([load_classifier(p).thresholds for p in paths]).mean(0)
    assert torch.allclose(ensemble.thresholds, expected)


def test_confident_members_give_finite_logits():
    """sigmoid(z) rounds to 1.0 in float32 beyond z ~ 17: averaging probabilities and taking the logit
    would give inf; the ensemble works in log space instead."""
    net = build_network({"_target_": ENSEMBLE_TARGET, "member": TINY_NET["_target_"], "n_members": 2,
                         "member_kwargs": {k: v for k, v in TINY_NET.items() if k != "_target_"}}).eval()
    with torch.no_grad():
        net.members[0].head.weight.mul_(1e3)  # certain ...
        net.members[0].head.bias.mul_(1e3)
        net.members[1].load_state_dict(net.members[0].state_dict())  # ... and identical: the mean is theirs
        single = net.members[0](_x(2))
        logits = net(_x(2))
    assert single.abs().max() > 1e3 and torch.isfinite(logits).all()
    assert torch.allclose(logits, single, rtol=1e-4, atol=1e-3)


def test_a_saved_ensemble_loads_as_data_and_predicts_the_same(tmp_path):
    paths = [_member(tmp_path / f"m{i}.ckpt", seed=i) for i in range(2)]
    ensemble = ensemble_of(paths)
    out = save_classifier(ensemble, tmp_path / "ensemble.ckpt")
    payload = torch.load(out, weights_only=True)  # plain data: no pickled class
    assert payload["hyper_parameters"]["net"]["_target_"] == "ecglit.models.ensemble.Ensemble"
    loaded = Predictor.from_checkpoint(out, device="cpu")
    expected = Predictor.from_module(ensemble, device="cpu")
    stored = _x().transpose(1, 2)  # the stored (B, 4096, 12) layout
    assert loaded.predict_batch(stored) == pytest.approx(expected.predict_batch(stored), abs=1e-6)


def test_float16_storage_is_exact_after_rounding_and_refused_before(tmp_path):
    paths = [_member(tmp_path / f"m{i}.ckpt", seed=i) for i in range(2)]
    ensemble = ensemble_of(paths)
    with pytest.raises(ValueError, match="round_weights_to_float16"):
        save_classifier(ensemble, tmp_path / "unrounded.ckpt", float16=True)
    with torch.no_grad():
        before = ensemble.predict_proba(_x())
        round_weights_to_float16(ensemble)
        rounded = ensemble.predict_proba(_x())
    assert 0 < (before - rounded).abs().max() < 1e-2  # rounding moves the output, a little
    out = save_classifier(ensemble, tmp_path / "half.ckpt", float16=True)
    full = save_classifier(ensemble, tmp_path / "full.ckpt")
    assert out.stat().st_size < 0.75 * full.stat().st_size
    state = torch.load(out, weights_only=True)["state_dict"]
    assert state["net.members.0.head.weight"].dtype == torch.float16
    assert state["thresholds"].dtype == torch.float32
    with torch.no_grad():
        assert torch.equal(load_classifier(out).predict_proba(_x()), rounded)  # the file is the scored model


def test_members_that_differ_are_refused_naming_the_file(tmp_path):
    first = _member(tmp_path / "a.ckpt", seed=0)
    wider = _member(tmp_path / "wider.ckpt", seed=1, net={**TINY_NET, "filters": [16]})
    other_scale = _member(tmp_path / "scale.ckpt", seed=1, input_scale=0.5)
    for path, what in ((wider, "net"), (other_scale, "input_scale")):
        with pytest.raises(DataError, match=rf"{path.name}.*its {what} differs"):
            ensemble_of([first, path])
    with pytest.raises(ConfigError, match="at least two"):
        ensemble_of([first])
    nested = save_classifier(ensemble_of([first, first]), tmp_path / "nested.ckpt")
    with pytest.raises(DataError, match="is an ensemble already"):
        ensemble_of([nested, first])


def test_members_go_through_the_allowlist():
    def build(**kwargs):
        return build_network({"_target_": ENSEMBLE_TARGET, **kwargs})

    with pytest.raises(ConfigError, match="not a registered ecglit network"):
        build(member="os.system", n_members=2)
    with pytest.raises(ConfigError, match="cannot be ensembles"):
        build(member=ENSEMBLE_TARGET, n_members=2)
    with pytest.raises(ConfigError, match="n_members"):
        build(member=TINY_NET["_target_"], n_members=0)
    with pytest.raises(ConfigError, match="unexpected keyword"):
        build(member=TINY_NET["_target_"], members=3)
    with pytest.raises(ConfigError, match="at least one member"):
        Ensemble([])


def _ensemble_net(n_members: int = 2) -> dict:
    return {"_target_": ENSEMBLE_TARGET, "member": TINY_NET["_target_"], "n_members": n_members,
            "member_kwargs": {k: v for k, v in TINY_NET.items() if k != "_target_"}}


def test_a_frozen_ensemble_trains_every_members_head_and_nothing_else():
    """Fine-tuning with module.freeze_backbone=true: each member's head learns on its own features; the
    members' backbones keep their weights and BatchNorm statistics."""
    torch.manual_seed(0)
    module = ECGClassifier(net=_ensemble_net(), freeze_backbone=True,
                           optimizer={"_target_": "torch.optim.SGD", "lr": 0.5})
    trainable = {n for n, p in module.net.named_parameters() if p.requires_grad}
    assert trainable == {f"members.{i}.head.{w}" for i in range(2) for w in ("weight", "bias")}
    module.train()
    module.on_train_epoch_start()  # what Lightning calls each epoch: BatchNorm statistics stay frozen
    assert [m.training for m in module.net.members] == [False, False]
    assert all(m.head.training for m in module.net.members)
    before = {k: v.clone() for k, v in module.net.state_dict().items()}
    optimizer = module.configure_optimizers()
    y = torch.zeros(4, 6)
    y[:, 1] = 1.0
    module.masked_loss(module(_x()), y).backward()
    optimizer.step()
    after = module.net.state_dict()
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    assert moved == trainable


def test_reset_head_reinitialises_every_members_head(tmp_path):
    from ecglit.finetuning import initialise_from

    source = ensemble_of([_member(tmp_path / f"m{i}.ckpt", seed=i) for i in range(2)])
    module = ECGClassifier(net=source.hparams.net)
    initialise_from(module, source, reset_head=True)
    got, src = module.net.state_dict(), source.net.state_dict()
    for key, value in src.items():
        if key.endswith(".head.weight"):
            assert not torch.isclose(got[key], value).any(), key
        elif ".head." in key:
            continue
        else:
            assert torch.equal(got[key], value), key
    assert all(torch.equal(m.head.bias, torch.zeros(6)) for m in module.net.members)
