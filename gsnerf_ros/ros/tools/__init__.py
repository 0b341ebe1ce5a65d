"""Programs around the node: :mod:`player` (publishes a scene or bag as a robot camera would),
:mod:`demo` (``gsnerf-demo``), :mod:`node_harness` (the node in a child process with a client,
shared by the demo and the bench's node latency probe), :mod:`soak`. The tests' fakes and
real-rclpy helpers are in ``test/helpers/``.
"""
