"""The real ``gsnerf_node`` in a child process, with an rclpy client beside it.

:class:`NodeHarness` is the process orchestration that ``gsnerf-demo`` and the node latency
probe of ``gsnerf-bench --node`` share. It:
- evaluates launch/gsnerf.launch.py (through the launch shim, as ``ros2 launch`` would) and
  starts the node with extra ``-p name:=value`` parameters;
- creates a client node that follows ``/diagnostics`` and has a ``~/render_view`` client;
- spins until a condition holds, with a deadline and a check that the node is still alive;
- starts ``gsnerf_player`` and waits until every buffered keyframe is encoded;
- stops every child process on exit.
Logs go to ``<log_dir>/node.log`` and ``<log_dir>/player.log``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from gsnerf_ros.ros.compat.launch_shim import REPO_ROOT, evaluate, load_launch_description

__all__ = ["NodeHarness", "child_env", "stop_processes", "own_ros_domain"]


@contextmanager
def own_ros_domain() -> Iterator[None]:
    """A ROS domain of this run's own while the block runs (``domain_coordinator``, where it is
    installed and ``ROS_DOMAIN_ID`` is not set already), so other ROS users on this machine do
    not interfere; discovery limited to localhost unless the caller set otherwise."""
    reserved = None
    if "ROS_DOMAIN_ID" not in os.environ:
        try:
            from domain_coordinator import domain_id

            reserved = domain_id()
            os.environ["ROS_DOMAIN_ID"] = str(reserved.__enter__())
        except ImportError:
            pass
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    try:
        yield
    finally:
        if reserved is not None:
            reserved.__exit__(None, None, None)


def child_env() -> dict[str, str]:
    """Environment for child processes: this checkout importable, unbuffered output,
    localhost-only discovery over UDPv4 unless the caller set otherwise."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(REPO_ROOT), env.get("PYTHONPATH", "")] if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("FASTDDS_BUILTIN_TRANSPORTS", "UDPv4")
    return env


def stop_processes(procs: Sequence[subprocess.Popen], timeout: float = 15.0) -> None:
    """SIGINT every running process, wait up to ``timeout`` s in all, then kill the rest."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


class NodeHarness:
    """Context manager: ``gsnerf_node`` started from the launch file, plus a client node.

    ``params``: extra node parameters; ``deadline``: ``time.monotonic()`` value no wait may
    pass; ``error``: exception type raised on a timeout or when the node exits; ``poll``:
    seconds per ``spin_once`` while waiting. Attributes while open: ``client`` (rclpy Node),
    ``executor``, ``diag`` (latest gsnerf diagnostics key -> value), ``render_view`` (service
    client), ``procs`` (node first, then the player).
    """

    def __init__(self, checkpoint: str | Path, device: str, params: dict[str, Any],
                 workdir: Path, log_dir: Path, deadline: float,
                 error: type[Exception] = RuntimeError, client_name: str = "gsnerf_client",
                 poll: float = 0.05) -> None:
        self.checkpoint, self.device, self.params = str(checkpoint), device, params
        self.workdir, self.log_dir = Path(workdir), Path(log_dir)
        self.deadline, self.error, self.client_name, self.poll = deadline, error, client_name, poll
        self.procs: list[subprocess.Popen] = []
        self.client: Any = None
        self.diag: dict[str, str] = {}
        self._logs: dict[str, Any] = {}
        self._rclpy: Any = None
        self.watch: Callable[[], None] | None = None
        """Called on every spin while waiting; raises ``error`` to fail early with a cause."""

    @property
    def node_log(self) -> Path:
        return self.log_dir / "node.log"

    def __enter__(self) -> "NodeHarness":
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node

        from gsnerf_ros.ros.render_client import create_render_client

        desc = load_launch_description(REPO_ROOT / "launch" / "gsnerf.launch.py")
        nodes = evaluate(desc, {"checkpoint": self.checkpoint, "device": self.device,
                                "rviz": "false"}, tmpdir=self.workdir)
        gs = next(n for n in nodes if n.executable == "gsnerf_node")
        assert gs.command is not None
        cmd = list(gs.command) + sum((["-p", f"{k}:={v}"] for k, v in self.params.items()), [])
        self._logs = {n: open(self.log_dir / f"{n}.log", "w")  # noqa: SIM115
                      for n in ("node", "player")}
        self._rclpy = rclpy
        rclpy.init()
        try:
            self.procs.append(subprocess.Popen(cmd, env=child_env(), stdout=self._logs["node"],
                                               stderr=subprocess.STDOUT, cwd=str(REPO_ROOT)))
            self.client = Node(self.client_name)
            self.executor = SingleThreadedExecutor()
            self.executor.add_node(self.client)
            self.client.create_subscription(DiagnosticArray, "/diagnostics", lambda m: self.diag.update(
                {kv.key: kv.value for s in m.status if s.name.startswith("/gsnerf:")
                 for kv in s.values}), 10)
            self.render_view = create_render_client(self.client)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        stop_processes(self.procs)
        for f in self._logs.values():
            f.close()
        if self.client is not None:
            self.client.destroy_node()
            self.client = None
        if self._rclpy is not None:
            self._rclpy.try_shutdown()

    def spin_until(self, cond: Callable[[], bool], limit: float, what: str) -> None:
        """Spin the client until ``cond()``; raise ``error`` after ``limit`` s (or at the
        harness deadline) or when the node process exits."""
        deadline = min(time.monotonic() + limit, self.deadline)
        while not cond():
            if self.watch is not None:
                self.watch()
            if time.monotonic() > deadline:
                raise self.error(f"timed out waiting for {what} ({self.diagnostics_note()}); "
                                 f"see {self.node_log}")
            if self.procs[0].poll() is not None:
                raise self.error(f"the node exited with code {self.procs[0].returncode} while "
                                 f"waiting for {what}; see {self.node_log}")
            self.executor.spin_once(timeout_sec=self.poll)

    def diagnostics_note(self) -> str:
        """The node's last keyframe and frame counters from /diagnostics, for error messages
        (which stage a stalled run stopped at: frames not arriving, waiting for their pose, not
        becoming keyframes, not encoded)."""
        if not self.diag:
            return "no diagnostics from the node since the last wait began"
        keys = ("frames_received", "input_errors", "keyframes_added", "buffer_size",
                "encoded_keyframes", "provisional_keyframes", "pending_keyframes",
                "frames_waiting_for_pose", "frames_skipped_rate_cap")
        note = "node: " + ", ".join(f"{k}={self.diag[k]}" for k in keys if k in self.diag)
        last = self.diag.get("last_input_error")
        return note + (f", last input error: {last}" if last else "")

    def wait_for_service(self) -> None:
        self.spin_until(lambda: self.render_view.service_is_ready(), 180,
                        "the node's ~/render_view service")

    def start_player(self, args: Sequence[str]) -> subprocess.Popen:
        """``scripts/gsnerf_player`` with ``args`` (output to player.log)."""
        proc = subprocess.Popen([sys.executable, str(REPO_ROOT / "scripts" / "gsnerf_player"),
                                 *args], env=child_env(), stdout=self._logs["player"],
                                stderr=subprocess.STDOUT, cwd=str(REPO_ROOT))
        self.procs.append(proc)
        return proc

    def wait_until_encoded(self) -> int:
        """Wait for a fresh diagnostics message in which the buffer holds keyframes and all are
        encoded with all their neighbours (none provisional); returns the buffer size."""
        def all_encoded() -> bool:
            d = self.diag
            return bool(d) and int(d.get("buffer_size", 0)) > 0 and \
                d.get("buffer_size") == d.get("encoded_keyframes") and \
                d.get("provisional_keyframes", "0") == "0"
        self.diag.clear()
        self.spin_until(all_encoded, 600, "the keyframes to be encoded")
        return int(self.diag["buffer_size"])
