"""Declaring the node's parameters on a ROS node (the table itself is ROS-free: :mod:`gsnerf_ros.runtime.params`).

Every :data:`~gsnerf_ros.runtime.params.PARAMETERS` entry is declared with a ``ParameterDescriptor``
(description, range); the values are read back into :class:`~gsnerf_ros.runtime.params.NodeParams`.

When they can change:

- the live ones (``read_only=False`` in the table: render size limits, log throttle, markers,
  ``frames.request_body``, ...) at any time; the node reads them at each use;
- the others while the managed node is unconfigured (they are read at ``configure``); the plain
  node declares them read-only, the managed node refuses them once configured, with the reason;
- :data:`STARTUP_ONLY` ones never after start (read-only on both nodes): they size the
  executor's thread pool.

:func:`check_parameter_changes` is the check behind both nodes' ``on_set_parameters`` callback:
a change is refused with a reason when the parameter is fixed now or when the resulting values
fail :func:`~gsnerf_ros.runtime.params.params_from_values` (ranges, choices, near < far).
:func:`warn_undeclared_overrides` names the overrides (``-p``, parameter files) that match no
declared parameter, with the closest declared name.
"""

from __future__ import annotations

import difflib
import re
from typing import Any, Sequence

from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult,
)
from rclpy.node import Node

from gsnerf_ros.runtime.params import PARAMETERS, NodeParams, ParamSpec, params_from_values

__all__ = ["parameter_descriptor", "declare_node_parameters", "read_node_parameters",
           "check_parameter_changes", "warn_undeclared_overrides", "LIVE_PARAMETERS",
           "STARTUP_ONLY"]

LIVE_PARAMETERS = frozenset(s.name for s in PARAMETERS if not s.read_only)
"""Parameters the node reads at each use: they may change at any time."""

STARTUP_ONLY = frozenset({"render.queue_size", "render.max_goals"})
"""Parameters that size the executor's threads when the process starts (one thread per request
that may wait for the device, one per goal): a later value would outgrow the pool."""

_DECLARED = frozenset(s.name for s in PARAMETERS)


def parameter_descriptor(spec: ParamSpec, read_only: bool | None = None) -> ParameterDescriptor:
    """The ROS descriptor of ``spec``: description (with its choices) and numeric range;
    ``read_only`` defaults to the table's."""
    text = spec.description + (f" One of {list(spec.choices)}." if spec.choices else "")
    d = ParameterDescriptor(description=text,
                            read_only=spec.read_only if read_only is None else read_only)
    if spec.name in STARTUP_ONLY:
        d.additional_constraints = "Set at launch: sizes the executor's threads at start."
    if spec.min is not None and isinstance(spec.default, float):
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.min),
                                                     to_value=float(spec.max), step=0.0)]
    elif spec.min is not None and isinstance(spec.default, int):
        d.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max),
                                        step=int(spec.step or 1))]
    return d


def declare_node_parameters(node: Node, managed: bool = False) -> NodeParams:
    """Declare every parameter on ``node`` and return their (checked) values. ``managed``: the
    lifecycle node, whose parameters stay settable until configure (only :data:`STARTUP_ONLY`
    ones are read-only)."""
    for spec in PARAMETERS:
        read_only = spec.name in STARTUP_ONLY if managed else None
        node.declare_parameter(spec.name, spec.default, parameter_descriptor(spec, read_only))
    return read_node_parameters(node)


def read_node_parameters(node: Node) -> NodeParams:
    """The node's current parameter values, checked (ValueError with the reason)."""
    return params_from_values({s.name: node.get_parameter(s.name).value for s in PARAMETERS})


def check_parameter_changes(changes: Sequence[Any], current: dict[str, Any],
                            fixed_because: str | None) -> SetParametersResult:
    """Whether ``changes`` (rclpy Parameters) may be applied to the ``current`` values
    ({name: value}). ``fixed_because``: why the non-live parameters cannot change now, e.g.
    ``"the node is active"``; None when they can. Parameters the node does not own
    (``use_sim_time``) are left to rclpy."""
    ours = [p for p in changes if p.name in _DECLARED]
    fixed = sorted(p.name for p in ours if p.name not in LIVE_PARAMETERS)
    if fixed and fixed_because:
        return SetParametersResult(successful=False, reason=(
            f"{', '.join(fixed)} cannot change while {fixed_because}"))
    values = dict(current)
    values.update({p.name: p.value for p in ours})
    try:
        params_from_values(values)
    except ValueError as exc:
        return SetParametersResult(successful=False, reason=str(exc))
    return SetParametersResult(successful=True)


def _closest_parameter(name: str, declared: list[str]) -> str | None:
    """The declared name sharing most words with ``name`` (``world_frame`` -> ``frames.world``),
    else the closest spelling."""
    def words(n: str) -> set[str]:
        return {w.rstrip("s") for w in re.split(r"[._]", n.lower()) if w}

    mine = words(name)
    best = max(declared, key=lambda d: (len(words(d) & mine), -len(d)))
    if words(best) & mine:
        return best
    close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
    return close[0] if close else None


def warn_undeclared_overrides(node: Any) -> list[str]:
    """Warn once about parameter overrides (``-p``, parameter files) that name no declared
    parameter, e.g. ``world_frame`` for ``frames.world``; returns their names."""
    overrides = getattr(node, "_parameter_overrides", {}) or {}
    unknown = sorted(n for n in overrides if not node.has_parameter(n)
                     and not n.startswith("qos_overrides."))
    if unknown:
        declared = sorted(s.name for s in PARAMETERS)
        hints = []
        for n in unknown:
            close = _closest_parameter(n, declared)
            hints.append(f"{n} (did you mean {close}?)" if close else n)
        node.get_logger().warning(
            f"ignoring parameter override(s) the node does not declare: {', '.join(hints)}; "
            "see config/gsnerf.yaml or `ros2 param list /gsnerf` for the names")
    return unknown
