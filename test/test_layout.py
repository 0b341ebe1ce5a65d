"""The package layout keeps its layering rules (static: reads the sources, imports nothing).

- only ``gsnerf_ros/ros/`` imports rclpy or ROS message packages;
- ``gsnerf_ros/runtime/`` (the node's ROS-free runtime) imports nothing from ``gsnerf_ros.ros``;
- ``gsnerf_ros/bench/`` does not import ``gsnerf_ros.ros`` at import time (only inside functions);
- ``gsnerf_ros/ros/`` never imports ``gsnerf_ros.bench``;
- ``gsnerf_ros/imaging/`` (the image codec and colouring) imports no ROS and no other package
  part but itself; the node's modules (``gsnerf_ros/ros/`` outside ``tools/``) import nothing
  from ``gsnerf_ros.train`` or ``gsnerf_ros.data`` (images go through ``gsnerf_ros.imaging``).
"""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "gsnerf_ros"
ROS_MODULES = ("rclpy", "sensor_msgs", "geometry_msgs", "std_msgs", "nav_msgs", "tf2_msgs",
               "visualization_msgs", "diagnostic_msgs", "builtin_interfaces", "rcl_interfaces",
               "action_msgs", "vision_msgs", "lifecycle_msgs", "tf2_ros", "message_filters",
               "cv_bridge", "gsnerf_ros.msg", "gsnerf_ros.srv", "gsnerf_ros.action")


def _imports(path: Path, top_level_only: bool = False) -> list[tuple[int, str]]:
    """(line, module) of every import in ``path`` (module-level statements only if asked)."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out = []
    for n in nodes:
        if isinstance(n, ast.Import):
            out += [(n.lineno, a.name) for a in n.names]
        elif isinstance(n, ast.ImportFrom) and n.module and n.level == 0:
            out += [(n.lineno, n.module)] + [(n.lineno, f"{n.module}.{a.name}") for a in n.names]
    return out


def _matches(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _violations(sub: str, forbidden: tuple[str, ...], top_level_only: bool = False) -> list[str]:
    return [f"{f.relative_to(PKG.parent)}:{line} imports {mod}"
            for f in sorted((PKG / sub).rglob("*.py"))
            for line, mod in _imports(f, top_level_only) if _matches(mod, forbidden)]


def test_only_ros_package_imports_rclpy() -> None:
    bad = [f"{f.relative_to(PKG.parent)}:{line} imports {mod}"
           for f in sorted(PKG.rglob("*.py")) if "ros" not in f.relative_to(PKG).parts[:1]
           for line, mod in _imports(f) if _matches(mod, ROS_MODULES)]
    # the bench's node latency probe imports the node pieces inside its function (checked below)
    bad = [b for b in bad if not b.startswith("gsnerf_ros/bench/")]
    assert not bad, bad


def test_runtime_is_ros_free() -> None:
    assert not _violations("runtime", ROS_MODULES + ("gsnerf_ros.ros",))


def test_bench_does_not_import_ros_at_import_time() -> None:
    assert not _violations("bench", ROS_MODULES + ("gsnerf_ros.ros",), top_level_only=True)


def test_ros_does_not_import_bench() -> None:
    assert not _violations("ros", ("gsnerf_ros.bench",))


def test_imaging_stands_alone() -> None:
    parts = tuple(f"gsnerf_ros.{p}" for p in ("ros", "runtime", "data", "train", "model", "bench"))
    assert not _violations("imaging", ROS_MODULES + parts)


def test_node_modules_do_not_reach_into_training_or_data() -> None:
    bad = [v for v in _violations("ros", ("gsnerf_ros.train", "gsnerf_ros.data"))
           if not v.startswith("gsnerf_ros/ros/tools/")]
    assert not bad, bad
