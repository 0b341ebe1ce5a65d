"""The ROS 2 side of gsnerf_ros: the only sub-package that imports rclpy or ROS messages.

ROS-free parts (tested without DDS): :mod:`image_conversion`, :mod:`keyframes` (keyframe buffer and
its encoding worker), :mod:`requests` (request validation), :mod:`engine` (render orchestration
behind the :class:`~gsnerf_ros.ros.engine.Renderer` protocol), :mod:`params` (node parameters).
ROS parts: :mod:`convert` (messages <-> plain data), :mod:`node` (``gsnerf_node``) with its parts
:mod:`param_declaration`, :mod:`checkpoint_lookup`, :mod:`pose_input` (camera poses from TF or a
topic), :mod:`render_services` (render service/topic/action), :mod:`visualisation` (keyframe
frusta and buffer state) and :mod:`diagnostics`, :mod:`player` (publishes a scene or bag as a
robot camera would), :mod:`demo` (``gsnerf-demo``), :mod:`node_harness` (the node in a child process
with a client, shared by the demo and the latency probe), and :mod:`compat` (in-tree tf2_ros /
message_filters / cv_bridge for installs without them).
"""
