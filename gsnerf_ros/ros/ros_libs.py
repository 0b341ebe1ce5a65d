"""The ROS libraries the node uses, real when installed (a robot), in-tree equivalents otherwise.

Import from here, never from the libraries directly::

    from gsnerf_ros.ros.ros_libs import CvBridge, message_filters, tf2_ros
"""

from __future__ import annotations

try:  # pragma: no cover - depends on the installation
    import tf2_ros  # type: ignore[import-not-found]
    TF2_ROS_IS_COMPAT = False
except ImportError:
    from gsnerf_ros.ros.compat import tf2_ros  # type: ignore[no-redef]
    TF2_ROS_IS_COMPAT = True

try:  # pragma: no cover
    import message_filters  # type: ignore[import-not-found]
    MESSAGE_FILTERS_IS_COMPAT = False
except ImportError:
    from gsnerf_ros.ros.compat import message_filters  # type: ignore[no-redef]
    MESSAGE_FILTERS_IS_COMPAT = True

try:  # pragma: no cover
    from cv_bridge import CvBridge, CvBridgeError  # type: ignore[import-not-found]
    CV_BRIDGE_IS_COMPAT = False
except ImportError:
    from gsnerf_ros.ros.compat.cv_bridge import CvBridge, CvBridgeError  # type: ignore[assignment]
    CV_BRIDGE_IS_COMPAT = True

__all__ = ["tf2_ros", "message_filters", "CvBridge", "CvBridgeError", "TF2_ROS_IS_COMPAT",
           "MESSAGE_FILTERS_IS_COMPAT", "CV_BRIDGE_IS_COMPAT"]
