"""Every command the README (or a config's comment) shows composes: its config is built with Hydra's
compose API (nothing is run), with each value of a sweep (-m, the ablation presets' and the Optuna search's
parameters) composed once, mandatory values given and interpolations resolvable. So the README cannot
drift from the configs."""

from __future__ import annotations

import importlib
import importlib.util
import re
import shlex
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import ChoiceSweep, IntervalSweep, RangeSweep
from omegaconf import OmegaConf, open_dict

from ecglit.configs import compose
from ecglit.data.synthetic.config import SyntheticConfig

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
# how a command names its program -> the program's config (or "summarize", an argparse program)
PROGRAMS = {
    "train.py": "train", "evaluate.py": "evaluate", "predict.py": "predict",
    "ecglit.data.convert": "convert", "ecglit.data.synthesize": "synthesize", "ecglit.sweeps.summarize": "summarize",
    "ecglit.models.from_keras": "from_keras", "ecglit-from-keras": "from_keras",
    "ecglit.calibrate": "calibrate", "ecglit-calibrate": "calibrate",
    **{f"ecglit-{name}": name for name in ("train", "evaluate", "predict", "convert", "synthesize", "summarize")},
}
ARGPARSE = {"summarize": "ecglit.sweeps.summarize", "from_keras": "ecglit.models.from_keras"}
NOT_ECGLIT = ("pytest", "benchmarks/", "scripts/")  # other tools, and argparse scripts (not Hydra programs)
HYDRA_FLAGS_WITH_VALUE = {"--cfg", "-c", "--package", "-p", "--info", "-i", "--config-name", "-cn",
                          "--config-dir", "-cd", "--config-path", "-cp", "--experimental-rerun"}
HYDRA_FLAGS = {"-m", "--multirun", "--resolve", "--help", "-h", "--hydra-help", "--version", "--run", "-r"}


def _command_lines(text: str) -> list[str]:
    """Shell lines of the ```bash blocks (continuations joined) plus inline `python ...`/`ecglit-...` spans."""
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        lines += block.replace("\\\n", " ").splitlines()
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += [span for span in re.findall(r"`([^`]+)`", prose) if re.search(r"(^|\s)(python|ecglit-)", span)]
    return lines


def _config_command_lines() -> list[str]:
    """Commands in the comments of conf/**/*.yaml and sweeps/*.yaml (the user's conf/local excluded)."""
    lines = []
    for path in sorted(REPO.glob("conf/**/*.yaml")) + sorted(REPO.glob("sweeps/*.yaml")):
        if "local" in path.relative_to(REPO).parts:
            continue
        comments = "\n".join(line.split("#", 1)[1] for line in path.read_text().splitlines() if "#" in line)
        for line in comments.replace("\\\n", " ").splitlines():
            spans = re.findall(r"`([^`]+)`", line)
            lines += [span for span in spans if re.match(r"(python|ecglit-)", span)]
            line = re.sub(r"`[^`]+`", "", line)
            start = re.search(r"(^|\s)(python |ecglit-)", line)
            if start:
                lines.append(line[start.start():])
    return lines


def readme_commands(lines: list[str] | None = None) -> list[tuple[str, list[str]]]:
    """(program, arguments) of every ecglit command in the README (or in ``lines``)."""
    found = []
    for line in _command_lines(README.read_text()) if lines is None else lines:
        line = re.sub(r"<[^<>]*>", "X", line)  # placeholders such as <sweep dir>
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):  # VAR=value before the command
            words = words[1:]
        if not words:
            continue
        if words[0] == "ecglit-X":  # prose: `ecglit-<program>`
            continue
        if words[0].startswith("ecglit-"):
            program, args = words[0], words[1:]
        elif words[0].endswith("python") and len(words) > 1:
            if words[1] == "-m":
                program, args = words[2], words[3:]
            else:
                program, args = words[1], words[2:]
            if program.startswith(NOT_ECGLIT):
                continue
        else:
            continue
        if program not in PROGRAMS and _missing_module(program):
            continue  # a program still to come (its own tests will cover it), e.g. ecglit.pretrained.build
        assert program in PROGRAMS, f"README runs an ecglit program this test does not know: {line!r}"
        found.append((program, args))
    return found


def _missing_module(program: str) -> bool:
    if not program.startswith("ecglit."):
        return False
    try:
        return importlib.util.find_spec(program) is None
    except ModuleNotFoundError:  # its package is missing too
        return True


def _strip_optional(args: list[str]) -> list[str]:
    """``[plot=true]``, ``[a=1 b=2]`` and ``[--flag X]`` mark optional arguments: use them."""
    out = []
    for arg in args:
        if arg.startswith("[") and ("=" in arg or arg.startswith("[-")):
            arg = arg[1:]
        if arg.endswith("]") and arg.count("[") < arg.count("]"):
            arg = arg[:-1]
        if "|" in arg and "=" in arg:  # key=a|b|c: one of the alternatives
            key, _, alternatives = arg.partition("=")
            arg = f"{key}={alternatives.split('|')[0]}"
        if arg not in ("key=value", "..."):  # "[key=value ...]": any other override
            out.append(arg)
    return out


def _hydra_overrides(args: list[str]) -> list[str]:
    overrides, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in HYDRA_FLAGS_WITH_VALUE:
            skip = True
        elif arg not in HYDRA_FLAGS:
            assert not arg.startswith("-"), f"unexpected flag {arg!r}"
            overrides.append(arg)
    return _strip_optional(overrides)


def _values(override) -> list[str]:
    """Each value a (sweep) override takes, as override strings."""
    value = override.value()
    key = override.key_or_group
    if isinstance(value, (ChoiceSweep, RangeSweep)):
        return [f"{key}={v}" for v in override.sweep_string_iterator()]
    if isinstance(value, IntervalSweep):
        return [f"{key}={value.start}", f"{key}={value.end}"]
    return [override.input_line]


def covering_overrides(overrides: list[str]) -> list[list[str]]:
    """Override lists in which every value of every swept key appears at least once."""
    options = [_values(o) for o in OverridesParser.create().parse_overrides(overrides)]
    width = max((len(o) for o in options), default=1)
    return [[o[i % len(o)] for o in options] for i in range(width)]


def _preset_sweeps(cfg, given: list[str]) -> list[str]:
    """The sweeper parameters a preset (ablate_*, hparams_search) declares, minus those on the command line."""
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    keys = {o.split("=", 1)[0].lstrip("+~") for o in given}
    return [f"{k}={v}" for k, v in params.items() if k not in keys]


def check_composes(config: str, overrides: list[str], expand: bool = True) -> int:
    """Compose (and resolve) every value of every sweep the command runs, or with ``expand=False`` only the
    first value of its command-line sweeps; returns how many configs were built."""
    built = 0
    first = covering_overrides(overrides)[0]
    combinations = [first]
    if expand:
        preset = _preset_sweeps(compose(config, first, return_hydra_config=True), overrides)
        combinations = covering_overrides(overrides + preset)
    for combination in combinations:
        cfg = compose(config, combination, return_hydra_config=True)
        with open_dict(cfg):
            cfg.hydra.runtime.output_dir = "/tmp/readme-check"
        HydraConfig.instance().set_config(cfg)
        job = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"])
        assert not OmegaConf.missing_keys(job), f"{config} {combination}: missing {OmegaConf.missing_keys(job)}"
        resolved = OmegaConf.to_container(job, resolve=True)  # interpolations (ablation presets, paths)
        generator = (resolved.get("data") or {}).get("generator", resolved.get("generator"))
        if generator is not None:
            SyntheticConfig.from_dict(generator)  # the generator accepts the values
        built += 1
    return built


COMMANDS = list(dict.fromkeys(  # the configs' comments repeat some README commands
    (program, tuple(args)) for program, args in readme_commands() + readme_commands(_config_command_lines())))


def test_the_readme_shows_every_program():
    shown = {PROGRAMS[program] for program, _ in COMMANDS}
    assert shown == set(PROGRAMS.values())
    assert len(readme_commands()) > 40 and len(COMMANDS) > 70  # guards the extraction itself


IDS = [" ".join([p, *a])[:80] for p, a in COMMANDS]


@pytest.mark.parametrize("program,args", COMMANDS, ids=IDS)
def test_readme_command_composes(program, args):
    """With the first value of each sweep (a compose costs ~0.3 s: every value is the slow test's job)."""
    config = PROGRAMS[program]
    if config in ARGPARSE:  # argparse programs: the arguments parse
        importlib.import_module(ARGPARSE[config]).build_parser().parse_args(_strip_optional(list(args)))
        return
    assert check_composes(config, _hydra_overrides(list(args)), expand=False) == 1


@pytest.mark.slow
@pytest.mark.parametrize("program,args", [c for c in COMMANDS if PROGRAMS[c[0]] not in ARGPARSE],
                         ids=[i for i, c in zip(IDS, COMMANDS) if PROGRAMS[c[0]] not in ARGPARSE])
def test_readme_command_composes_with_every_swept_value(program, args):
    assert check_composes(PROGRAMS[program], _hydra_overrides(list(args))) >= 1


def test_sweeps_are_expanded():
    """The checker itself: a sweep on the command line and a preset's sweep give one config per value."""
    assert covering_overrides(["model.kernel_size=9,17", "seed=1,2,3", "data.n=64"]) == [
        ["model.kernel_size=9", "seed=1", "data.n=64"], ["model.kernel_size=17", "seed=2", "data.n=64"],
        ["model.kernel_size=9", "seed=3", "data.n=64"]]
    assert check_composes("train", ["experiment=ablate_kernel"]) == 5  # kernel sizes 3, 9, 16, 17, 31
    with pytest.raises(Exception, match="dropoutt"):
        check_composes("train", ["model.dropoutt=0.1,0.2"])
