"""The fan-out benchmark at a smoke size: every delivery made, for liveblog and the peer.

No time is asserted here (times are the benchmark's business, `make bench`); this keeps the
benchmark itself working: servers start, readers connect and subscribe, updates arrive.
"""

from __future__ import annotations

import shutil

import pytest

from bench.fanout import measure_round, report
from tests.conftest import skip_unless_ci

pytestmark = pytest.mark.slow  # the benchmark starts servers and readers of its own

READERS, POSTS = 50, 2


def smoke(tmp_path, mode: str, processes: int = 1):
    result = measure_round(tmp_path, mode, READERS, POSTS, 0.2, None, None, processes)
    assert result.failed == 0
    assert result.connected == READERS
    assert len(result.delays) == result.expected == READERS * POSTS
    assert all(delay > 0 for delay in result.delays)
    return result


@pytest.mark.parametrize("processes", [1, 2])
def test_liveblog_round_delivers_everything(tmp_path, processes):
    smoke(tmp_path, "gevent-websocket", processes)


def test_peer_round_delivers_everything_and_the_table_compares(tmp_path):
    if shutil.which("node") is None or shutil.which("npm") is None:
        skip_unless_ci("the benchmark's peer needs Node.js and npm")
    ours, peer = smoke(tmp_path, "gevent-websocket"), smoke(tmp_path, "peer")
    table = report([(ours, peer)])
    assert f"| {READERS * POSTS}/{READERS * POSTS}" in table.replace("  ", " ")


def test_the_flood_benchmark_runs_and_sees_the_flooder_closed(capsys):
    from bench import flood

    flood.main(["--events", "3000", "--after", "0.5"])
    printed = capsys.readouterr().out
    assert "flooding connection closed by the server: yes" in printed
    assert "reader waited" in printed
