"""Procedural indoor rooms (``gsnerf-synth``): layout sampling, analytic ray casting with
procedural textures, lights and shadow maps, camera trajectories, and the Replica-layout writer.
"""

from gsnerf_ros.data.procedural.distribution import (
    SceneDistribution,
    base_setting,
    novel_aspects,
    novel_setting,
)
from gsnerf_ros.data.procedural.generator import (
    PROCEDURAL_FAR,
    PROCEDURAL_NEAR,
    SPLIT_OFFSETS,
    SynthConfig,
    generate_scene,
    intrinsics_from_fov,
    load_synth_config,
    scene_name,
    scene_seed,
)
from gsnerf_ros.data.procedural.writer import write_replica_layout

__all__ = ["SynthConfig", "load_synth_config", "SceneDistribution", "base_setting",
           "novel_setting", "novel_aspects", "generate_scene", "write_replica_layout",
           "intrinsics_from_fov", "scene_name", "scene_seed", "SPLIT_OFFSETS", "PROCEDURAL_NEAR",
           "PROCEDURAL_FAR"]
