"""The Model Loader's precision: the pack's one rule (`audiotoken_core.precision`) fed the host's own answers."""

from __future__ import annotations

import pytest

from host_env import COMFYUI_PATH, SKIP_REASON

if not COMFYUI_PATH:
    pytest.skip(SKIP_REASON, allow_module_level=True)

pytestmark = [pytest.mark.host]

import torch  # noqa: E402

from inprocess import pack_module  # noqa: E402

CUDA = torch.device("cuda")  # a device object needs no GPU: the host's answers are faked


@pytest.fixture
def host(monkeypatch):
    """Set what the host says about the device: `host(bf16=..., fp16=..., force_fp16=...)`."""
    runtime = pack_module("runtime")
    mm = runtime.mm

    def answer(bf16: bool, fp16: bool, force_fp16: bool = False):
        monkeypatch.setattr(mm, "should_use_bf16", lambda device=None, **_: bf16)
        monkeypatch.setattr(mm, "should_use_fp16", lambda device=None, **_: fp16)
        monkeypatch.setattr(mm.args, "force_fp16", force_fp16)
        return runtime.pick_dtype

    return answer


def test_auto_is_bf16_first_by_the_hosts_answers(host):
    assert host(bf16=True, fp16=True)("auto", CUDA) == torch.bfloat16
    assert host(bf16=False, fp16=True)("auto", CUDA) == torch.float16
    assert host(bf16=False, fp16=False)("auto", CUDA) == torch.float32  # --force-fp32: the host says no to both
    # --force-fp16: the host still says bf16 works, but the user asked for fp16
    assert host(bf16=True, fp16=True, force_fp16=True)("auto", CUDA) == torch.float16


def test_names_and_the_cpu(host):
    pick = host(bf16=True, fp16=True)
    assert [pick(n, CUDA) for n in ("fp32", "fp16", "bf16")] == [torch.float32, torch.float16, torch.bfloat16]
    assert pick("auto", torch.device("cpu")) == torch.float32 and pick("fp16", torch.device("cpu")) == torch.float32
    with pytest.raises(ValueError, match="unknown precision"):
        pick("fp8", CUDA)


def test_the_tooltip_states_the_rule(folders):
    from audiotoken_core.precision import CHOICES, RULE

    schema = pack_module("model_loader").AudioTokenModelLoader.define_schema()
    combo = next(i for i in schema.inputs if i.id == "precision")
    assert list(combo.options) == list(CHOICES) and RULE in combo.tooltip
