"""Declaring the node's parameters on a ROS node (the table itself is ROS-free: :mod:`gsnerf_ros.runtime.params`).

Every :data:`~gsnerf_ros.runtime.params.PARAMETERS` entry is declared with a ``ParameterDescriptor``
(description, range); the values are read back into :class:`~gsnerf_ros.runtime.params.NodeParams`.
The parameters are read-only once the node runs: changes are refused with a reason.
"""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import (
    FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult,
)
from rclpy.node import Node

from gsnerf_ros.runtime.params import PARAMETERS, NodeParams, ParamSpec, params_from_values

__all__ = ["parameter_descriptor", "declare_node_parameters", "reject_parameter_changes"]


def parameter_descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """The ROS descriptor of ``spec``: description (with its choices) and numeric range."""
    text = spec.description + (f" One of {list(spec.choices)}." if spec.choices else "")
    d = ParameterDescriptor(description=text, read_only=spec.read_only)
    if spec.min is not None and isinstance(spec.default, float):
        d.floating_point_range = [FloatingPointRange(from_value=float(spec.min),
                                                     to_value=float(spec.max), step=0.0)]
    elif spec.min is not None and isinstance(spec.default, int):
        d.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max),
                                        step=int(spec.step or 1))]
    return d


def declare_node_parameters(node: Node) -> NodeParams:
    """Declare every parameter on ``node`` and return their (checked) values."""
    for spec in PARAMETERS:
        node.declare_parameter(spec.name, spec.default, parameter_descriptor(spec))
    return params_from_values({s.name: node.get_parameter(s.name).value for s in PARAMETERS})


def reject_parameter_changes(params: list[Any]) -> SetParametersResult:
    """``add_on_set_parameters_callback`` callback: the parameters cannot change at run time."""
    return SetParametersResult(successful=False, reason="gsnerf parameters are read-only; "
                               "restart the node (or relaunch) to change them")
