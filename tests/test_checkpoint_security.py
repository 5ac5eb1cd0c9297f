"""Checkpoints are data: hostile checkpoints are refused in one line and never run or import anything."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import lightning
import pytest
import torch

from ecglit.errors import ConfigError, DataError
from ecglit.models.checkpoint import load_classifier, resolve_checkpoint
from ecglit.models.ecg_module import ECGClassifier
from ecglit.models.registry import build_optimizer, build_scheduler, register_network

REPO = Path(__file__).resolve().parents[1]
TINY_NET = {"_target_": "ecglit.models.resnet.ResNet1d", "stem_filters": 4, "filters": [8],
            "seq_lengths": [64], "kernel_size": 7}


def _checkpoint(path: Path, **hparams) -> Path:
    module = ECGClassifier(net=TINY_NET)
    payload = {"state_dict": module.state_dict(), "hyper_parameters": {**dict(module.hparams), **hparams},
               "pytorch-lightning_version": lightning.__version__}
    torch.save(payload, path)
    return path


class _Evil:
    def __reduce__(self):
        import posix  # the real function, whatever a test patched into os

        return (posix.system, ("touch /tmp/ecglit-pwned",))


@pytest.fixture()
def no_side_effects(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    yield calls
    assert calls == [], "a checkpoint made ecglit call os.system"


def test_a_plain_checkpoint_loads(tmp_path):
    module = load_classifier(_checkpoint(tmp_path / "ok.ckpt"))
    assert module.hparams.net == TINY_NET and not module.training


@pytest.mark.parametrize(("hparams", "message"), [
    ({"net": {**TINY_NET, "_target_": "os.system"}}, "network 'os.system' is not a registered ecglit network"),
    ({"net": {**TINY_NET, "filters": {"_target_": "os.system", "command": "id"}}}, "filters._target_ is not allowed"),
    ({"optimizer": {"_target_": "builtins.eval", "source": "1"}}, "optimizer 'builtins.eval' is not allowed"),
    ({"optimizer": {"_target_": "torch.optim.Adam", "lr": {"_target_": "os.getcwd"}}}, "lr._target_ is not allowed"),
    ({"scheduler": {"_target_": "subprocess.Popen", "args": ["id"]}}, "scheduler 'subprocess.Popen' is not allowed"),
    ({"net": {**TINY_NET, "_partial_": True}}, "_partial_ is not allowed"),
])
def test_targets_outside_the_allowlist_are_refused(tmp_path, no_side_effects, hparams, message):
    path = _checkpoint(tmp_path / "hostile.ckpt", **hparams)
    with pytest.raises(DataError) as err:
        load_classifier(path)
    text = str(err.value)
    assert text.startswith(str(path)) and "refused" in text and message in text
    assert "\n" not in text


def test_pickled_code_is_refused_without_running(tmp_path, no_side_effects):
    path = tmp_path / "pickle.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"net": TINY_NET}, "x": _Evil()}, path)
    with pytest.raises(DataError, match=r"refused: the checkpoint names posix\.system, which is not plain data"):
        load_classifier(path)
    assert not Path("/tmp/ecglit-pwned").exists()


@pytest.mark.parametrize(("content", "message"), [
    (b"not a checkpoint", "not a PyTorch checkpoint"),
    (b"PK\x03\x04 truncated zip", "not a PyTorch checkpoint"),
])
def test_junk_files_are_refused(tmp_path, content, message):
    path = tmp_path / "junk.ckpt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_classifier(path)


def test_missing_checkpoint_names_the_shipped_models(tmp_path):
    with pytest.raises(DataError, match="checkpoint not found"):
        resolve_checkpoint(tmp_path / "nope.ckpt")


def test_registry_builds_only_torch_optimizers_and_schedulers():
    params = [torch.nn.Parameter(torch.zeros(1))]
    assert isinstance(build_optimizer({"_target_": "torch.optim.SGD", "lr": 0.1}, params), torch.optim.SGD)
    opt = build_optimizer({"_target_": "torch.optim.Adam"}, params)
    sched = build_scheduler({"_target_": "torch.optim.lr_scheduler.ReduceLROnPlateau", "patience": 2}, opt)
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    for bad in ("torch.optim.Optimizer.__init__", "torch.nn.Linear", "torch.optim.lr_scheduler.torch"):
        with pytest.raises(ConfigError):
            build_optimizer({"_target_": bad}, params)
    with pytest.raises(ConfigError, match="SGD: .*unexpected keyword"):
        build_optimizer({"_target_": "torch.optim.SGD", "lr": 0.1, "bogus": 1}, params)


def test_registering_a_network_allows_it(tmp_path):
    class MyNet(torch.nn.Module):
        def __init__(self, n_classes: int = 6) -> None:
            super().__init__()
            self.fc = torch.nn.Linear(12 * 4096, n_classes)

        def forward(self, x):
            return self.fc(x.flatten(1))

    name = "tests.MyNet"
    register_network(MyNet, name)
    module = ECGClassifier(net={"_target_": name})
    assert isinstance(module.net, MyNet)


def test_every_torch_load_in_ecglit_is_weights_only():
    calls = []
    for path in (REPO / "ecglit").rglob("*.py"):
        for line in path.read_text().splitlines():
            if re.search(r"\btorch\.load\(|load_from_checkpoint\(|\.fit\(.*ckpt_path", line):
                calls.append((path.name, line.strip()))
    assert calls, "the scan found no checkpoint loading at all"
    unsafe = [c for c in calls if "weights_only=True" not in c[1]]
    assert unsafe == [], f"loads without weights_only=True: {unsafe}"


def test_predict_refuses_a_hostile_checkpoint_in_one_line(tmp_path):
    path = _checkpoint(tmp_path / "hostile.ckpt", net={**TINY_NET, "_target_": "os.system"})
    proc = subprocess.run([sys.executable, "predict.py", f"ckpt={path}", f"input={tmp_path}",
                           f"output={tmp_path / 'out.csv'}", f"hydra.run.dir={tmp_path / 'run'}"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    assert lines[-1].startswith("predict.py: error:") and "os.system" in lines[-1]
    assert "Traceback" not in proc.stderr and not (tmp_path / "out.csv").exists()
