"""Print one line per test run (core, each host) and a closing total, from pytest's JUnit XML reports."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def counts(path: Path) -> dict[str, int]:
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    total["passed"] = total["tests"] - total["failures"] - total["errors"] - total["skipped"]
    return total


def main(paths: list[str]) -> int:
    runs = {Path(p).stem: counts(Path(p)) for p in paths if Path(p).is_file()}
    if not runs:
        print("no test reports were written")
        return 1
    for name, c in runs.items():
        label = "core" if name == "core" else f"ComfyUI {name.removeprefix('host-')}"
        print(f"{label:>16}: {c['passed']} passed, {c['failures'] + c['errors']} failed, {c['skipped']} skipped")
    t = {k: sum(c[k] for c in runs.values()) for k in ("passed", "failures", "errors", "skipped")}
    print(f"total: {t['passed']} passed, {t['failures'] + t['errors']} failed, {t['skipped']} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
