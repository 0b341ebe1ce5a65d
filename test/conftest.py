"""Shared pytest set-up: DDS isolation for every test process, and common fixtures.

Each pytest process reserves its own ROS_DOMAIN_ID (via ros-domain-coordinator, which holds a
socket per id so concurrent test runs on one machine never share a domain) and restricts
discovery to localhost; child processes started by tests inherit the environment. The
``ros_domain`` fixture reserves a fresh id for a single test when it needs one of its own.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# Shared-memory transport leaves /dev/shm segments behind when a process is killed.
os.environ["FASTDDS_BUILTIN_TRANSPORTS"] = "UDPv4"
os.environ.setdefault("RCUTILS_COLORIZED_OUTPUT", "0")


class _RandomStart:
    """Domain-id selector starting at a random id, so parallel runs rarely probe the same ids."""

    def __init__(self) -> None:
        self._value = random.Random(os.getpid()).randrange(100)

    def __call__(self) -> int:
        value = (self._value % 100) + 1
        self._value += 1
        return value


def _reserve_domain() -> tuple[contextlib.AbstractContextManager, int] | None:
    try:
        from domain_coordinator import domain_id
    except ImportError:  # pragma: no cover - only without the ROS wheels
        return None
    cm = domain_id(_RandomStart())
    return cm, cm.__enter__()


_SESSION_DOMAIN = _reserve_domain()
if _SESSION_DOMAIN is not None:
    os.environ["ROS_DOMAIN_ID"] = str(_SESSION_DOMAIN[1])


@pytest.fixture
def ros_domain(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """A ROS_DOMAIN_ID reserved for this test alone (set in os.environ for children too)."""
    reserved = _reserve_domain()
    if reserved is None:
        pytest.skip("ros-domain-coordinator is not installed (no ROS wheels)")
    cm, dom = reserved
    monkeypatch.setenv("ROS_DOMAIN_ID", str(dom))
    try:
        yield dom
    finally:
        cm.__exit__(None, None, None)


@pytest.fixture
def child_env() -> dict[str, str]:
    """Environment for child processes: this process's DDS isolation + the repo on PYTHONPATH."""
    from gsnerf_ros.ros.tools.node_harness import child_env as make_child_env

    return make_child_env()



@pytest.fixture(scope="session")
def rooms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`helpers.rooms.write_small_rooms`, made once per test process; tests only read it."""
    from helpers.rooms import write_small_rooms

    return write_small_rooms(tmp_path_factory.mktemp("rooms"))
