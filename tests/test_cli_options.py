"""The trainer's and evaluate's command lines are their settings dataclasses: a flag per field, a field per flag."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from train.cli import build_parser as train_parser
from train.cli import config_from_args as train_config
from train.config import TrainConfig
from train.evaluate.cli import build_parser as eval_parser
from train.evaluate.cli import config_from_args as eval_config
from train.evaluate.config import EvalConfig
from train.options import flag, option
from train.precision import PRECISIONS

# Options that are about the command itself, not a setting.
COMMAND_ONLY = {"help", "config"}


def _dests(parser: argparse.ArgumentParser) -> set[str]:
    return {a.dest for a in parser._actions} - COMMAND_ONLY


@pytest.mark.parametrize("parser, cls", [(train_parser, TrainConfig), (eval_parser, EvalConfig)])
def test_every_field_has_a_flag_and_every_flag_a_field(parser, cls):
    p = parser()
    assert _dests(p) == {f.name for f in dataclasses.fields(cls)}
    flags = {s for a in p._actions for s in a.option_strings}
    for f in dataclasses.fields(cls):
        assert flag(f.name) in flags
        assert f.metadata["help"], f"{cls.__name__}.{f.name} has no help text"


@pytest.mark.parametrize("parser, cls", [(train_parser, TrainConfig), (eval_parser, EvalConfig)])
def test_defaults_come_from_the_dataclass(parser, cls):
    required = {"data": "d", "out": "o"} if cls is EvalConfig else {}
    argv = [x for k, v in required.items() for x in (flag(k), v)]
    got = (eval_config if cls is EvalConfig else train_config)(argv)
    assert got == cls(**required)


def test_values_of_every_kind_reach_the_config():
    cfg = eval_config(["--data", "d", "--out", "o", "--rows", "audio,text", "--no-progress", "--cpu",
                       "--limit", "3", "--guidance", "2.5", "--split", "all", "--dtype", "bf16"])
    assert cfg.rows == ("audio", "text") and cfg.progress is False and cfg.cpu is True
    assert cfg.limit == 3 and cfg.guidance == 2.5 and cfg.split is None and cfg.dtype == "bf16"
    cfg = train_config(["--layers", "3,12", "--exclude", "a.txt", "b.txt", "--no-cache", "--mixed-precision", "fp32"])
    assert cfg.layers == (3, 12) and cfg.exclude == ["a.txt", "b.txt"] and cfg.cache is False


def test_precision_is_spelled_one_way_and_old_files_still_read():
    for parser in (train_parser(), eval_parser()):
        for action in parser._actions:
            if action.dest in ("dtype", "cache_dtype", "mixed_precision"):
                assert set(action.choices) - {"auto"} == set(PRECISIONS), action.dest
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
