"""`pip install .` gives console scripts that work from any folder, configs included (slow: builds a wheel,
installs it into a fresh virtual environment that borrows this one's packages, trains the smoke run)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = ("train", "evaluate", "predict", "convert", "synthesize", "summarize", "from_keras", "calibrate")
SOURCES = ("pyproject.toml", "setup.py", "README.md", "ecglit", "conf")


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """A wheel built from a copy of the checkout (the build writes build/ and *.egg-info beside the sources),
    installed without dependencies into a new venv whose .pth file points at this environment's packages
    (torch & co., so nothing is downloaded)."""
    root = tmp_path_factory.mktemp("package")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(REPO / name, src / name)
    (src / "conf" / "local" / "default.yaml").write_text("seed: 123  # a user's local override\n")
    build = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                  "-w", str(root / "dist"), str(src)], cwd=root)
    assert build.returncode == 0, build.stdout + build.stderr
    wheel = next((root / "dist").glob("ecglit-*.whl"))
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=root)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    purelib = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                        cwd=root).stdout.strip())
    shared = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    (purelib / "_shared_packages.pth").write_text("\n".join(shared) + "\n")
    install = _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)], cwd=root)
    assert install.returncode == 0, install.stdout + install.stderr
    return {"root": root, "wheel": wheel, "venv": venv, "python": python, "purelib": purelib}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HYDRA_FULL_ERROR", "ECGLIT_ROOT")}
    return {**env, "WANDB_MODE": "disabled", "PYTHONNOUSERSITE": "1"}


@pytest.mark.slow
def test_wheel_ships_the_configs_but_not_local_overrides(installed):
    names = zipfile.ZipFile(installed["wheel"]).namelist()
    expected = {f"ecglit/conf/{p.relative_to(REPO / 'conf')}" for p in (REPO / "conf").rglob("*.yaml")
                if p.parent.name != "local"}
    assert expected and expected <= set(names)
    assert not [n for n in names if n.startswith("ecglit/conf/local/")]
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(installed["wheel"]).read(entry_points).decode()
    assert all(f"ecglit-{name.replace('_', '-')} = ecglit.cli:{name}" in scripts for name in SCRIPTS)


@pytest.mark.slow
def test_console_scripts_work_from_an_empty_folder(installed, tmp_path):
    bin_dir = installed["venv"] / "bin"
    where = _run([str(installed["python"]), "-c", "import ecglit, ecglit.configs as c; "
                  "print(ecglit.__file__); print(c.config_dir())"], cwd=tmp_path, env=_env())
    module, conf = where.stdout.split()
    assert Path(module).is_relative_to(installed["purelib"]), "imported ecglit from elsewhere than the wheel"
    assert Path(conf) == installed["purelib"] / "ecglit" / "conf"

    for name in SCRIPTS:  # every script starts, finds its config and gives the one-line error
        script = f"ecglit-{name.replace('_', '-')}"
        argparse = name in ("summarize", "from_keras")
        proc = _run([str(bin_dir / script), "--bogus-flag" if argparse else "bogus_key=1"], cwd=tmp_path,
                    env=_env(), timeout=120)
        assert proc.returncode == 2 and proc.stderr.startswith(f"{script}: error:"), (name, proc.stderr)
        assert proc.stderr.count("\n") == 1, proc.stderr

    proc = _run([str(bin_dir / "ecglit-train"), "experiment=smoke", "logger=csv"], cwd=tmp_path, env=_env(),
                timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = list((tmp_path / "outputs" / "smoke" / "runs").iterdir())  # relative to the current folder
    assert len(runs) == 1
    run = runs[0]
    assert (run / "test_metrics.json").is_file() and list((run / "checkpoints").glob("*.ckpt"))
    assert list((run / "csv").glob("version_*/metrics.csv")) and (run / "train.log").is_file()
    assert any((tmp_path / "data" / "synthetic").iterdir())  # paths.data_dir: ./data

    proc = _run([str(bin_dir / "ecglit-train"), "model.dropout=1.5", "logger=none"], cwd=tmp_path, env=_env(),
                timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("ecglit-train: error:")]
    assert proc.returncode == 2 and lines == ["ecglit-train: error: model.dropout is a drop probability in [0, 1), "
                                              "got 1.5"], proc.stderr
    assert "Traceback" not in proc.stderr
