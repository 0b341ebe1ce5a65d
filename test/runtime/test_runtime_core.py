"""ROS-free parts of the node: keyframe buffer, encoding worker, engine, pose input (request
validation and parameters: test_runtime_requests.py; image conversion:
test_ros_image_conversion.py)."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from gsnerf_ros.geometry import look_at, make_pose
from gsnerf_ros.runtime.engine import RenderEngine, RenderSettings, sources_lateral_share
from gsnerf_ros.runtime.encoding_worker import EncodingWorker
from gsnerf_ros.runtime.keyframes import Keyframe, KeyframeBuffer, KeyframePolicy
from gsnerf_ros.runtime.pending_frames import PendingFrames, TimeJumpDetector
from gsnerf_ros.runtime.requests import RequestError
from helpers.fakes import FakeRenderer
from helpers.runtime_inputs import K, pose_x as _pose, random_image as _img
from helpers.ros_nodes import spin_until_closed

# -------------------------------------------------------------------------- keyframes
def test_keyframe_policy_translation_and_rotation_thresholds() -> None:
    buf = KeyframeBuffer(KeyframePolicy(min_translation=0.2, min_rotation_deg=15, capacity=10))
    assert buf.add(_img(), K, _pose(0.0))[0] is not None          # first frame always enters
    assert buf.add(_img(), K, _pose(0.1))[0] is None              # 0.1 m: too close
    assert buf.add(_img(), K, _pose(0.1, yaw_deg=10))[0] is None  # 10 deg: too little
    assert buf.add(_img(), K, _pose(0.25))[0] is not None         # moved 0.25 m
    assert buf.add(_img(), K, _pose(0.25, yaw_deg=20))[0] is not None  # turned 20 deg
    assert len(buf) == 3 and buf.stats.rejected == 2
    assert [k.id for k in buf.keyframes()] == [0, 1, 2]


def _add_encoded(buf: KeyframeBuffer, x: float, stamp: float = 0.0) -> Keyframe:
    kf, _ = buf.add(_img(), K, _pose(x), stamp, force=True)
    assert kf is not None
    buf.set_encoding(kf.id, kf.id)
    return kf


def test_eviction_oldest_is_a_sliding_window() -> None:
    buf = KeyframeBuffer(KeyframePolicy(min_translation=0.0, min_rotation_deg=0.0, capacity=3))
    for i in range(5):
        _add_encoded(buf, float(i))
    assert [k.id for k in buf.keyframes()] == [2, 3, 4]
    assert buf.stats.evicted == 2


def test_eviction_redundant_drops_the_most_redundant_keyframe() -> None:
    buf = KeyframeBuffer(KeyframePolicy(capacity=3, eviction="redundant"))
    for x in (0.0, 5.0, 5.05, 10.0):
        _add_encoded(buf, x)
    xs = sorted(float(k.c2w[0, 3]) for k in buf.keyframes())
    assert len(xs) == 3 and 0.0 in xs and 10.0 in xs          # coverage kept at both ends
    assert sum(abs(x - 5.0) < 0.1 for x in xs) == 1            # one of the near-duplicates left


_K32 = torch.tensor([[16.0, 0.0, 15.5], [0.0, 16.0, 11.5], [0.0, 0.0, 1.0]])  # 90 deg, 32x24


def _robot_pose(x: float, y: float) -> torch.Tensor:
    """A robot camera 0.4 m up at (x, y) looking along +y."""
    eye = torch.tensor([x, y, 0.4])
    return look_at(eye, eye + torch.tensor([0.0, 1.0, 0.0]))


def test_eviction_baseline_keeps_a_lateral_baseline_while_the_robot_drives_forward() -> None:
    # one keyframe 0.2 m beside the start, then a robot drives 2.7 m straight ahead: the
    # sideways pair is the only baseline that triangulates the view ahead
    kept = {}
    for eviction in ("oldest", "redundant", "baseline"):
        buf = KeyframeBuffer(KeyframePolicy(capacity=6, eviction=eviction))
        buf.encode_want_neighbors = 2
        for x, y in [(0.2, 0.0)] + [(0.0, 0.3 * i) for i in range(10)]:
            kf, _ = buf.add(_img(), _K32, _robot_pose(x, y), force=True)
            assert kf is not None
            buf.set_encoding(kf.id, "enc")
        assert len(buf) == 6
        kept[eviction] = [k.id for k in buf.keyframes()]
    assert 0 not in kept["oldest"] and 0 not in kept["redundant"]
    assert 0 in kept["baseline"] and 1 in kept["baseline"]       # the lateral pair
    assert kept["baseline"][-3:] == [8, 9, 10]                     # the newest are kept


def test_eviction_baseline_never_drops_the_newest_or_a_keyframe_waiting_for_encoding() -> None:
    from gsnerf_ros.runtime.keyframes import BASELINE_KEEP_NEWEST

    buf = KeyframeBuffer(KeyframePolicy(capacity=BASELINE_KEEP_NEWEST, eviction="baseline"))
    for i in range(BASELINE_KEEP_NEWEST + 2):
        buf.add(_img(), _K32, _robot_pose(0.0, 0.3 * i), force=True)   # none encoded
    assert len(buf) == BASELINE_KEEP_NEWEST + 2 and buf.stats.evicted == 0
    with pytest.raises(ValueError, match="eviction"):
        KeyframePolicy(eviction="lateral")
    with pytest.raises(ValueError, match="neighbour_rule"):
        KeyframePolicy(neighbour_rule="farthest")
    with pytest.raises(ValueError, match="depth_range"):
        KeyframePolicy(depth_range=(2.0, 1.0))


def test_keyframe_neighbours_by_rule() -> None:
    poses = [(0.0, 0.0), (0.0, 0.25), (0.0, -0.25), (0.4, -0.5), (0.0, 0.5)]
    chosen = {}
    for rule in ("nearest", "triangulation"):
        buf = KeyframeBuffer(KeyframePolicy(capacity=8, neighbour_rule=rule))
        for x, y in poses:
            buf.add(_img(), _K32, _robot_pose(x, y), force=True)
        kf = buf.keyframes()[0]
        chosen[rule] = [n.id for n in buf.neighbours_for(kf, 2)]
    assert set(chosen["nearest"]) == {1, 2}                       # on the robot's own line
    assert chosen["triangulation"][0] == 3                       # the sideways view first
    # the scene depth: the keyframe's measured depth, else the known ones, else the prior
    buf = KeyframeBuffer(KeyframePolicy(capacity=8, depth_range=(0.25, 4.0)))
    a, _ = buf.add(_img(), _K32, _robot_pose(0, 0), force=True)
    b, _ = buf.add(_img(), _K32, _robot_pose(0, 1), force=True,
                   depth=torch.full((24, 32), 3.0))
    assert buf._scene_depth(a, buf.keyframes()) == pytest.approx(1.0)
    assert buf._scene_depth(b, buf.keyframes()) == pytest.approx(3.0)
    assert buf.set_encoding(a.id, "enc", scene_depth=2.5)
    assert buf._scene_depth(a, buf.keyframes()) == pytest.approx(2.5)


def test_keyframes_waiting_for_or_under_encoding_are_never_evicted() -> None:
    buf = KeyframeBuffer(KeyframePolicy(capacity=3))
    for x in (0.0, 1.0):
        _add_encoded(buf, x)
    buf.add(_img(), K, _pose(2.0), force=True)                 # id 2: waiting
    kf3, ev = buf.add(_img(), K, _pose(3.0), force=True)       # id 3: waiting, evicts id 0
    assert [k.id for k in ev] == [0]
    job = buf.next_pending(1)
    assert job is not None and job[0].id == 3                  # newest first, now under encoding
    _, ev = buf.add(_img(), K, _pose(4.0), force=True)         # evicts 1, never 2 or 3
    assert [k.id for k in ev] == [1]
    _, ev = buf.add(_img(), K, _pose(5.0), force=True)         # nothing evictable: over capacity
    assert ev == [] and [k.id for k in buf.keyframes()] == [2, 3, 4, 5]
    assert buf.set_encoding(3, "enc")
    _, ev = buf.add(_img(), K, _pose(6.0), force=True)
    assert [k.id for k in ev] == [3]                            # 2, 4, 5 still wait


def test_encoding_goes_newest_first() -> None:
    buf = KeyframeBuffer(KeyframePolicy(capacity=8))
    for x in range(4):
        buf.add(_img(), K, _pose(float(x)), force=True)
    order = []
    while (job := buf.next_pending(1)) is not None:
        order.append(job[0].id)
        buf.set_encoding(job[0].id, "enc")
    assert order == [3, 2, 1, 0]


def test_rate_cap_skips_frames_too_soon_or_while_the_encoder_is_behind() -> None:
    buf = KeyframeBuffer(KeyframePolicy(min_translation=0.2, capacity=16, min_interval=0.5,
                                        max_pending=2))
    assert buf.add(_img(), K, _pose(0.0), stamp=0.0)[0] is not None
    assert buf.add(_img(), K, _pose(1.0), stamp=0.1)[0] is None     # moved, but too soon
    assert buf.add(_img(), K, _pose(1.0), stamp=0.6)[0] is not None
    assert buf.num_pending() == 2
    assert buf.add(_img(), K, _pose(2.0), stamp=1.2)[0] is None     # 2 wait for encoding
    buf.set_encoding(0, "enc")
    assert buf.add(_img(), K, _pose(2.0), stamp=1.3)[0] is not None
    assert buf.stats.skipped_rate == 2 and buf.stats.rejected == 0
    # coverage: a skipped frame is compared again with the same last keyframe
    assert buf.add(_img(), K, _pose(2.1), stamp=2.0)[0] is None and buf.stats.rejected == 1


def test_rate_cap_never_starves_an_encoder_waiting_for_neighbours() -> None:
    buf = KeyframeBuffer(KeyframePolicy(min_translation=0.2, capacity=16, max_pending=2))
    EncodingWorker(buf, lambda kf, n: kf.id, num_neighbors=2)        # needs 3 keyframes
    for i in range(3):                                               # 3 pending, none encodable
        assert buf.add(_img(), K, _pose(float(i)), stamp=float(i))[0] is not None
    assert buf.next_pending(2) is not None
    assert buf.add(_img(), K, _pose(9.0), stamp=9.0)[0] is None      # now the cap applies


def test_clear_drops_everything_and_restarts_the_policy() -> None:
    buf = KeyframeBuffer(KeyframePolicy(capacity=4))
    _add_encoded(buf, 0.0)
    _add_encoded(buf, 1.0)
    assert buf.clear() == 2 and len(buf) == 0 and buf.stats.resets == 1
    kf, _ = buf.add(_img(), K, _pose(1.0), stamp=0.0)
    assert kf is not None and kf.id == 2                      # first frame after a reset enters


def test_encoding_worker_encodes_each_keyframe_once_with_neighbours() -> None:
    buf = KeyframeBuffer(KeyframePolicy(min_translation=0.0, min_rotation_deg=0.0, capacity=8))
    calls: list[tuple[int, list[int]]] = []

    def encode(kf: Keyframe, nbrs: list[Keyframe]) -> dict:
        calls.append((kf.id, [n.id for n in nbrs]))
        return {"id": kf.id}

    worker = EncodingWorker(buf, encode, num_neighbors=2)
    buf.add(_img(), K, _pose(0.0), force=True)
    buf.add(_img(), K, _pose(1.0), force=True)
    assert worker.step() is False          # 2 keyframes: not enough neighbours yet
    buf.add(_img(), K, _pose(2.0), force=True)
    worker.start()
    try:
        assert buf.wait_for(lambda b: b.num_encoded() == 3, timeout=5.0)
        buf.add(_img(), K, _pose(3.0), force=True)
        assert buf.wait_for(lambda b: b.num_encoded() == 4, timeout=5.0)
    finally:
        worker.stop()
    assert sorted(c[0] for c in calls) == [0, 1, 2, 3]      # once each
    assert all(len(n) == 2 and kid not in n for kid, n in calls)
    assert dict(calls)[3] == [2, 1]                          # nearest first
    assert buf.get(3).encoding == {"id": 3}


def test_keyframes_encode_early_with_fewer_neighbours_then_upgrade() -> None:
    """min_neighbors < num_neighbors: the first keyframes are encoded as soon as 2 others exist
    (against all there are), new keyframes go first, and once 4 others exist each early one is
    encoded again against 4 (newest first); a failed upgrade keeps the earlier encoding."""
    buf = KeyframeBuffer(KeyframePolicy(capacity=16))
    calls: list[tuple[int, int]] = []
    fail_upgrade_of: set[int] = set()

    def encode(kf: Keyframe, nbrs: list[Keyframe]) -> tuple[int, int]:
        if kf.encoded and kf.id in fail_upgrade_of:
            raise RuntimeError("device busy")
        calls.append((kf.id, len(nbrs)))
        return (kf.id, len(nbrs))

    errors: list[str] = []
    worker = EncodingWorker(buf, encode, num_neighbors=4, min_neighbors=2,
                            on_error=lambda kf, e: errors.append(str(e)))
    for x in range(2):
        buf.add(_img(), K, _pose(float(x)), force=True)
    assert worker.step() is False                        # 1 other keyframe: too few
    buf.add(_img(), K, _pose(2.0), force=True)
    while worker.step():
        pass
    assert calls == [(2, 2), (1, 2), (0, 2)] and buf.num_encoded() == 3
    assert buf.num_provisional() == 0                    # 2 others is all there are
    buf.add(_img(), K, _pose(3.0), force=True)
    assert buf.num_provisional() == 3                    # now 3 others exist
    fail_upgrade_of.add(0)
    for _ in range(8):                                   # a failed step returns False too
        worker.step()
    # the new keyframe first (3 others), then upgrades of 2 and 1 to 3 neighbours; 0 fails
    assert calls[3:] == [(3, 3), (2, 3), (1, 3)] and errors == ["device busy"]
    assert buf.get(0).encoding == (0, 2) and buf.get(0).encoded      # kept, not retried
    buf.add(_img(), K, _pose(4.0), force=True)
    fail_upgrade_of.clear()
    while worker.step():
        pass
    assert calls[6] == (4, 4) and sorted(calls[7:]) == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert buf.num_provisional() == 0 and buf.stats.upgraded == 6
    assert all(buf.get(i).encoding == (i, 4) and buf.get(i).encoded_with == 4 for i in range(5))
    # min = num (the default): each keyframe exactly once, nothing provisional
    once = KeyframeBuffer(KeyframePolicy(capacity=8))
    w = EncodingWorker(once, lambda kf, n: len(n), num_neighbors=2)
    for x in range(5):
        once.add(_img(), K, _pose(float(x)), force=True)
        while w.step():
            pass
    assert once.stats.encoded == 5 and once.stats.upgraded == 0 and once.num_provisional() == 0
    with pytest.raises(ValueError, match="min_neighbors"):
        EncodingWorker(once, lambda kf, n: 0, num_neighbors=2, min_neighbors=-1)


def test_encoding_failure_is_reported_and_never_used_as_a_source() -> None:
    buf = KeyframeBuffer(KeyframePolicy(capacity=4))
    errors: list[str] = []
    worker = EncodingWorker(buf, lambda kf, n: (_ for _ in ()).throw(RuntimeError("boom")), 0,
                            on_error=lambda kf, e: errors.append(str(e)))
    buf.add(_img(), K, _pose(0.0), force=True)
    worker.step()
    assert errors == ["boom"] and buf.num_encoded() == 0 and buf.next_pending(0) is None


def _filled_engine(n: int, renderer: FakeRenderer, **kw: int) -> RenderEngine:
    buf = KeyframeBuffer(KeyframePolicy(capacity=16))
    eng = RenderEngine(renderer, buf, RenderSettings(**kw))
    for i in range(n):
        buf.add(_img(), K, _pose(float(i)), force=True)
    while eng.worker.step():
        pass
    return eng


def test_engine_refuses_before_enough_keyframes_and_selects_nearest() -> None:
    eng = _filled_engine(2, FakeRenderer(), num_source_views=2, min_keyframes=3)
    with pytest.raises(RequestError, match="only 2 encoded keyframe.*move the camera"):
        eng.render(_pose(0.0), K, 32, 24)
    eng.buffer.add(_img(), K, _pose(9.0), force=True)          # received, not encoded yet
    with pytest.raises(RequestError, match=r"3 received, 1 waiting.*encoder is catching up"):
        eng.render(_pose(0.0), K, 32, 24)
    eng = _filled_engine(6, FakeRenderer(), num_source_views=2, min_keyframes=3)
    res = eng.render(_pose(3.9), K, 32, 24)
    assert res.source_ids == [4, 3]
    assert res.output.rgb.shape == (24, 32, 3)
    assert eng.last_latency_ms is not None and eng.renders == 1
    # The keyframes lie side by side (along x, looking along z): all baseline is lateral.
    assert eng.last_lateral_share == pytest.approx(1.0)


def test_sources_lateral_share_tells_forward_from_sideways_motion() -> None:
    """What the node's diagnostics report as ``last_render_lateral_baseline_share``."""
    ahead = [make_pose(torch.eye(3), torch.tensor([0.0, 0.0, 0.3 * i])) for i in range(4)]
    beside = [_pose(0.3 * i) for i in range(4)]
    assert sources_lateral_share(ahead, 2) == pytest.approx(0.0, abs=1e-6)
    assert sources_lateral_share(beside, 2) == pytest.approx(1.0)
    assert sources_lateral_share(beside[:1], 2) is None


def test_engine_runs_one_render_at_a_time_and_bounds_the_queue() -> None:
    r = FakeRenderer(delay=0.3)
    eng = _filled_engine(4, r, num_source_views=2, min_keyframes=2, queue_size=1)
    outcomes: list[str] = []

    def call() -> None:
        try:
            eng.render(_pose(1.0), K, 8, 6)
            outcomes.append("ok")
        except RequestError as exc:
            outcomes.append("full" if str(exc).startswith("busy: ") else str(exc))

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.02)
    for t in threads:
        t.join()
    assert r.max_active == 1
    assert sorted(outcomes) == ["full", "full", "ok", "ok"]


# ------------------------------------------------------------------- pose input (ROS-free)
def test_pending_frames_resolve_later_or_expire_with_the_reason() -> None:
    dropped: list[tuple[str, str]] = []
    pf: PendingFrames[str] = PendingFrames(2, max_wait=0.2, not_ready=RequestError,
                                           on_drop=lambda f, why: dropped.append((f, why)))
    poses = {"a": None, "b": None}

    def resolve(f: str) -> str:
        if poses[f] is None:
            raise RequestError(f"no TF for {f}")
        return poses[f]

    pf.push("a")
    pf.push("b")
    assert list(pf.ready(resolve)) == [] and len(pf) == 2     # both wait, nothing blocks
    poses["b"] = "pose-b"
    assert list(pf.ready(resolve)) == [("b", "pose-b")] and len(pf) == 1
    time.sleep(0.25)
    assert list(pf.ready(resolve)) == [] and dropped == [("a", "no TF for a")]
    pf.push("c")
    pf.push("d")
    pf.push("e")                                               # over capacity: c dropped
    assert dropped[-1][0] == "c" and "more than 2 frames" in dropped[-1][1] and len(pf) == 2


def test_time_jump_detector_flags_stamps_going_back_and_staying_back() -> None:
    tj = TimeJumpDetector(threshold=1.0, confirm=3)
    assert tj.check(100.0) is None and tj.check(100.1) is None
    assert tj.check(99.5) is None                              # small reordering: not a jump
    assert tj.check(80.0) is None and tj.check(100.2) is None  # one stale frame: not a jump
    assert tj.check(30.0) is None and tj.check(30.1) is None   # a bag loop ...
    assert tj.check(30.2) == pytest.approx(70.0)               # ... confirmed by the 3rd frame
    assert tj.check(30.3) is None and tj.jumps == 1 and tj.latest == pytest.approx(30.3)


class _FailingExecutor:
    """Stands in for an executor whose ``spin`` raises, as rclpy's does when its context is
    torn down under it (InvalidHandle) or when a callback fails."""

    def spin(self) -> None:
        raise RuntimeError("Destroyable object is invalid")


def test_spin_thread_ends_quietly_only_once_the_test_closes_it() -> None:
    closing = threading.Event()
    with pytest.raises(RuntimeError, match="invalid"):
        spin_until_closed(_FailingExecutor(), closing)    # still running: the error is shown
    closing.set()
    spin_until_closed(_FailingExecutor(), closing)        # tearing down: the race is quiet
