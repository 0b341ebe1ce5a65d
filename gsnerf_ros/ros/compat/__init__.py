"""Small in-tree equivalents of ROS libraries that have no PyPI wheel (tf2_ros, message_filters,
cv_bridge), with the same API, and :mod:`launch_shim`, which evaluates the launch file where
``launch`` / ``launch_ros`` are missing. :mod:`gsnerf_ros.ros.ros_libs` picks the real library
when it is installed (on a robot) and these otherwise.
"""
