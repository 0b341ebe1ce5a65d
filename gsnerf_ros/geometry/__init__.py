"""Camera and pose math in pure PyTorch (no ROS, no model code)."""

from gsnerf_ros.geometry.camera import (
    camera_rays,
    bound_by_floor,
    floor_depth,
    invert_pose,
    level_intrinsics,
    pixel_grid,
    pixels_to_grid,
    project_points,
    scale_intrinsics,
    transform_points,
    unproject_depth,
    unproject_pixels,
    world_to_pixels,
)
from gsnerf_ros.geometry.depth import register_depth
from gsnerf_ros.geometry.triangulation import (
    NEIGHBOUR_RULES,
    TriangulationBand,
    angle_band,
    choose_neighbours,
    scene_depth_prior,
    triangulation_neighbours,
    triangulation_scores,
)
from gsnerf_ros.geometry.pose import (
    lateral_baseline_share,
    look_at,
    make_pose,
    matrix_to_quat,
    nearest_views,
    neighbour_lateral_shares,
    pose_distance,
    proximity_weights,
    quat_to_matrix,
    rotation_angle,
)

__all__ = [
    "bound_by_floor", "camera_rays", "floor_depth", "invert_pose", "level_intrinsics", "pixel_grid",
    "pixels_to_grid", "project_points",
    "scale_intrinsics", "transform_points", "unproject_depth", "unproject_pixels",
    "world_to_pixels", "lateral_baseline_share", "look_at", "make_pose", "matrix_to_quat",
    "nearest_views", "neighbour_lateral_shares", "pose_distance", "proximity_weights", "quat_to_matrix",
    "rotation_angle", "register_depth", "NEIGHBOUR_RULES", "TriangulationBand", "angle_band",
    "choose_neighbours", "scene_depth_prior", "triangulation_neighbours", "triangulation_scores",
]
