"""The node's ``/diagnostics`` status: buffer warm-up, input errors, render latency, device.

:class:`InputStats` counts the camera frames received and the ones dropped;
:func:`render_node_status` turns it and the node's state into one ``DiagnosticStatus``
(WARN while the buffer warms up, an input error is less than 10 s old, or the last render's
sources lie along the camera's axis: :func:`low_parallax_warning`).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

from gsnerf_ros.runtime.engine import RenderEngine
from gsnerf_ros.runtime.keyframes import KeyframeBuffer
from gsnerf_ros.runtime.params import NodeParams

__all__ = ["InputStats", "render_node_status", "throttle_key", "low_parallax_warning",
           "INPUT_ERROR_WARN_S"]

INPUT_ERROR_WARN_S = 10.0
"""An input error keeps the status at WARN for this many seconds."""


@dataclass
class InputStats:
    """Camera frames received, inputs dropped, and the last drop as (``time.monotonic()``, text)."""

    frames_received: int = 0
    errors: int = 0
    last_error: tuple[float, str] | None = None
    frames_waiting: int = 0
    """Frames waiting for their pose now (set by the node before each status)."""
    time_jumps: int = 0
    problem: str = ""
    """Why no keyframe arrives (``GSNeRFCore.input_problem``), set before each status."""

    def record_frame(self) -> None:
        self.frames_received += 1

    def record_error(self, text: str) -> None:
        self.errors += 1
        self.last_error = (time.monotonic(), text)


def low_parallax_warning(share: float | None, min_share: float) -> str | None:
    """The status text when the last render's lateral baseline share is below ``min_share``
    (0 disables), else None. A camera that moved along its optical axis leaves its keyframes
    little parallax: on 42 validation rooms those below 0.4 had twice the target-depth abs-rel
    of the others on average, but most of them were fine (docs/history/RESULTS.md §0.1b)."""
    if share is None or min_share <= 0.0 or share >= min_share:
        return None
    return (f"last render's sources lie along the camera's axis (lateral baseline share "
            f"{share:.2f} < {min_share:.2f}): its depth may be poor; keyframes from a "
            f"sideways move would help")


def render_node_status(p: NodeParams, buffer: KeyframeBuffer, engine: RenderEngine,
                       renderer: Any, model_name: str, device_warning: str | None,
                       inputs: InputStats, node_name: str = "/gsnerf") -> DiagnosticStatus:
    """The ``<node_name>: render node`` status with its key/values. ``node_name`` is the node's
    fully qualified name (``/ns/gsnerf``), so that two instances are told apart, as
    diagnostic_updater names its statuses."""
    n, n_enc = len(buffer), buffer.num_encoded()
    st = DiagnosticStatus(name=f"{node_name}: render node", hardware_id=str(
        getattr(renderer, "device", p.model_device)))
    level, msgs = DiagnosticStatus.OK, []
    if n_enc < p.render_min_keyframes:
        level = DiagnosticStatus.WARN
        msgs.append(f"buffer warming up ({n_enc}/{p.render_min_keyframes} encoded keyframes)")
    err = inputs.last_error
    if err is not None and time.monotonic() - err[0] < INPUT_ERROR_WARN_S:
        level = DiagnosticStatus.WARN
        msgs.append(f"input error: {err[1]}")
    share = engine.last_lateral_share
    parallax = low_parallax_warning(share, p.publish_warn_lateral_share)
    if parallax:
        level = DiagnosticStatus.WARN
        msgs.append(parallax)
    if device_warning:
        msgs.append(device_warning)
    st.level = level
    st.message = "; ".join(msgs) or "ok"
    lat = engine.last_latency_ms
    st_kf, q = buffer.stats, engine.queue
    vals = {
        "buffer_size": n, "encoded_keyframes": n_enc, "capacity": p.keyframes_capacity,
        "pending_keyframes": buffer.num_pending(), "keyframes_added": st_kf.added,
        "provisional_keyframes": buffer.num_provisional(),
        "keyframes_upgraded": st_kf.upgraded,
        "keyframes_evicted": st_kf.evicted, "frames_skipped_rate_cap": st_kf.skipped_rate,
        "buffer_resets": st_kf.resets, "time_jumps": inputs.time_jumps,
        "frames_waiting_for_pose": inputs.frames_waiting,
        "requests_queued": q.waiting, "requests_refused_busy": q.refused_busy,
        "requests_refused_deadline": q.refused_deadline,
        "last_render_latency_ms": f"{lat:.1f}" if lat is not None else "n/a",
        # how sideways the last render's sources are to each other (0 = a camera that drove
        # along its axis: little parallax, often poor depth; docs/history/RESULTS.md §0.1b)
        "last_render_lateral_baseline_share": f"{share:.2f}" if share is not None else "n/a",
        "renders": engine.renders, "device": str(getattr(renderer, "device", p.model_device)),
        "model": model_name,
        # whether depth is bounded by the floor plane (model.floor_bound, docs/METHOD.md §10)
        "floor_bound": (f"z = {renderer.floor_z} m"
                        if getattr(renderer, "floor_z", None) is not None else "off"),
        "frames_received": inputs.frames_received,
        "input_errors": inputs.errors,
        "last_input_error": err[1] if err is not None else "",
        "input_problem": inputs.problem,
    }
    st.values = [KeyValue(key=k, value=str(v)) for k, v in vals.items()]
    return st


def throttle_key(kind: str, text: str) -> str:
    """Log-throttle key of a warning: its kind and text with every number blanked, so a warning
    that differs only in a timestamp or a count is throttled as one."""
    return kind + ":" + re.sub(r"\d+(\.\d+)?", "#", text)[:80]
