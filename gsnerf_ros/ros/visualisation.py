"""The keyframe buffer as seen from outside: ``~/keyframe_markers`` and ``~/keyframes``.

Both topics are latched (transient local), so RViz or a late subscriber gets the current buffer:
one camera frustum per keyframe (:func:`~gsnerf_ros.ros.convert.frustum_markers`, when
``publish.markers`` is set) and a :class:`~gsnerf_ros.msg.KeyframeBufferState` listing them.
"""

from __future__ import annotations

from typing import Sequence

from builtin_interfaces.msg import Time as TimeMsg
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from visualization_msgs.msg import MarkerArray

from gsnerf_ros.msg import Keyframe as KeyframeMsg
from gsnerf_ros.msg import KeyframeBufferState
from gsnerf_ros.ros import convert
from gsnerf_ros.runtime.keyframes import Keyframe
from gsnerf_ros.runtime.params import NodeParams

__all__ = ["KeyframeBufferPublisher", "keyframe_buffer_state"]


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
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL,
                             reliability=ReliabilityPolicy.RELIABLE)
        self.pub_markers = node.create_publisher(MarkerArray, "~/keyframe_markers", latched)
        self.pub_state = node.create_publisher(KeyframeBufferState, "~/keyframes", latched)

    def publish(self, keyframes: Sequence[Keyframe], capacity: int, stamp: TimeMsg) -> None:
        """Publish the frusta (if ``publish.markers``) and the state of ``keyframes``."""
        if self.p.publish_markers:
            self.pub_markers.publish(convert.frustum_markers(keyframes, self.p.frames_world, stamp,
                                                             self.p.publish_frustum_scale))
        self.pub_state.publish(keyframe_buffer_state(keyframes, capacity, self.p.frames_world,
                                                     stamp))
