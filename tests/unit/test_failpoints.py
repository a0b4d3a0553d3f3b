"""Failpoints: arming syntax, hit counting, the no-op when unarmed, and a real SIGKILL from the environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from localrag import failpoints
from localrag.failpoints import ENV, POINTS, Failpoints, parse

REPO = Path(__file__).resolve().parents[2]


def test_parse_reads_names_counts_and_lists() -> None:
    assert parse("") == {} and parse(" , ") == {}
    assert parse("store.write.after_commit=3") == {"store.write.after_commit": 3}
    assert parse(" engine.after_apply , index.save.before_replace=12 ") == {
        "engine.after_apply": 1,
        "index.save.before_replace": 12,
    }


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("store.write.after_comit=1", "unknown failpoint 'store.write.after_comit'"),
        ("engine.after_apply=x", "must be an integer"),
        ("engine.after_apply=0", "counts from 1"),
        ("engine.after_apply=-2", "counts from 1"),
        ("engine.after_apply=1,engine.after_apply=2", "armed twice"),
    ],
)
def test_parse_refuses_what_would_never_fire(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse(spec)


def test_an_armed_point_fires_on_its_nth_hit_only() -> None:
    kills: list[int] = []
    points = Failpoints({"store.write.after_commit": 3}, kill=lambda: kills.append(points.hits(name)))
    name = "store.write.after_commit"
    for _ in range(2):
        points.hit(name)
    assert kills == [] and points.hits(name) == 2
    points.hit(name)
    assert kills == [3]
    for _ in range(5):  # a kill that did not end the process does not repeat
        points.hit(name)
    assert kills == [3] and points.hits(name) == 8


def test_unarmed_points_are_not_counted_and_never_fire() -> None:
    kills: list[str] = []
    points = Failpoints({"engine.after_apply": 1}, kill=lambda: kills.append("killed"))
    for name in sorted(POINTS - {"engine.after_apply"}):
        points.hit(name)
        assert points.hits(name) == 0
    points.hit("not.a.point")
    assert kills == []
    nothing = Failpoints({}, kill=lambda: kills.append("killed"))
    for name in sorted(POINTS):
        nothing.hit(name)
    assert kills == []


def test_this_test_process_has_nothing_armed() -> None:
    assert ENV not in os.environ
    failpoints.hit("store.write.after_commit")  # returns: nothing is armed here


def _child(spec: str, code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), ENV: spec}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)


def test_the_environment_arms_a_real_sigkill() -> None:
    code = (
        "from localrag import failpoints\n"
        "for i in range(1, 6):\n"
        "    failpoints.hit('engine.after_apply')\n"
        "    print('survived', i, flush=True)\n"
    )
    result = _child("engine.after_apply=3", code)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert result.stdout.split("\n")[:-1] == ["survived 1", "survived 2"]


def test_a_misspelt_point_fails_the_import_loudly() -> None:
    result = _child("store.write.aftercommit=1", "import localrag.failpoints")
    assert result.returncode == 1 and "unknown failpoint 'store.write.aftercommit'" in result.stderr
