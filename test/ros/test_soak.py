"""A short soak (about 40 s): the real node (tiny untrained checkpoint, CPU) under the soak's
fast camera and planner; every planner call is answered and renders succeed once warmed up.
The full run is ``python -m gsnerf_ros.ros.tools.soak --minutes 10`` (numbers in
docs/BENCHMARKS.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("rclpy")
pytest.importorskip("psutil")

from gsnerf_ros.ros.tools.soak import (  # noqa: E402
    SoakConfig, circle_trajectory, rss_growth_percent, run_soak,
)
from helpers.fakes import make_tiny_checkpoint


def test_circle_trajectory_is_fast_and_turns() -> None:
    from gsnerf_ros.geometry import rotation_angle

    c2w = circle_trajectory(radius=1.0, speed=1.6, rate=10.0)
    step = (c2w[1, :3, 3] - c2w[0, :3, 3]).norm().item()
    turn = rotation_angle(c2w[1, :3, :3], c2w[0, :3, :3]).item()
    assert step * 10.0 == pytest.approx(1.6, rel=0.05)              # m/s at 10 Hz
    assert turn * 10.0 * 180 / 3.14159 >= 60.0                       # deg/s
    assert (c2w[:, 2, 3] - 1.4).abs().max() < 1e-9


def test_rss_growth_compares_the_minute_after_warmup_with_the_last_minute() -> None:
    rss = [(float(t), 100 + (50 if t < 30 else 0) + (t // 100)) for t in range(0, 400, 5)]
    g = rss_growth_percent(rss, warmup=60.0)                  # [60, 120) s vs [335, 400) s
    first = (8 * 100 + 4 * 101) / 12
    assert g == pytest.approx(100 * (103 - first) / first)
    assert rss_growth_percent(rss[:20], warmup=60.0) is None  # too short for two windows


@pytest.mark.timeout(300)
def test_short_soak_answers_every_call_and_renders_after_warmup(tmp_path: Path) -> None:
    ckpt = make_tiny_checkpoint(tmp_path / "tiny")
    report = run_soak(SoakConfig(minutes=0.6, warmup=15.0, checkpoint=str(ckpt),
                                 out=tmp_path / "soak", render_period=1.0))
    print({k: report[k] for k in ("renders", "renders_ok", "ok_percent_after_warmup",
                                  "refused", "rss_growth_after_warmup_percent")})
    assert report["renders"] >= 15
    assert report["ok_percent_after_warmup"] >= 90.0
    assert set(report["refused"]) <= {"only # encoded keyframe"}     # warm-up refusals only
    assert report["camera"]["frames_sent"] >= 0.6 * 60 * 10 * 0.8
    assert len(report["rss_mb"]) >= 5
