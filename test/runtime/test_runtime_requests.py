"""ROS-free parts of the node: request validation, parameters and the renderer's settings
(the keyframe buffer and engine: test_runtime_core.py)."""

from __future__ import annotations

import pytest
import torch

from gsnerf_ros.geometry import look_at
from gsnerf_ros.runtime.ingest import resize_frame
from gsnerf_ros.runtime.keyframes import Keyframe
from gsnerf_ros.runtime.params import PARAMETERS, params_from_values
from gsnerf_ros.runtime.requests import (
    CameraSpec, RequestError, check_image_matches_info, check_intrinsics, pose_from_components,
    resolve_camera,
)
from helpers.runtime_inputs import K, pose_x as _pose, random_image as _img


def test_request_pose_validation() -> None:
    c2w = pose_from_components((1, 2, 3), (0, 0, 0, 1))
    assert torch.allclose(c2w[:3, 3], torch.tensor([1.0, 2, 3], dtype=torch.float64))
    with pytest.raises(RequestError, match="NaN"):
        pose_from_components((0, 0, 0), (0, 0, float("nan"), 1))
    with pytest.raises(RequestError, match="unit quaternion"):
        pose_from_components((0, 0, 0), (0, 0, 0, 0))
    with pytest.raises(RequestError, match="norm 2.0"):
        pose_from_components((0, 0, 0), (0, 0, 0, 2))
    with pytest.raises(RequestError, match="position"):
        pose_from_components((float("inf"), 0, 0), (0, 0, 0, 1))


def test_resolve_camera_zero_K_scaling_limits_and_bad_intrinsics() -> None:
    latest = CameraSpec(K.double(), 32, 24)
    cam = resolve_camera(torch.zeros(3, 3), 0, 0, latest, 64, 48, 100, 100)
    assert (cam.width, cam.height) == (64, 48)
    assert cam.K[0, 0] == pytest.approx(80.0) and cam.K[0, 2] == pytest.approx(31.5)
    with pytest.raises(RequestError, match="no camera_info has been received"):
        resolve_camera(torch.zeros(3, 3), 0, 0, None, 64, 48, 100, 100)
    with pytest.raises(RequestError, match="exceeds the limit 100x100"):
        resolve_camera(K, 200, 48, latest, 64, 48, 100, 100)
    with pytest.raises(RequestError, match="focal lengths"):
        resolve_camera(torch.tensor([[0.0, 0, 1], [0, 0, 1], [0, 0, 1]]), 32, 24, latest, 1, 1,
                       100, 100)
    with pytest.raises(RequestError, match="NaN"):
        check_intrinsics(torch.full((3, 3), float("nan")), 32, 24)
    with pytest.raises(RequestError, match="camera_info says 32x24"):
        check_image_matches_info(64, 48, 32, 24)


def test_parameters_have_descriptions_and_validate() -> None:
    assert all(s.description for s in PARAMETERS)
    p = params_from_values({})
    assert p.keyframes_capacity == 32 and p.model_device == "cuda"
    with pytest.raises(ValueError, match="keyframes.capacity"):
        params_from_values({"keyframes.capacity": 0})
    with pytest.raises(ValueError, match="render.sampling_mode"):
        params_from_values({"render.sampling_mode": "magic"})
    with pytest.raises(ValueError, match="model.near"):
        params_from_values({"model.near": 5.0, "model.far": 1.0})
    assert p.model_num_neighbors == -1 and params_from_values(
        {"model.num_neighbors": 4}).model_num_neighbors == 4
    with pytest.raises(ValueError, match="model.num_neighbors"):
        params_from_values({"model.num_neighbors": 0})
    assert p.model_colour_views == -1 and params_from_values(
        {"model.colour_views": 0}).model_colour_views == 0
    with pytest.raises(ValueError, match="model.colour_views"):
        params_from_values({"model.colour_views": -2})


def test_yaml_config_matches_the_declared_parameters() -> None:
    import yaml
    from pathlib import Path

    data = yaml.safe_load((Path(__file__).parents[2] / "config" / "gsnerf.yaml").read_text())
    flat: dict[str, object] = {}

    def walk(d: dict, prefix: str) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v, prefix + k + ".")
            else:
                flat[prefix + k] = v
    walk(data["/**/gsnerf"]["ros__parameters"], "")
    assert set(flat) == {s.name for s in PARAMETERS}
    params_from_values(flat)


def test_resize_frame_scales_intrinsics() -> None:
    img, K2, d = resize_frame(torch.rand(3, 24, 32), K, 16, 12, torch.ones(24, 32))
    assert img.shape == (3, 12, 16) and d.shape == (12, 16)
    assert K2[0, 0] == pytest.approx(20.0) and K2[0, 2] == pytest.approx(7.5)
    same = torch.rand(3, 24, 32)
    assert resize_frame(same, K, 0, 0)[0] is same


def test_look_at_pose_is_a_valid_request_pose() -> None:
    from gsnerf_ros.geometry import matrix_to_quat

    c2w = look_at(torch.tensor([1.0, 2.0, 1.5]), torch.tensor([0.0, 0.0, 1.0]))
    q = matrix_to_quat(c2w[:3, :3])
    back = pose_from_components(c2w[:3, 3].tolist(), q.tolist())
    assert torch.allclose(back.float(), c2w, atol=1e-5)


def test_renderer_reuses_the_stacked_sources_of_the_same_set() -> None:
    """GSNeRFRenderer stacks cached encodings once per source set: the same keyframes in another
    order are a hit with the identical result; another set (or a re-encoded keyframe) is a miss
    and renders exactly what a fresh renderer renders."""
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig
    from gsnerf_ros.runtime.engine import GSNeRFRenderer

    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(3)).eval()
    r = GSNeRFRenderer(model, near=0.5, far=6.0)
    kfs = [Keyframe(i, float(i), "cam", _img(), K, _pose(0.2 * i)) for i in range(5)]
    for kf in kfs:
        kf.encoding = r.encode(kf, [k for k in kfs if k is not kf][:2])
    target = _pose(0.3, 5.0)
    first = r.render([kfs[2], kfs[0], kfs[1]], K, target, 24, 32)
    again = r.render([kfs[1], kfs[2], kfs[0]], K, target, 24, 32)
    assert (r.stack_cache.hits, r.stack_cache.misses) == (1, 1)
    assert torch.equal(first.rgb, again.rgb) and torch.equal(first.labels, again.labels)
    other = r.render([kfs[3], kfs[4], kfs[0]], K, target, 24, 32)
    assert (r.stack_cache.hits, r.stack_cache.misses) == (1, 2)
    fresh = GSNeRFRenderer(model, near=0.5, far=6.0).render([kfs[0], kfs[3], kfs[4]], K, target,
                                                           24, 32)
    assert torch.equal(other.rgb, fresh.rgb) and torch.equal(other.depth, fresh.depth)
    kfs[0].encoding = r.encode(kfs[0], kfs[1:3])       # re-encoded: a new object, not reused
    r.render([kfs[3], kfs[4], kfs[0]], K, target, 24, 32)
    assert (r.stack_cache.hits, r.stack_cache.misses) == (1, 3)


def test_renderer_overrides_the_checkpoint_neighbour_count() -> None:
    """``num_neighbors`` >= 1 replaces the checkpoint's cost_volume.num_neighbors (what the
    encoding worker waits for); None or -1 keeps it."""
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig
    from gsnerf_ros.runtime.engine import GSNeRFRenderer

    model = GSNeRF(GSNeRFConfig.tiny(3)).eval()
    own = model.config.cost_volume.num_neighbors
    assert GSNeRFRenderer(model, near=0.5, far=6.0, num_neighbors=-1).num_neighbors == own
    r = GSNeRFRenderer(model, near=0.5, far=6.0, num_neighbors=own + 2)
    assert r.num_neighbors == own + 2 == model.config.cost_volume.num_neighbors
    assert f"{own + 2} cost-volume neighbours" in r.description


def test_renderer_uses_keyframe_depth_only_when_enabled() -> None:
    """RGB-D keyframes: the measured depth replaces the cost-volume depth of the encoding
    (where valid) with ``use_sensor_depth``; without it, or without depth, it does not."""
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig
    from gsnerf_ros.runtime.engine import GSNeRFRenderer

    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(3)).eval()
    depth = torch.full((24, 32), 2.5)
    depth[0] = 0.0                                   # no measurement in the first row
    kf = Keyframe(0, 0.0, "cam", _img(), K, _pose(0.0), depth=depth)
    nbrs = [Keyframe(i, float(i), "cam", _img(), K, _pose(0.2 * i)) for i in (1, 2)]
    on = GSNeRFRenderer(model, near=0.5, far=6.0).encode(kf, nbrs)
    off = GSNeRFRenderer(model, near=0.5, far=6.0, use_sensor_depth=False).encode(kf, nbrs)
    assert torch.equal(on.depth[1:], depth[1:])
    assert torch.equal(on.depth[0], off.depth[0])
    assert not torch.allclose(off.depth[1:], depth[1:])
    kf.depth = None
    assert torch.equal(GSNeRFRenderer(model, near=0.5, far=6.0).encode(kf, nbrs).depth, off.depth)
