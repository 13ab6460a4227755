"""The trainer's, evaluate's and generate's command lines are their settings dataclasses: a flag per field, a field
per flag, and one default each."""

from __future__ import annotations

import argparse
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from audiotoken_core import precision
from train.cli import build_parser as train_parser
from train.cli import config_from_args as train_config
from train.config import TrainConfig
from train.evaluate.cli import build_parser as eval_parser
from train.evaluate.cli import config_from_args as eval_config
from train.evaluate.config import EvalConfig
from train.generate_config import GenerateConfig, GeneratorFiles, Sampling
from train.generate_config import build_parser as generate_parser
from train.options import flag, given, option

# Options that are about the command itself, not a setting.
COMMAND_ONLY = {"help", "config"}


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions} - COMMAND_ONLY


COMMANDS = [(train_parser, TrainConfig), (eval_parser, EvalConfig), (generate_parser, GenerateConfig)]


@pytest.mark.parametrize("parser, cls", COMMANDS)
def test_every_field_has_a_flag_and_every_flag_a_field(parser, cls):
    p = parser()
    assert _dests(p) == {f.name for f in dataclasses.fields(cls)}
    flags = {s for a in p._actions for s in a.option_strings}
    for f in dataclasses.fields(cls):
        assert flag(f.name) in flags
        assert f.metadata["help"], f"{cls.__name__}.{f.name} has no help text"


def test_generate_has_no_hand_written_flags():
    """Every flag of `train.generate` is a field's (bools also take --no-x), nothing else but -h."""
    fields = dataclasses.fields(GenerateConfig)
    want = {flag(f.name) for f in fields} | {"--no-" + flag(f.name)[2:] for f in fields if f.type == "bool"}
    got = {s for a in generate_parser()._actions for s in a.option_strings} - {"-h", "--help"}
    assert got == want


def test_generate_and_evaluate_share_the_generator_settings():
    """One field and one default for both: the files, the precision and the sampling."""
    shared = {f.name for cls in (GeneratorFiles, Sampling) for f in dataclasses.fields(cls)}
    assert {"base_model", "embedder", "beats", "lora", "dtype", "prompt", "steps", "guidance"} <= shared
    for cls in (GenerateConfig, EvalConfig):
        assert issubclass(cls, GeneratorFiles) and issubclass(cls, Sampling)
    gen = GenerateConfig(audio=["a.wav"])
    ev = EvalConfig(data="d", out="o")
    assert {n: getattr(gen, n) for n in shared} == {n: getattr(ev, n) for n in shared}
    assert ev.settings().steps == gen.steps == 50


def test_generate_options_need_no_torch():
    """`scripts/generate.sh --help` builds this parser with the system Python, before torch is installed."""
    code = ("import sys; sys.modules['torch'] = None\n"
            "from train.generate_config import build_parser\n"
            "print(build_parser().format_help())")
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--audio" in out.stdout and "--no-download" in out.stdout and precision.RULE.split(";")[0] in out.stdout


@pytest.mark.parametrize("parser, cls", COMMANDS)
def test_defaults_come_from_the_dataclass(parser, cls):
    required = {EvalConfig: {"data": "d", "out": "o"}, GenerateConfig: {"audio": ["a.wav"]}}.get(cls, {})
    argv = [x for k, v in required.items() for x in (flag(k), *([v] if isinstance(v, str) else v))]
    if cls is TrainConfig:
        got = train_config(argv)
    elif cls is EvalConfig:
        got = eval_config(argv)
    else:
        got = GenerateConfig(**given(parser().parse_args(argv), GenerateConfig))
    assert got == cls(**required)


def test_values_of_every_kind_reach_the_config():
    cfg = eval_config(["--data", "d", "--out", "o", "--rows", "audio,text", "--no-progress", "--cpu",
                       "--limit", "3", "--guidance", "2.5", "--split", "all", "--dtype", "bf16"])
    assert cfg.rows == ("audio", "text") and cfg.progress is False and cfg.cpu is True
    assert cfg.limit == 3 and cfg.guidance == 2.5 and cfg.split is None and cfg.dtype == "bf16"
    cfg = train_config(["--layers", "3,12", "--exclude", "a.txt", "b.txt", "--no-cache", "--mixed-precision", "fp32"])
    assert cfg.layers == (3, 12) and cfg.exclude == ["a.txt", "b.txt"] and cfg.cache is False
    args = generate_parser().parse_args(["--audio", "a.wav", "b.wav", "--seeds", "1", "2", "--no-download"])
    cfg = GenerateConfig(**given(args, GenerateConfig))
    assert cfg.audio == ["a.wav", "b.wav"] and cfg.seeds == [1, 2] and cfg.download is False


def test_precision_is_spelled_one_way_and_old_files_still_read():
    for parser in (train_parser(), eval_parser(), generate_parser()):
        for action in parser._actions:
            if action.dest in ("dtype", "cache_dtype", "mixed_precision"):
                assert tuple(action.choices) in (precision.NAMES, precision.CHOICES), action.dest
    with pytest.raises(SystemExit):
        eval_config(["--data", "d", "--out", "o", "--dtype", "float16"])
    # settings files written before the one spelling
    assert TrainConfig(mixed_precision="no", cache_dtype="float16").mixed_precision == "fp32"
    assert EvalConfig(data="d", out="o", dtype="float32").dtype == "fp32"


def test_required_settings_are_required():
    with pytest.raises(SystemExit):
        eval_config(["--data", "d"])


def test_a_field_without_option_is_refused():
    @dataclasses.dataclass
    class Bad:
        good: int = option(1, "fine")
        bad: int = 2

    with pytest.raises(TypeError, match="Bad.bad"):
        from train.options import add_options

        add_options(argparse.ArgumentParser(), Bad)
