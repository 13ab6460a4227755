"""The one precision rule (`audiotoken_core.precision`) that the nodes, the trainer, generate and evaluate ask."""

from __future__ import annotations

import pytest
import torch

from audiotoken_core import precision

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # a device object needs no GPU; the answers are faked


@pytest.mark.parametrize("requested, want", [("auto", "fp32"), ("fp32", "fp32"), ("fp16", "fp32"), ("bf16", "bf16"),
                                             ("float16", "fp32"), ("no", "fp32"), ("bfloat16", "bf16")])
def test_the_cpu(requested, want):
    assert precision.resolve(requested, CPU) == want
    # whatever a host says about the CPU, auto stays fp32 there
    assert precision.resolve(requested, "cpu", bf16_ok=True, fp16_ok=True) == want


@pytest.mark.parametrize("bf16_ok, fp16_ok, want", [(True, True, "bf16"), (False, True, "fp16"), (False, False, "fp32"),
                                                    (True, False, "bf16")])
def test_auto_on_an_accelerator_is_bf16_first(bf16_ok, fp16_ok, want):
    assert precision.resolve("auto", CUDA, bf16_ok=bf16_ok, fp16_ok=fp16_ok) == want


def test_a_name_is_that_precision_on_an_accelerator():
    for name in precision.NAMES:
        assert precision.resolve(name, CUDA, bf16_ok=False, fp16_ok=False) == name
    assert precision.resolve_dtype("float16", CUDA) == torch.float16


def test_without_the_hosts_answers_torch_is_asked(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    asked = []

    def bf16(including_emulation=True):
        asked.append(including_emulation)
        return supported

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", bf16)
    supported = True
    assert precision.resolve("auto", CUDA) == "bf16"
    supported = False
    assert precision.resolve("auto", CUDA) == "fp16"
    assert asked == [False, False]  # emulated bf16 (older GPUs) is slower than fp16: not counted
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)  # torch without including_emulation
    assert precision.resolve("auto", CUDA) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert precision.resolve("auto", CUDA) == "fp16"


def test_names_dtypes_and_refusals():
    assert precision.CHOICES == ("auto", *precision.NAMES)
    for name in precision.NAMES:
        assert precision.name_of(precision.torch_dtype(name)) == name
    for bad in ("fp8", "half", "AUTO"):
        with pytest.raises(ValueError, match="unknown precision"):
            precision.resolve(bad, CUDA)
    with pytest.raises(ValueError, match="unknown precision"):
        precision.torch_dtype("auto")  # resolve it first

