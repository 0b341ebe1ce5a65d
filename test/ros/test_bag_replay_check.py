"""``gsnerf_ros.ros.tools.bag_replay_check`` end to end over real DDS: a tiny robot-base room
written as a bag by the project's bag writer, played into the real node process, its renders of
the held-out frames scored against gsnerf-eval's on the same views.

The set-up makes the node's render and the offline one from the node's sources the same
computation: every bag frame becomes a keyframe (no motion threshold), every keyframe is a
source (``--num-sources`` = keyframes) and every keyframe's cost volume matches all the others
(``--num-neighbors`` = keyframes - 1), so the buffer's neighbour choice, which depends on when
each keyframe was encoded, cannot differ from gsnerf-eval's among the sources. What remains
between the two is the pose's float32 round trip through TF and the request's quaternion
(about 1e-7 relative): the depths must agree to 1e-4 on average. A wrong source mapping, a pose
or intrinsics off by a pixel, or a setting not passed to the node moves them by 1e-2 or more.

It needs every frame of the bag in the node, however busy the machine: with ``--num-neighbors``
= keyframes - 1 and one frame lost, no keyframe could ever be encoded. The check delivers them
reliably, and fails at once with the node's counters when its keyframes cannot be encoded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

pytest.importorskip("rclpy")

from helpers.fakes import make_tiny_checkpoint  # noqa: E402

from gsnerf_ros.ros.tools.bag_replay_check import (  # noqa: E402
    frame_of_stamp, main, never_encoded,
)

pytestmark = pytest.mark.ros

H, W, FRAMES, TARGETS = 48, 64, 12, (3, 8)


@pytest.fixture(scope="module")
def room_and_checkpoint(tmp_path_factory) -> tuple[Path, Path]:
    from gsnerf_ros.data.procedural.cli import main as synth

    root = tmp_path_factory.mktemp("replay")
    synth([str(root / "room"), "--split", "val", "--paths", "robot", "--scenes", "1", "--frames",
           str(FRAMES), "--height", str(H), "--width", str(W), "--seed", "950"])
    return root / "room", make_tiny_checkpoint(root / "tiny.safetensors")


def test_node_replaying_a_robot_bag_renders_what_gsnerf_eval_renders_from_its_sources(
        room_and_checkpoint, tmp_path) -> None:
    room, ckpt = room_and_checkpoint
    kept = FRAMES - len(TARGETS)
    rc = main(["--room", str(room), "--checkpoint", str(ckpt), "--out", str(tmp_path),
               "--targets", ",".join(map(str, TARGETS)), "--num-sources", str(kept),
               "--num-neighbors", str(kept - 1), "--min-translation", "0",
               "--min-rotation-deg", "0", "--device", "cpu", "--threads", "1",
               # 10-20 s on an idle machine, 190 s on a starved one (SCHED_IDLE beside busy
               # loops): a deadline with room for a slow machine, inside pytest's 600 s limit
               "--timeout", "480"])
    assert rc == 0
    r = json.loads((tmp_path / "replay_check.json").read_text())
    frames = [i for i in range(FRAMES) if i not in TARGETS]
    assert r["bag_frames"] == kept and r["keyframes"] == kept
    assert r["keyframe_frames"] == frames                 # the held-out frames never played
    assert r["node_parameters"]["render.num_source_views"] == kept
    assert r["node_parameters"]["qos.input_reliability"] == "reliable"   # every frame arrives
    assert r["node_parameters"]["qos.input_depth"] >= kept
    assert r["node_parameters"]["model.num_neighbors"] == kept - 1
    assert [row["target"] for row in r["per_target"]] == list(TARGETS)
    for row in r["per_target"]:
        node, off, ev = row["node"], row["offline_node_sources"], row["eval"]
        # the node's depth: a finite positive value at every pixel with ground truth
        assert node["invalid_pixels"] == 0 and node["n"] == ev["n"] > 0.9 * H * W
        assert math.isfinite(node["abs_rel"]) and node["abs_rel"] > 0
        # every keyframe served as a source, so the offline render had the same ones
        assert sorted(node["sources"]) == off["sources"] == frames
        diff = off["depth_rel_diff_to_node"]
        assert diff["mean"] < 1e-4, diff
        assert abs(node["abs_rel"] - off["abs_rel"]) < 1e-4 * off["abs_rel"]
        # gsnerf-eval's own view: the protocol's sources (every 5th frame), not the node's
        assert set(ev["sources"]) <= {0, 5, 10} and not row["same_sources"]
        assert row["ratio"] == pytest.approx(node["abs_rel"] / ev["abs_rel"])
    assert r["mean"]["ratio"] == pytest.approx(r["mean"]["node_abs_rel"] /
                                               r["mean"]["eval_abs_rel"])


def test_keyframes_that_can_never_be_encoded_fail_the_check_at_once(room_and_checkpoint,
                                                                  tmp_path, capsys) -> None:
    """Every frame a keyframe and as many cost-volume neighbours as frames: each keyframe
    waits for one more than the bag has, so the check stops with the reason (not at its
    timeout)."""
    room, ckpt = room_and_checkpoint
    kept = FRAMES - len(TARGETS)
    rc = main(["--room", str(room), "--checkpoint", str(ckpt), "--out", str(tmp_path),
               "--targets", ",".join(map(str, TARGETS)), "--num-sources", str(kept),
               "--num-neighbors", str(kept), "--min-translation", "0",
               "--min-rotation-deg", "0", "--device", "cpu", "--threads", "1",
               "--timeout", "240"])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"holds {kept} keyframe(s) from the {kept} frames of the bag ({kept} received" in err
    assert "none ever will be" in err
    assert not (tmp_path / "replay_check.json").exists()


def test_never_encoded_only_once_every_frame_is_in_and_too_few_keyframes() -> None:
    d = {"frames_received": "10", "frames_waiting_for_pose": "0", "buffer_size": "9",
         "encoded_keyframes": "0", "input_errors": "1", "last_input_error": "no TF"}
    why = never_encoded(d, 10, 9)
    assert why is not None and "holds 9 keyframe(s) from the 10 frames" in why and "no TF" in why
    assert never_encoded(d, 10, 8) is None                         # 9 keyframes: 8 others each
    assert never_encoded({**d, "frames_received": "9"}, 10, 9) is None        # one still coming
    assert never_encoded({**d, "frames_waiting_for_pose": "1"}, 10, 9) is None
    assert never_encoded({**d, "encoded_keyframes": "1"}, 10, 9) is None
    assert never_encoded({k: v for k, v in d.items() if k != "buffer_size"}, 10, 9) is None


def test_harness_timeout_note_names_the_frames_received_and_the_last_input_error(
        tmp_path) -> None:
    from gsnerf_ros.ros.tools.node_harness import NodeHarness

    run = NodeHarness("tiny.safetensors", "cpu", {}, tmp_path, tmp_path, 0.0)
    assert run.diagnostics_note() == "no diagnostics from the node since the last wait began"
    run.diag.update(frames_received="10", input_errors="1", keyframes_added="9",
                    buffer_size="9", encoded_keyframes="0", renders="0",
                    last_input_error="no TF map -> camera at t=1.0")
    assert run.diagnostics_note() == (
        "node: frames_received=10, input_errors=1, keyframes_added=9, buffer_size=9, "
        "encoded_keyframes=0, last input error: no TF map -> camera at t=1.0")


def test_bad_input_fails_with_the_reason_before_starting_anything(room_and_checkpoint,
                                                                  tmp_path, capsys) -> None:
    room, ckpt = room_and_checkpoint
    assert main(["--room", str(room), "--checkpoint", str(ckpt), "--out", str(tmp_path / "a"),
                 "--targets", "3,99", "--device", "cpu"]) == 2
    assert "frames must be in 0..11" in capsys.readouterr().err
    assert main(["--room", str(room), "--checkpoint", str(tmp_path / "none.safetensors"),
                 "--out", str(tmp_path / "b"), "--device", "cpu"]) == 2
    assert "none.safetensors" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # nothing written


def test_frame_of_stamp_maps_bag_stamps_to_room_frames() -> None:
    from gsnerf_ros.ros.tools.bag_replay_check import BAG_RATE_HZ, BAG_START, ReplayError

    kept = [0, 1, 2, 4, 5]
    assert frame_of_stamp(BAG_START + 3 / BAG_RATE_HZ + 1e-9, kept) == 4
    with pytest.raises(ReplayError, match="no frame of the bag"):
        frame_of_stamp(BAG_START + 5 / BAG_RATE_HZ, kept)
    with pytest.raises(ReplayError, match="no frame of the bag"):
        frame_of_stamp(BAG_START + 0.05, kept)
