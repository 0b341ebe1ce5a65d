"""The node's ROS-free runtime: everything the render node does that needs no rclpy.

:mod:`keyframes` (keyframe buffer, keyframe policy and its encoding worker), :mod:`engine`
(render orchestration behind the :class:`~gsnerf_ros.runtime.engine.Renderer` protocol, the
bounded request queue), :mod:`requests` (request and camera validation), :mod:`params` (the
node's parameter table) and :mod:`checkpoint_lookup` (where the model file is found). Tested
without DDS; :mod:`gsnerf_ros.ros` wraps it in a node.
"""
