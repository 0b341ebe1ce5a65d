"""What the node shows of itself: the keyframe buffer (``~/keyframe_markers``, ``~/keyframes``)
and the meaning of its semantic outputs (``~/label_info``, ``~/semantic_legend``).

All topics are latched (transient local), so RViz or a late subscriber gets the current state:
one camera frustum per keyframe (:func:`~gsnerf_ros.ros.convert.frustum_markers`, when
``publish.markers`` is set), a :class:`~gsnerf_ros.msg.KeyframeBufferState` listing them, the
class id -> name map as ``vision_msgs/LabelInfo``, and an rgb8 image of the class colours of
``semantic_color`` with their names (for an RViz Image display beside the rendered view).
"""

from __future__ import annotations

from typing import Any, Sequence

from builtin_interfaces.msg import Time as TimeMsg
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import LabelInfo
from visualization_msgs.msg import MarkerArray

from gsnerf_ros.imaging import class_legend
from gsnerf_ros.msg import Keyframe as KeyframeMsg
from gsnerf_ros.msg import KeyframeBufferState
from gsnerf_ros.ros import convert
from gsnerf_ros.runtime.keyframes import Keyframe
from gsnerf_ros.runtime.params import NodeParams

__all__ = ["KeyframeBufferPublisher", "keyframe_buffer_state", "ClassInfoPublisher", "LATCHED"]

LATCHED = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                     reliability=ReliabilityPolicy.RELIABLE)
"""Transient-local QoS of the node's state topics (subscribe with the same to get the last)."""


class ClassInfoPublisher:
    """Owns the latched ``~/label_info`` and ``~/semantic_legend`` publishers of ``node``; the
    node publishes them once it runs (:meth:`publish`), so a managed node's are sent when it is
    activated."""

    def __init__(self, node: Node, class_names: Sequence[str], palette: Any) -> None:
        self.class_names = list(class_names)
        self.palette = palette
        self.pub_info = node.create_publisher(LabelInfo, "~/label_info", LATCHED)
        self.pub_legend = node.create_publisher(Image, "~/semantic_legend", LATCHED)

    def publish(self, header: Header) -> None:
        """Publish the class map and the legend image (rgb8) with ``header``."""
        self.pub_info.publish(convert.label_info(self.class_names, header))
        rows = max(1, len(self.class_names))         # 24 px a row, 20 rows a 320 px column
        legend = class_legend(self.class_names, self.palette, height=min(24 * rows, 480),
                              width=320 * -(-rows // 20))
        self.pub_legend.publish(convert.array_to_image(legend, "rgb8", header))


def keyframe_buffer_state(keyframes: Sequence[Keyframe], capacity: int, frame_id: str,
                          stamp: TimeMsg) -> KeyframeBufferState:
    """The KeyframeBufferState message of ``keyframes`` (poses in ``frame_id``)."""
    state = KeyframeBufferState()
    state.header.frame_id, state.header.stamp = frame_id, stamp
    state.capacity = capacity
    state.keyframes = [KeyframeMsg(id=kf.id, stamp=convert.sec_to_stamp(kf.stamp),
                                   pose=convert.c2w_to_pose(kf.c2w), width=kf.width,
                                   height=kf.height) for kf in keyframes]
    return state


class KeyframeBufferPublisher:
    """Owns the latched ``~/keyframe_markers`` and ``~/keyframes`` publishers of ``node``."""

    def __init__(self, node: Node, params: NodeParams) -> None:
        self.p = params
        self.pub_markers = node.create_publisher(MarkerArray, "~/keyframe_markers", LATCHED)
        self.pub_state = node.create_publisher(KeyframeBufferState, "~/keyframes", LATCHED)

    def publish(self, keyframes: Sequence[Keyframe], capacity: int, stamp: TimeMsg) -> None:
        """Publish the frusta (if ``publish.markers``) and the state of ``keyframes``."""
        if self.p.publish_markers:
            self.pub_markers.publish(convert.frustum_markers(keyframes, self.p.frames_world, stamp,
                                                             self.p.publish_frustum_scale))
        self.pub_state.publish(keyframe_buffer_state(keyframes, capacity, self.p.frames_world,
                                                     stamp))
