"""The page benchmark in a smoke size: it runs end to end and every reader gets everything.

Times are printed, never asserted (a shared machine makes them noise); what is asserted is
what must hold at any speed.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import skip_unless_ci
from tests.liveserver import ROOT

pytestmark = pytest.mark.slow  # the benchmark starts servers and readers of its own


@pytest.mark.timeout(240)
def test_page_benchmark_smoke():
    run = subprocess.run(
        [sys.executable, "-m", "bench.pages", "--smoke", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=220,
    )  # fmt: skip
    print(run.stdout)
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    page, crowd = figures["page"], figures["crowd"]
    assert page["updates_on_page"] == 21  # the pinned one and the newest 20, of 300
    assert page["page_bytes"] < 100 * 1024
    assert crowd["arrived"] == crowd["readers"] == 40 and crowd["errors"] == []
    assert crowd["complete"] == 40  # every reader: the page, then every update posted
    assert crowd["updates_posted"] >= 2
    if "wrk not found" in run.stdout:
        skip_unless_ci("the page benchmark's request rates need wrk (Debian package: wrk)")
    assert "| story page" in run.stdout
