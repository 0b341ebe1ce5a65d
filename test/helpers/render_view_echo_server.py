"""A stand-alone RenderView server used by the interface test (a separate OS process).

It answers each request with a 2x3 mono8 ``semantic`` image whose pixels encode the requested
position in centimetres, echoes the CameraInfo and stamp, and reports ``success`` only for unit
quaternions, so the client can check that request fields crossed the process boundary intact.
"""

from __future__ import annotations

import math
import sys

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from gsnerf_ros.srv import RenderView


class EchoServer(Node):
    def __init__(self) -> None:
        super().__init__("render_view_echo_server")
        self.create_service(RenderView, "~/render_view", self.on_request)
        self.get_logger().info("ready")

    def on_request(self, req: RenderView.Request, res: RenderView.Response) -> RenderView.Response:
        q = req.pose.pose.orientation
        norm = math.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w)
        res.success = abs(norm - 1.0) < 1e-6
        res.message = "" if res.success else f"orientation is not a unit quaternion (norm {norm:.3f})"
        p = req.pose.pose.position
        res.semantic.header = req.pose.header
        res.semantic.height, res.semantic.width, res.semantic.encoding = 2, 3, "mono8"
        res.semantic.step = 3
        cm = [int(round(v * 100)) % 256 for v in (p.x, p.y, p.z)]
        res.semantic.data = bytes(cm + cm)
        res.camera_info = req.camera_info
        res.source_keyframe_ids = [7, 3]
        res.latency_ms = 1.5
        return res


def main() -> None:
    rclpy.init()
    node = EchoServer()
    try:
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
