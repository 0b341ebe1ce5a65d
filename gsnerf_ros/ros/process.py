"""Running a node as a process: SIGINT/SIGTERM end the spin cleanly (exit 0), bad parameters
or a missing checkpoint exit 2 with the reason on stderr. Shared by ``gsnerf_node``,
``gsnerf_lifecycle_node`` and ``gsnerf_player``."""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any, Callable

__all__ = ["stop_on_signals", "spin_node"]


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM (install after ``rclpy.init`` without its handlers)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def spin_node(make_node: Callable[[], Any], threads: Callable[[Any], int], prog: str,
              argv: list[str] | None = None) -> int:
    """``rclpy.init``, build the node, spin it on a MultiThreadedExecutor of ``threads(node)``
    threads until a signal, then ``node.close()`` and destroy it. Returns the exit code."""
    import rclpy
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=argv, signal_handler_options=SignalHandlerOptions.NO)
    stop = stop_on_signals()
    node: Any = None
    code = 0
    try:
        node = make_node()
        executor = MultiThreadedExecutor(num_threads=threads(node))
        executor.add_node(node)
        while rclpy.ok() and not stop.is_set():
            executor.spin_once(timeout_sec=0.1)
        node.get_logger().info("shutting down")
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (FileNotFoundError, ValueError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr, flush=True)
        code = 2
    finally:
        if node is not None:
            node.close()
            node.destroy_node()
        rclpy.try_shutdown()
    return code
