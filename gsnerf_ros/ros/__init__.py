"""The ROS 2 node package: the only sub-package that imports rclpy or ROS messages.

The node (``gsnerf_node``): :mod:`node` composes it (and :mod:`lifecycle_node` the managed one);
:mod:`param_declaration` (declaring :mod:`gsnerf_ros.runtime.params` on the node),
:mod:`camera_input` (synchronised camera frames -> keyframes), :mod:`pose_input` (camera poses
from TF or a topic), :mod:`semantic_source` (the model's classes or a 2D segmenter's labels,
:mod:`segmenter_input`, and their names), :mod:`render_services` (render service,
topic and action), :mod:`convert` (messages <-> plain data; image bytes through
:mod:`gsnerf_ros.imaging`), :mod:`visualisation` (keyframe frusta and buffer state),
:mod:`diagnostics`, and
:mod:`ros_libs` (the real tf2_ros / message_filters / cv_bridge, or the in-tree ones).

Sub-packages: :mod:`compat` (in-tree tf2_ros, message_filters, cv_bridge and the launch shim
for installs without them) and :mod:`tools` (the camera player, ``gsnerf-demo``, the node
harness that runs the node in a child process, and test helpers). The ROS-free work (buffer,
engine, requests, parameters) lives in :mod:`gsnerf_ros.runtime`.
"""
