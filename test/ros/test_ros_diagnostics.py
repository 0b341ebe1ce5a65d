"""The node's /diagnostics status, built from a real buffer and engine (no node, no DDS)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("diagnostic_msgs")

from diagnostic_msgs.msg import DiagnosticStatus  # noqa: E402

from gsnerf_ros.geometry import make_pose  # noqa: E402
from gsnerf_ros.ros.diagnostics import (  # noqa: E402
    InputStats, low_parallax_warning, render_node_status,
)
from helpers.fakes import FakeRenderer
from gsnerf_ros.runtime.engine import RenderEngine, RenderSettings  # noqa: E402
from gsnerf_ros.runtime.keyframes import KeyframeBuffer, KeyframePolicy  # noqa: E402
from gsnerf_ros.runtime.params import params_from_values  # noqa: E402

K = torch.tensor([[40.0, 0, 15.5], [0, 40.0, 11.5], [0, 0, 1]])


def _engine_after_one_render(centres: list[tuple[float, float, float]]) -> RenderEngine:
    """Keyframes looking along +z at these centres (m), all encoded, and one render near them."""
    buf = KeyframeBuffer(KeyframePolicy(capacity=16))
    eng = RenderEngine(FakeRenderer(), buf, RenderSettings(num_source_views=4, min_keyframes=3))
    for c in centres:
        buf.add(torch.rand(3, 24, 32), K, make_pose(torch.eye(3), torch.tensor(c)), force=True)
    while eng.worker.step():
        pass
    eng.render(make_pose(torch.eye(3), torch.tensor(centres[1])), K, 32, 24)
    return eng


def _status(eng: RenderEngine, **params: float) -> tuple[bytes, str, dict[str, str]]:
    p = params_from_values({"model.device": "cpu", **params})
    st = render_node_status(p, eng.buffer, eng, eng.renderer, "m.safetensors", None, InputStats())
    return st.level, st.message, {kv.key: kv.value for kv in st.values}


def test_sources_along_the_axis_turn_the_status_to_warn() -> None:
    ahead = _engine_after_one_render([(0.0, 0.0, 0.3 * i) for i in range(6)])
    level, msg, vals = _status(ahead, **{"publish.warn_lateral_share": 0.4})
    assert level == DiagnosticStatus.WARN
    assert "along the camera's axis" in msg and "0.00 < 0.40" in msg
    assert vals["last_render_lateral_baseline_share"] == "0.00"
    # 0, the default, turns the check off; the share is still reported
    level, msg, vals = _status(ahead)
    assert level == DiagnosticStatus.OK and msg == "ok"
    assert vals["last_render_lateral_baseline_share"] == "0.00"


def test_sources_side_by_side_keep_the_status_ok() -> None:
    beside = _engine_after_one_render([(0.3 * i, 0.0, 0.0) for i in range(6)])
    level, msg, vals = _status(beside, **{"publish.warn_lateral_share": 0.4})
    assert level == DiagnosticStatus.OK and msg == "ok"
    assert vals["last_render_lateral_baseline_share"] == "1.00"


def test_low_parallax_warning_thresholds() -> None:
    assert low_parallax_warning(None, 0.4) is None          # no render yet
    assert low_parallax_warning(0.39, 0.0) is None          # disabled
    assert low_parallax_warning(0.40, 0.4) is None
    text = low_parallax_warning(0.31, 0.4)
    assert text is not None and "0.31 < 0.40" in text


def test_the_threshold_is_a_checked_parameter() -> None:
    with pytest.raises(ValueError, match=r"publish.warn_lateral_share=1.5 must lie in \[0.0, 1.0\]"):
        params_from_values({"publish.warn_lateral_share": 1.5})


def test_the_node_loads_its_renderer_with_the_floor_bound_and_reports_it(tmp_path) -> None:
    """``model.floor_bound`` / ``model.floor_z`` reach the renderer the node loads
    (``GSNeRFCore._load_renderer``, run on a stand-in for the node), and /diagnostics says
    whether the bound is on."""
    from types import SimpleNamespace

    from gsnerf_ros.ros.node import GSNeRFCore
    from helpers.fakes import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "tiny")
    for values, want in (({}, None), ({"model.floor_bound": True, "model.floor_z": -0.25},
                                      -0.25)):
        stand_in = SimpleNamespace(p=params_from_values(
            {"model.device": "cpu", "model.checkpoint": str(ckpt), **values}))
        GSNeRFCore._load_renderer(stand_in, None)
        assert stand_in.renderer.floor_z == want
        eng = RenderEngine(stand_in.renderer, KeyframeBuffer(KeyframePolicy()), RenderSettings())
        st = render_node_status(stand_in.p, eng.buffer, eng, stand_in.renderer, "m", None,
                                InputStats())
        got = {kv.key: kv.value for kv in st.values}["floor_bound"]
        assert got == ("off" if want is None else "z = -0.25 m")


def test_two_instances_in_namespaces_are_told_apart_on_diagnostics() -> None:
    """The status is named by the node's fully qualified name (real rclpy, two nodes)."""
    pytest.importorskip("rclpy")
    from diagnostic_msgs.msg import DiagnosticArray

    from helpers.ros_nodes import InProcessNode, wait_until

    fast = {"publish.diagnostics_period": 0.1}
    with InProcessNode(node_kwargs={"namespace": "/robot_a"}, **fast) as a, \
            InProcessNode(node_kwargs={"namespace": "/robot_b"}, **fast):
        names: set[str] = set()
        a.peer.create_subscription(DiagnosticArray, "/diagnostics",
                                   lambda m: names.update(s.name for s in m.status), 10)
        wait_until(lambda: {"/robot_a/gsnerf: render node",
                            "/robot_b/gsnerf: render node"} <= names, 20,
                   f"both instances' statuses (seen {names})")
        assert a.node.get_fully_qualified_name() == "/robot_a/gsnerf"
