"""Evaluate a launch_ros launch file where ``launch`` / ``launch_ros`` are not installed.

Only for tests and this PyPI-wheel install: it provides the small part of the launch API that
``launch/gsnerf.launch.py`` uses (LaunchDescription, DeclareLaunchArgument, OpaqueFunction,
IfCondition / UnlessCondition, LaunchConfiguration, PathJoinSubstitution, TextSubstitution,
launch_ros Node and LifecycleNode, FindPackageShare), loads the file with those stand-ins, and
turns the description into the command lines ``ros2 launch`` would start: executable,
``arguments``, ``--ros-args`` + ``ros_arguments``, then ``--ros-args`` with the node name,
namespace, the parameter files (a dict written to a temporary YAML file under the node's fully
qualified name, as launch_ros does) and the remappings. :func:`start` runs them as real
processes; :func:`autostart` makes the lifecycle transitions launch_ros makes for a
``LifecycleNode(autostart=True)`` (configure, then activate, through the node's
``change_state`` service). On a robot use ``ros2 launch``.

Signatures follow launch / launch_ros of ROS 2 Jazzy and Kilted; where those releases are
stricter than later ones (``LifecycleNode.autostart`` is a bool there, not a substitution), the
stand-in is as strict, so a launch file that evaluates here also runs there.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import yaml

__all__ = ["LaunchedNode", "load_launch_description", "evaluate", "start", "autostart",
           "REPO_ROOT"]

REPO_ROOT = Path(__file__).resolve().parents[3]


# ------------------------------------------------------------------ the stand-in launch API
class _Context:
    def __init__(self, configs: dict[str, str]) -> None:
        self.launch_configurations = configs


def _perform(value: Any, ctx: _Context) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "".join(_perform(v, ctx) for v in value)
    return value.perform(ctx)


class TextSubstitution:
    def __init__(self, *, text: str) -> None:
        self.text = text

    def perform(self, ctx: _Context) -> str:
        return self.text


class LaunchConfiguration:
    def __init__(self, variable_name: str, *, default: Any = None) -> None:
        self.variable_name, self.default = variable_name, default

    def perform(self, ctx: _Context) -> str:
        if self.variable_name in ctx.launch_configurations:
            return ctx.launch_configurations[self.variable_name]
        if self.default is not None:
            return _perform(self.default, ctx)
        raise KeyError(f"launch configuration {self.variable_name!r} is not set")


class PathJoinSubstitution:
    def __init__(self, substitutions: Sequence[Any]) -> None:
        self.substitutions = list(substitutions)

    def perform(self, ctx: _Context) -> str:
        return str(Path(*[_perform(s, ctx) for s in self.substitutions]))


class FindPackageShare:
    def __init__(self, package: str) -> None:
        self.package = package

    def perform(self, ctx: _Context) -> str:
        try:
            from ament_index_python.packages import get_package_share_directory

            share = Path(get_package_share_directory(self.package))
            if (share / "config").is_dir():
                return str(share)
        except Exception:  # noqa: BLE001 - not installed: the source checkout is the share dir
            pass
        if self.package == "gsnerf_ros":
            return str(REPO_ROOT)
        raise LookupError(f"package {self.package!r} not found")


class IfCondition:
    def __init__(self, predicate: Any) -> None:
        self.predicate = predicate

    def evaluate(self, ctx: _Context) -> bool:
        v = _perform(self.predicate, ctx).strip().lower()
        if v not in ("true", "false", "1", "0"):
            raise ValueError(f"condition value {v!r} must be true/false")
        return v in ("true", "1")


class UnlessCondition(IfCondition):
    def evaluate(self, ctx: _Context) -> bool:
        return not super().evaluate(ctx)


class DeclareLaunchArgument:
    def __init__(self, name: str, *, default_value: Any = None, description: str = "",
                 choices: Sequence[str] | None = None, **_: Any) -> None:
        self.name, self.default_value, self.description = name, default_value, description
        self.choices = choices


class OpaqueFunction:
    """``function(context, *args, **kwargs)`` returning launch entities, run at evaluation."""

    def __init__(self, *, function: Any, args: Sequence[Any] | None = None,
                 kwargs: dict[str, Any] | None = None, condition: Any = None, **_: Any) -> None:
        self.function, self.args, self.kwargs = function, list(args or []), dict(kwargs or {})
        self.condition = condition

    def execute(self, ctx: _Context) -> list[Any]:
        return list(self.function(ctx, *self.args, **self.kwargs) or [])


class LaunchDescription:
    def __init__(self, initial_entities: Sequence[Any] | None = None) -> None:
        self.entities = list(initial_entities or [])

    def get_launch_arguments(self) -> list[DeclareLaunchArgument]:
        return [e for e in self.entities if isinstance(e, DeclareLaunchArgument)]


class Node:
    def __init__(self, *, package: str, executable: str, name: str | None = None,
                 namespace: str | None = None, parameters: Sequence[Any] | None = None,
                 remappings: Sequence[tuple[Any, Any]] | None = None,
                 arguments: Sequence[Any] | None = None,
                 ros_arguments: Sequence[Any] | None = None, condition: Any = None,
                 **_: Any) -> None:
        self.package, self.executable, self.name, self.namespace = package, executable, name, namespace
        self.parameters = list(parameters or [])
        self.remappings = list(remappings or [])
        self.arguments = list(arguments or [])
        self.ros_arguments = list(ros_arguments or [])
        self.condition = condition


class LifecycleNode(Node):
    """launch_ros.actions.LifecycleNode: ``name`` and ``namespace`` are required; ``autostart``
    (launch_ros >= 0.26.7 on Jazzy, Kilted) configures and activates the node once started."""

    def __init__(self, *, name: Any, namespace: Any, autostart: bool = False,
                 **kwargs: Any) -> None:
        if not isinstance(autostart, bool):
            raise TypeError("LifecycleNode(autostart=...) takes a bool on Jazzy and Kilted, not "
                            f"{type(autostart).__name__}; perform the substitution first")
        super().__init__(name=name, namespace=namespace, **kwargs)
        self.autostart = autostart


def _shim_modules() -> dict[str, types.ModuleType]:
    mods = {n: types.ModuleType(n) for n in (
        "launch", "launch.actions", "launch.conditions", "launch.substitutions", "launch_ros",
        "launch_ros.actions", "launch_ros.substitutions")}
    mods["launch"].LaunchDescription = LaunchDescription  # type: ignore[attr-defined]
    mods["launch.actions"].DeclareLaunchArgument = DeclareLaunchArgument  # type: ignore[attr-defined]
    mods["launch.actions"].OpaqueFunction = OpaqueFunction  # type: ignore[attr-defined]
    mods["launch.conditions"].IfCondition = IfCondition  # type: ignore[attr-defined]
    mods["launch.conditions"].UnlessCondition = UnlessCondition  # type: ignore[attr-defined]
    for c in (LaunchConfiguration, PathJoinSubstitution, TextSubstitution):
        setattr(mods["launch.substitutions"], c.__name__, c)
    mods["launch_ros.actions"].Node = Node  # type: ignore[attr-defined]
    mods["launch_ros.actions"].LifecycleNode = LifecycleNode  # type: ignore[attr-defined]
    mods["launch_ros.substitutions"].FindPackageShare = FindPackageShare  # type: ignore[attr-defined]
    return mods


def load_launch_description(path: str | Path) -> LaunchDescription:
    """Import a launch file against the stand-in API and call its generate_launch_description()."""
    mods = _shim_modules()
    saved = {n: sys.modules.get(n) for n in mods}
    sys.modules.update(mods)
    try:
        spec = importlib.util.spec_from_file_location("_gsnerf_launch_file", str(path))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.generate_launch_description()
    finally:
        for n, m in saved.items():
            if m is None:
                sys.modules.pop(n, None)
            else:
                sys.modules[n] = m


# ------------------------------------------------------------------ evaluation
@dataclass
class LaunchedNode:
    """A node as ``ros2 launch`` would start it."""

    package: str
    executable: str
    name: str | None
    command: list[str] | None
    """Full command line, or None when the executable is not installed here (e.g. rviz2)."""
    parameter_files: list[str] = field(default_factory=list)
    parameter_overrides: dict[str, Any] = field(default_factory=dict)
    remappings: list[tuple[str, str]] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    namespace: str = ""
    """Absolute namespace ("" = the root)."""
    ros_arguments: list[str] = field(default_factory=list)
    lifecycle: bool = False
    """Started as a launch_ros LifecycleNode."""
    autostart: bool = False
    """LifecycleNode(autostart=True): launch configures and activates it (see :func:`autostart`)."""

    @property
    def fully_qualified_name(self) -> str:
        return f"{self.namespace}/{self.name}" if self.name else ""


def _yaml_value(text: str) -> Any:
    """launch_ros types substituted strings by YAML rules; the empty string stays a string."""
    if text == "":
        return ""
    v = yaml.safe_load(text)
    return text if isinstance(v, (dict, list)) or v is None else v


def _find_executable(package: str, executable: str) -> list[str] | None:
    if package == "gsnerf_ros":
        # a source checkout runs its own scripts (so its code, not an older install, runs)
        for cand in (REPO_ROOT / "scripts" / executable,
                     Path(sys.prefix) / "lib" / package / executable):
            if cand.is_file():
                return [sys.executable, str(cand)]
        return None
    exe = shutil.which(executable)
    return [exe] if exe else None


def evaluate(description: LaunchDescription, launch_arguments: dict[str, str] | None = None,
             tmpdir: str | Path | None = None) -> list[LaunchedNode]:
    """The nodes the description starts with ``launch_arguments`` (name -> value strings)."""
    launch_arguments = dict(launch_arguments or {})
    declared = {a.name: a for a in description.get_launch_arguments()}
    unknown = set(launch_arguments) - set(declared)
    if unknown:
        raise ValueError(f"unknown launch arguments {sorted(unknown)}; declared: {sorted(declared)}")
    ctx = _Context({})
    for name, arg in declared.items():
        if name in launch_arguments:
            value = launch_arguments[name]
        elif arg.default_value is not None:
            value = _perform(arg.default_value, ctx)
        else:
            raise ValueError(f"launch argument {name!r} is required")
        if arg.choices is not None and value not in arg.choices:
            raise ValueError(f"launch argument {name}={value!r} must be one of {arg.choices}")
        ctx.launch_configurations[name] = value
    tmp = Path(tmpdir or tempfile.mkdtemp(prefix="gsnerf_launch_"))
    out = []
    entities: list[Any] = []
    for e in description.entities:
        if isinstance(e, OpaqueFunction):
            if e.condition is None or e.condition.evaluate(ctx):
                entities += e.execute(ctx)
        else:
            entities.append(e)
    for i, ent in enumerate(e for e in entities if isinstance(e, Node)):
        if ent.condition is not None and not ent.condition.evaluate(ctx):
            continue
        files, overrides = [], {}
        for p in ent.parameters:
            if isinstance(p, dict):
                overrides.update({_perform(k, ctx): _yaml_value(_perform(v, ctx))
                                  for k, v in p.items()})
            else:
                files.append(_perform(p, ctx))
        remaps = [(_perform(a, ctx), _perform(b, ctx)) for a, b in ent.remappings]
        args = [_perform(a, ctx) for a in ent.arguments]
        ros_args = [_perform(a, ctx) for a in ent.ros_arguments]
        name = _perform(ent.name, ctx) if ent.name is not None else None
        ns = _perform(ent.namespace, ctx).strip("/") if ent.namespace is not None else ""
        ns = f"/{ns}" if ns else ""
        base = _find_executable(ent.package, ent.executable)
        cmd = None
        if base is not None:
            cmd = [*base, *args]
            if ros_args:
                cmd += ["--ros-args", *ros_args]
            cmd += ["--ros-args"]
            if name:
                cmd += ["-r", f"__node:={name}"]
            if ns:
                cmd += ["-r", f"__ns:={ns}"]
            for f in files:
                cmd += ["--params-file", f]
            if overrides:
                # launch_ros: under the fully qualified node name when name and namespace are
                # given (a node-specific section of an earlier file is then overridden), else /**
                key = f"{ns}/{name}" if name and ent.namespace is not None else "/**"
                f = tmp / f"launch_params_{i}.yaml"
                f.write_text(yaml.safe_dump({key: {"ros__parameters": overrides}}))
                cmd += ["--params-file", str(f)]
            for a, b in remaps:
                cmd += ["-r", f"{a}:={b}"]
        out.append(LaunchedNode(ent.package, ent.executable, name, cmd, files, overrides,
                                remaps, args, ns, ros_args, isinstance(ent, LifecycleNode),
                                bool(getattr(ent, "autostart", False))))
    return out


def start(node: LaunchedNode, **popen_kwargs: Any) -> subprocess.Popen:
    """Start one evaluated node as a real process."""
    if node.command is None:
        raise FileNotFoundError(f"executable {node.executable!r} of package {node.package!r} is "
                                "not installed here")
    return subprocess.Popen(node.command, **popen_kwargs)


def autostart(node: LaunchedNode, ros_node: Any, timeout: float = 60.0) -> str:
    """What launch_ros does for ``LifecycleNode(autostart=True)`` once the process runs: the
    ``configure`` transition through ``<node>/change_state``, then ``activate`` after it
    succeeded. ``ros_node`` is an rclpy node spun by an executor in another thread (as launch's
    own ROS node is, in launch_ros's ROSAdapter). Returns the label of the state
    reached; raises RuntimeError when a transition fails (launch_ros logs that as an error) and
    TimeoutError when the service or an answer does not come within ``timeout`` s."""
    from lifecycle_msgs.msg import Transition
    from lifecycle_msgs.srv import ChangeState

    if not node.lifecycle or not node.autostart:
        raise ValueError(f"{node.executable} was not launched as a LifecycleNode with autostart")
    deadline = time.monotonic() + timeout
    client = ros_node.create_client(ChangeState, f"{node.fully_qualified_name}/change_state")
    try:
        while not client.wait_for_service(timeout_sec=0.2):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {client.srv_name} service within {timeout} s")
        state = ""
        for tid, label in ((Transition.TRANSITION_CONFIGURE, "configure"),
                           (Transition.TRANSITION_ACTIVATE, "activate")):
            future = client.call_async(ChangeState.Request(transition=Transition(id=tid)))
            while not future.done() and time.monotonic() < deadline:
                time.sleep(0.02)
            if not future.done():
                raise TimeoutError(f"no answer to {label} from {node.fully_qualified_name} "
                                   f"within {timeout} s")
            if not future.result().success:
                raise RuntimeError(f"Failed to make transition '{label}' for LifecycleNode "
                                   f"'{node.fully_qualified_name}'")
            state = {"configure": "inactive", "activate": "active"}[label]
        return state
    finally:
        ros_node.destroy_client(client)
