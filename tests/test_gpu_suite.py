"""`python -m benchmarks.gpu_suite`: its dry run reports every row on a CPU, and its guards turn failures into rows.

The dry run is what a device session relies on to spend its few GPU minutes on measuring, not debugging.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from benchmarks import gpu_suite

REPO = Path(__file__).resolve().parents[1]

# section -> the start of every measure it must report
EXPECTED = {
    "precision": ["fp16 BEATs vs fp32: token", "fp16 BEATs vs fp32: layer", "bf16 BEATs vs fp32: token",
                  "bf16 BEATs vs fp32: layer"],
    "latency": ["audio -> tokens (", "audio -> tokens: of which", "tokens -> CONDITIONING", "audio -> CONDITIONING"],
    "attention": ["BEATs extract_layers"] * 3,
    "trainer": ["(a) original recipe", "(b) ours", "ours / original"],
    "unet": ["UNet forward+backward", "achieved TFLOP/s", "share of bf16 peak"],
    "generate": ["one 32x32 picture"],
    "flux_step": ["Embedder training step", "peak GPU memory"],
    "qwen_image_step": ["Embedder training step", "peak GPU memory"],
    "suite": ["wall time"],
}


def table_rows(markdown: str) -> list[list[str]]:
    rows = [line.strip("|").split("|") for line in markdown.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]  # without the header


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite") / "gpu_suite.md"
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PATH"}  # the core path, same rows everywhere
    start = time.monotonic()
    # the budget is generous so a loaded CI machine still runs every section; the wall-time row tells the truth
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_suite", "--dry-run", "--budget-s", "300", "--out", str(out)],
                          capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    return proc, out, time.monotonic() - start


@pytest.mark.slow
def test_dry_run_reports_every_row_and_no_error(dry_run):
    proc, out, _ = dry_run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    markdown = out.read_text()
    assert markdown in proc.stdout  # the same table on stdout
    assert "GPU suite: CPU" in markdown and "DRY RUN" in markdown
    rows = table_rows(markdown)
    failed = [r for r in rows if r[1] in ("ERROR", "SKIPPED")]
    assert not failed, failed
    for section, measures in EXPECTED.items():
        found = [r[1] for r in rows if r[0] == section]
        for measure in measures:
            assert any(f.startswith(measure) for f in found), f"{section}: no '{measure}' row in {found}"
            found.remove(next(f for f in found if f.startswith(measure)))


@pytest.mark.slow
def test_dry_run_attention_variants_agree(dry_run):
    _, out, _ = dry_run
    attention = [r for r in table_rows(out.read_text()) if r[0] == "attention"]
    assert [r[1].rsplit(": ", 1)[1] for r in attention] == ["original", "before", "now"]
    for row in attention:
        diff = float(row[4].rsplit("max rel diff from now ", 1)[1])
        assert diff < 1e-4, row  # the golden fixtures' tolerance


@pytest.mark.slow
def test_dry_run_flow_steps_go_through_every_text_encoder(dry_run):
    """The tiny rows run the same family code as the 12B / 20B ones: Flux.1 reads CLIP-L (77) and T5 (512) into a
    512-token sequence, Qwen-Image its templated prompt; the loss is finite (the step checks every head's grad)."""
    _, out, _ = dry_run
    rows = {r[0]: r for r in table_rows(out.read_text()) if r[1].startswith("Embedder training step")}
    assert "text tokens in 77/512, 512 to the transformer" in rows["flux_step"][4]
    assert rows["flux_step"][4].startswith("flux: ") and rows["qwen_image_step"][4].startswith("qwen_image: ")
    for row in rows.values():
        assert "gradient checkpointing, batch 1" in row[4] and "loss nan" not in row[4], row


def test_full_size_rows_build_the_published_sizes_without_allocating():
    """On the meta device (no memory): Flux.1-dev's 11.9B transformer with CLIP-L and T5-XXL, Qwen-Image's 20.4B
    transformer with Qwen2.5-VL-7B, 2x2 patches of 16-channel latents, 8x VAEs, in bf16."""
    pytest.importorskip("diffusers")
    toks, _ = gpu_suite.flow_tokenizers(None)

    def count(module):
        return sum(p.numel() for p in module.parameters())

    flux = gpu_suite.build_flux(True, torch.device("meta"), torch.bfloat16, toks)
    assert round(count(flux.denoiser) / 1e9, 1) == 11.9 and flux.denoiser.config.guidance_embeds
    assert [round(count(t) / 1e9, 2) for t in flux.text_encoders] == [0.12, 4.76]
    qwen = gpu_suite.build_qwen_image(True, torch.device("meta"), torch.bfloat16, toks)
    assert round(count(qwen.denoiser) / 1e9, 1) == 20.4 and qwen.denoiser.config.num_layers == 60
    assert round(count(qwen.text_encoders[0]) / 1e9, 2) == 8.29 and qwen.widths == {"qwen25_7b": 3584}
    assert flux.widths == {"l": 768, "t5xxl": 4096}
    for family in (flux, qwen):
        assert family.vae_downsample == 8 and family.denoiser.config.in_channels == 64
        assert next(family.denoiser.parameters()).dtype == torch.bfloat16
    assert torch.get_default_dtype() == torch.float32  # the construction context restores it


def _ctx(needs: float = 0.0, left: float = 60.0):
    return SimpleNamespace(deadline=time.monotonic() + left, sizes=SimpleNamespace(needs_s={"s": needs}),
                           device=torch.device("cpu"))


def _run(fn, ctx) -> list:
    report = gpu_suite.Report(None, "test")
    gpu_suite.run_section("s", fn, ctx, report)
    return [(r.measure, r.value, r.note) for r in report.rows]


def test_a_failing_section_keeps_its_rows_and_reports_the_error():
    def fn(ctx):
        yield gpu_suite.Row("s", "first", "1")
        raise RuntimeError("boom | with a pipe")

    rows = _run(fn, _ctx())
    assert rows[0] == ("first", "1", "")
    assert rows[1][:2] == ("ERROR", "-") and "boom / with a pipe" in rows[1][2]


def test_a_section_that_cannot_fit_is_skipped_without_running():
    ran = []
    rows = _run(lambda ctx: ran.append(1) or [], _ctx(needs=10, left=5))
    assert not ran and rows[0][0] == "SKIPPED" and "time budget" in rows[0][2]


def test_a_section_that_overruns_the_budget_is_stopped():
    def fn(ctx):
        time.sleep(5)
        yield gpu_suite.Row("s", "never", "-")

    start = time.monotonic()
    rows = _run(fn, _ctx(left=0.3))
    assert time.monotonic() - start < 3
    assert rows[0][0] == "ERROR" and "OutOfTime" in rows[0][2]


def test_a_section_that_lacks_a_package_says_so():
    def fn(ctx):
        raise gpu_suite.Skip("diffusers not installed")
        yield

    assert _run(fn, _ctx()) == [("SKIPPED", "-", "diffusers not installed")]


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H200", 989.5), ("NVIDIA H200 NVL", 835.5), ("NVIDIA GH200 480GB", 989.5),
    ("NVIDIA H100 80GB HBM3", 989.5), ("NVIDIA H100 PCIe", 756.5), ("NVIDIA A100-SXM4-80GB", 312.0),
    ("NVIDIA L40S", 362.05), ("NVIDIA L40", 181.05), ("NVIDIA L4", 121.0), ("NVIDIA GeForce RTX 4090", 165.2),
    ("Tesla T4", None), ("Tesla V100-SXM2-16GB", None),
])
def test_bf16_peaks_match_the_most_specific_name(name, peak):
    assert gpu_suite.bf16_peak(name) == peak
