"""Print one line per test run (each leg's core run, each host) and a closing total, from pytest's JUnit XML
reports. scripts/test.sh writes next to each NAME.xml a NAME.json with the run's label, torch and torchaudio
versions and wall seconds; a report without one is still counted, under its file name."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def counts(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    total["passed"] = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    return total


def describe(path: Path) -> tuple[str, str]:
    """(label, "torch X, torchaudio Y|none, N.N min") for one report."""
    note = path.with_suffix(".json")
    if not note.is_file():
        return path.stem, "torch ?"
    meta = json.loads(note.read_text())
    audio = f"torchaudio {meta['torchaudio']}" if meta.get("torchaudio") else "no torchaudio"
    return meta["label"], f"torch {meta['torch']}, {audio}, {meta['seconds'] / 60:.1f} min"


def main(paths: list[str]) -> int:
    runs = [(Path(p), counts(Path(p))) for p in paths if Path(p).is_file()]
    if not runs:
        print("no test reports were written")
        return 1
    rows = [(*describe(path), c) for path, c in runs]
    width = max(len(label) for label, _, _ in rows)
    for label, env, c in rows:
        print(f"{label:>{width}}: {c['passed']} passed, {c['failures'] + c['errors']} failed, {c['skipped']} skipped"
              f"  ({env})")
    t = {k: sum(c[k] for _, c in runs) for k in ("passed", "failures", "errors", "skipped")}
    minutes = sum(json.loads(p.with_suffix(".json").read_text())["seconds"]
                  for p, _ in runs if p.with_suffix(".json").is_file()) / 60
    print(f"total: {t['passed']} passed, {t['failures'] + t['errors']} failed, {t['skipped']} skipped"
          f"  ({minutes:.1f} min in pytest runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
