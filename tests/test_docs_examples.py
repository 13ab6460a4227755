"""The docs cannot drift: every example in README.md and docs/*.md runs here on tiny stand-ins or says why not,
and every table of docs/benchmarks.md says where it was measured.

Each fenced ```python / ```bash / ```sh / ```shell / ```console block has, on the line just before it, one of

    <!-- example: run SETUP -->          run here as written, in a folder that SETUP (below) fills with stand-ins
    <!-- example: not run: REASON -->

(`grep -rn "example: not run" README.md docs` lists what is not run, and why). Other fences name what they hold
(`text`, `mermaid`); shell examples in indented code blocks are refused, so none escapes the runner.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch

from benchmarks import provenance

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
EXAMPLE_LANGUAGES = {"python", "bash", "sh", "shell", "console"}
FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
MARKER = re.compile(r"^\s*<!-- example: (?:run (?P<setup>[\w-]+)|not run: (?P<reason>\S.*?)) -->\s*$")
INDENTED_COMMAND = re.compile(r"^ {4,}(\$ |python3? |bash |sh |git |pip |accelerate |torchrun |audiotoken-|cd )")


@dataclass
class Block:
    file: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str
    marker: str | None  # the line before the fence

    @property
    def id(self) -> str:
        return f"{self.file.relative_to(REPO)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence = opening.group(1)
        end = next((j for j in range(i + 1, len(lines)) if lines[j].strip().startswith(fence)), len(lines))
        marker = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), None)
        indent = len(lines[i]) - len(lines[i].lstrip())
        text = "\n".join(x[indent:] if x[:indent].isspace() else x for x in lines[i + 1:end]) + "\n"
        blocks.append(Block(path, i + 1, opening.group(2).lower(), text, marker))
        i = end + 1
    return blocks


def outside_fences(path: Path):
    """(line number, line) of every line not inside a fenced block."""
    inside = None
    for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        opening = FENCE.match(text)
        if inside is None and opening:
            inside = opening.group(1)
        elif inside is not None and text.strip().startswith(inside):
            inside = None
        elif inside is None:
            yield n, text


EXAMPLES = [b for path in DOCS for b in fenced_blocks(path) if b.language in EXAMPLE_LANGUAGES]
RUN = [b for b in EXAMPLES if b.marker and (m := MARKER.match(b.marker)) and m["setup"]]


def test_every_example_is_run_or_says_why_not():
    assert len(EXAMPLES) > 10  # the collector finds the examples at all
    unmarked = [b.id for b in EXAMPLES if not (b.marker and MARKER.match(b.marker))]
    assert not unmarked, f"mark each with <!-- example: run SETUP --> or <!-- example: not run: REASON -->: {unmarked}"
    unknown = [(b.id, MARKER.match(b.marker)["setup"]) for b in RUN if MARKER.match(b.marker)["setup"] not in SETUPS]
    assert not unknown, f"no such setup in {Path(__file__).name}: {unknown}"


def test_every_fence_names_its_language_and_no_command_hides_in_an_indented_block():
    untagged = [b.id for path in DOCS for b in fenced_blocks(path) if not b.language]
    assert not untagged, f"name the language of each fence (```text for output): {untagged}"
    indented = []
    for path in DOCS:
        before = ""
        for n, text in outside_fences(path):
            if not before.strip() and INDENTED_COMMAND.match(text):
                indented.append(f"{path.relative_to(REPO)}:{n}")
            before = text
    assert not indented, f"put these commands in a fenced, marked block: {indented}"


# ---- the setups: a folder of stand-ins at the names the examples use, and what to check after the run ----

@dataclass
class Stage:
    cwd: Path
    env: dict[str, str] = field(default_factory=dict)
    names: dict = field(default_factory=dict)  # the Python example's given variables
    check: Callable[[dict], None] = lambda ns: None  # ns: the Python example's names, or {"stdout": ...}


BEATS_DIM = 32
EMBEDDER_BIN = "embedder_learned_embeds.bin"
BEATS_PT = "BEATs_iter3_plus_AS2M_finetuned_on_AS2M_cpt2.pt"


def official_files(folder_embedder: Path, folder_beats: Path) -> None:
    """Tiny files in the official formats under the official names: a pickled `FGAEmbedder` state (2304 -> 768
    becomes 96 -> 768) and a BEATs `.pt` (12 layers, 32 wide)."""
    from factories.embedder import write_tiny_official_embedder
    from testkit.beats import write_tiny_official_beats

    write_tiny_official_embedder(folder_embedder / EMBEDDER_BIN, in_dim=3 * BEATS_DIM)
    write_tiny_official_beats(folder_beats / BEATS_PT, layers=12, dim=BEATS_DIM, heads=4)


def checkout(dest: Path) -> Path:
    """A stand-in clone of this repository: a folder of links to its top-level entries."""
    dest.mkdir(parents=True)
    for entry in REPO.iterdir():
        if not entry.name.startswith("."):
            (dest / entry.name).symlink_to(entry)
    return dest


def comfyui(tmp: Path, _: ExitStack) -> Stage:
    """A ComfyUI folder: the pack in custom_nodes/, the official files in models/."""
    checkout(tmp / "ComfyUI" / "custom_nodes" / "comfyui-audiotoken")
    models = tmp / "ComfyUI" / "models"
    official_files(models / "audiotoken", models / "audio_encoders")

    def check(_):
        from audiotoken_core.beats import load_beats
        from audiotoken_core.embedder import load_embedder

        made = sorted(models.rglob("*.safetensors"))
        assert [p.parent.name for p in made] == ["audio_encoders", "audiotoken"], made
        assert load_beats(made[0]).embed_dim == BEATS_DIM and load_embedder(made[1]).widths == {"l": 768}
    return Stage(tmp, check=check)


def clone(tmp: Path, _: ExitStack) -> Stage:
    """The clone root, the package installed as it is after `pip install -e .` (console scripts on PATH)."""
    def check(ns):
        assert "usage:" in ns["stdout"] and "--base-model" in ns["stdout"]
    return Stage(checkout(tmp / "comfyui-audiotoken"), check=check)


def fresh_machine(tmp: Path, stack: ExitStack) -> Stage:
    """A clone and a sound on a machine with no models: a local mirror serves stand-ins of every official file
    (and a tiny SD1.5-layout diffusers folder on the Hub's routes) to an empty cache."""
    for module in ("diffusers", "av", "tqdm", "PIL"):  # what generate.sh needs of the venv, else it makes one
        pytest.importorskip(module)
    from audiotoken_core import sources
    from factories.embedder import write_tiny_embedder
    from factories.media import write_wav
    from factories.mirror import official_mirror
    from testkit.beats import write_tiny_official_beats
    from testkit.sd import SD1_WIDTH, write_tiny_sd

    root = checkout(tmp / "comfyui-audiotoken")
    stand = tmp / "stand_ins"
    sd = write_tiny_sd(stand / "sd", "sd1")
    # our format under the official name: an official-layout embedder would need a 768-wide CLIP
    write_tiny_embedder(stand / EMBEDDER_BIN, in_dim=3 * BEATS_DIM, widths={"l": SD1_WIDTH})
    write_tiny_official_beats(stand / BEATS_PT, layers=12, dim=BEATS_DIM, heads=4)
    mirror = official_mirror({n: (stand / n).read_bytes() for n in (EMBEDDER_BIN, BEATS_PT)},
                             (EMBEDDER_BIN, BEATS_PT), tmp / "pins.json")
    stack.callback(mirror.stop)
    mirror.add_repo(sources.find("stable-diffusion-v1-5").hf_repo,
                    {p.relative_to(sd).as_posix(): p.read_bytes() for p in sd.rglob("*") if p.is_file()})
    write_wav(root / "dog.wav", seconds=2.0, rate=22050, freq=330.0)
    env = {"AUDIOTOKEN_DOWNLOAD_MIRROR": mirror.url, "AUDIOTOKEN_DOWNLOAD_PINS": str(mirror.pins),
           "HF_ENDPOINT": mirror.url, "HF_HUB_OFFLINE": "0", "HF_HOME": str(tmp / "hf_home"),
           "AUDIOTOKEN_CACHE": str(tmp / "cache"), "AUDIOTOKEN_VENV": sys.prefix,
           "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}

    def check(_):
        assert (root / "out" / "dog_seed0.png").read_bytes()[:4] == b"\x89PNG"
        assert (tmp / "cache" / BEATS_PT).is_file()
    return Stage(root, env=env, check=check)


def library(tmp: Path, _: ExitStack) -> Stage:
    """The official files in the working folder, and two 3 s stereo sounds at 22.05 kHz as `waveform`."""
    from audiotoken_core.pipeline import Encoded

    official_files(tmp, tmp)
    waveform = torch.randn(2, 2, 3 * 22050, generator=torch.Generator().manual_seed(0)) * 0.1

    def check(ns):
        assert isinstance(ns["encoded"], Encoded)
        assert ns["tokens"].shape == (2, 1, 768)  # what the example's comment says
    return Stage(tmp, names={"waveform": waveform, "sample_rate": 22050}, check=check)


SETUPS = {"comfyui": comfyui, "clone": clone, "fresh-machine": fresh_machine, "library": library}


def installed_as_editable(tmp: Path) -> str:
    """A path entry under which `audiotoken_core` and `audiotoken_train` are this checkout, as after
    `pip install -e .` here, whatever checkout the venv's own editable install points at."""
    site = tmp / "site"
    site.mkdir()
    (site / "audiotoken_core").symlink_to(REPO / "audiotoken_core")
    (site / "audiotoken_train").symlink_to(REPO / "train")
    return str(site)


def shell_script(block: Block) -> str:
    if block.language != "console":
        return block.text
    return "".join(x[2:] + "\n" for x in block.text.splitlines() if x.startswith("$ "))


SLOW = {"fresh-machine"}  # a whole generate.sh run: its venv check, diffusers, 30 steps (10-20 s)


@pytest.mark.parametrize("block", [
    pytest.param(b, id=b.id, marks=[pytest.mark.slow] if MARKER.match(b.marker)["setup"] in SLOW else [])
    for b in RUN])
def test_example_runs(block, tmp_path, monkeypatch, one_thread):
    with ExitStack() as stack:
        stage = SETUPS[MARKER.match(block.marker)["setup"]](tmp_path / "work", stack)
        if block.language == "python":
            monkeypatch.chdir(stage.cwd)
            for key, value in stage.env.items():
                monkeypatch.setenv(key, value)
            script = tmp_path / "example.py"
            script.write_text(block.text, encoding="utf-8")
            stage.check(runpy.run_path(str(script), init_globals=stage.names, run_name="__main__"))
            return
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AUDIOTOKEN_", "HF_", "HUGGINGFACE_")) and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        # one thread: tiny models are dispatch-bound, and a second thread on a shared CPU doubles their time
        env.update({"PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                    "PYTHONPATH": installed_as_editable(tmp_path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
                    **stage.env})
        proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", shell_script(block)], cwd=stage.cwd, env=env,
                              capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"{block.id} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-6000:]}"
        stage.check({"stdout": proc.stdout})


# ---- docs/benchmarks.md: every table says what measured it, where and when ----

NO_MEASUREMENT = re.compile(r"<!-- no measurement: \S.*? -->")


def tables(path: Path) -> list[tuple[int, list[str]]]:
    """(line of the header row, the lines since the previous table or heading) for each Markdown table."""
    lines = list(outside_fences(path))
    found, since = [], []
    for k, (n, text) in enumerate(lines):
        is_row = text.lstrip().startswith("|")
        starts = is_row and k + 1 < len(lines) and re.match(r"^\s*\|[\s:|-]*-[\s:|-]*$", lines[k + 1][1]) \
            and not (k and lines[k - 1][1].lstrip().startswith("|"))
        if starts:
            found.append((n, since))
            since = []
        elif text.startswith("#"):
            since = []
        elif not is_row:
            since.append(text)
    return found


def benchmark_exists(command: str) -> bool:
    words = [w for w in command.split() if "=" not in w or w.startswith("-")]
    if words[:2] == ["python", "-m"]:
        module = REPO.joinpath(*words[2].split("."))
        return module.with_suffix(".py").is_file() or (module / "__main__.py").is_file()
    return words[0] == "python" and (REPO / words[1]).is_file()


def test_every_benchmark_table_names_commit_date_machine_and_benchmark():
    path = REPO / "docs" / "benchmarks.md"
    found = tables(path)
    git = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True, text=True)
    full_history = git.returncode == 0 and git.stdout.strip() == "false"
    assert len(found) > 10
    problems = []
    for n, since in found:
        text = " ".join(since)
        lines = list(provenance.PATTERN.finditer(text))
        if NO_MEASUREMENT.search(text) and not lines:
            continue
        if len(lines) != 1:
            problems.append(f"line {n}: {len(lines)} 'Measured at commit ...' lines above the table (want 1, or "
                            "<!-- no measurement: REASON --> for a table of no figures)")
            continue
        m = lines[0]
        if m["dirty"].strip():
            problems.append(f"line {n}: measured on uncommitted changes ({m['dirty'].strip()})")
        if not benchmark_exists(m["command"]):
            problems.append(f"line {n}: no benchmark {m['command']!r} in this checkout")
        if full_history and subprocess.run(["git", "cat-file", "-e", f"{m['commit']}^{{commit}}"], cwd=REPO,
                                           capture_output=True).returncode:
            problems.append(f"line {n}: no commit {m['commit']} in this repository's history")
    assert not problems, "\n".join(problems)


def test_a_benchmark_prints_the_line_that_test_reads():
    line = provenance.line((1, 2), argv=["benchmarks/bench_encode.py", "--threads", "1", "2"])
    m = provenance.PATTERN.search(line)
    assert m, line
    assert "1 and 2 torch threads" in m["machine"] and m["command"].endswith("--threads 1 2")
