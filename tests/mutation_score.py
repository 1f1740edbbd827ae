"""The score of `make mutate`, per module: mutants, killed, survived, and each survivor's name.

Reads what mutmut left in mutants/ for the mutants named on the command line (patterns as
given to `mutmut run`), and fails when a module kills fewer than MIN_SCORE of its mutants.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from collections import defaultdict
from pathlib import Path

MIN_SCORE = 85.0
# mutmut's exit codes: a failing test run kills; a timeout is a kill too (the mutant hung).
KILLED = {1, 3, 24, -24, 36, 152, 255}
SURVIVED = {0}


def main(patterns: list[str]) -> int:
    results: dict[str, int | None] = {}
    for meta in sorted(Path("mutants").rglob("*.py.meta")):
        results.update(json.loads(meta.read_text())["exit_code_by_key"])
    by_module: dict[str, list[tuple[str, int | None]]] = defaultdict(list)
    for name, code in results.items():
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            by_module[name.split(".x")[0]].append((name, code))
    failing = []
    print(f"{'module':<24} {'mutants':>7} {'killed':>7} {'survived':>8} {'score':>7}")
    for module, found in sorted(by_module.items()):
        killed = sum(code in KILLED for _, code in found)
        score = 100.0 * killed / len(found)
        print(f"{module:<24} {len(found):>7} {killed:>7} {len(found) - killed:>8} {score:>6.1f}%")
        if score < MIN_SCORE:
            failing.append(module)
    for found in by_module.values():
        for name, code in found:
            if code not in KILLED:
                status = "survived" if code in SURVIVED else f"not killed (exit code {code})"
                print(f"  {status}: {name}   (mutmut show '{name}')")
    if failing:
        print(f"below {MIN_SCORE:.0f}% killed: {', '.join(failing)}")
    return 1 if failing or not by_module else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
