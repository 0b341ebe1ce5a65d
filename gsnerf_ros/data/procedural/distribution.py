"""What a procedural room is drawn from: room shape, materials per surface, lights, camera path.

A :class:`SceneDistribution` is one *setting*. ``gsnerf-synth`` maps every split to a setting
(``SynthConfig.splits``): by default ``train``/``val``/``test`` use ``base`` and ``test_novel``
uses ``novel`` — larger rooms, wall and floor materials and light placements that ``base`` never
produces — so generalisation to an unseen setting is measured, not assumed.
:func:`novel_aspects` states in which respects two settings cannot produce the same room.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gsnerf_ros.config import check
from gsnerf_ros.data.procedural.textures import TEXTURES

__all__ = ["RoomShapeConfig", "MaterialConfig", "LightConfig", "TrajectoryConfig",
           "SceneDistribution",
           "LIGHT_PLACEMENTS", "novel_aspects", "base_setting", "novel_setting"]

LIGHT_PLACEMENTS = ("ceiling", "corner", "wall", "window")
"""Where room lights go: ``ceiling`` (anywhere under the ceiling), ``corner`` (high in a corner),
``wall`` (sconces 1.6-2.1 m up on a wall), ``window`` (daylight just inside a window). Lamps on
the floor or on cabinets always light their shade, in every setting."""


def _range(r: tuple[float, float], name: str, lo: float = 0.0) -> None:
    check(lo <= r[0] <= r[1], f"{name} must be an ordered range >= {lo}, got {list(r)}")


@dataclass
class RoomShapeConfig:
    """Room box in metres: every side in ``side``, the shorter side in ``short_side``."""

    side: tuple[float, float] = (2.5, 8.0)
    short_side: tuple[float, float] = (2.5, 5.5)
    height: tuple[float, float] = (2.3, 3.5)
    l_shape_prob: float = 0.35
    """Probability of a floor-to-ceiling wall block in one corner (an L-shaped room)."""
    furniture_per_m2: tuple[float, float] = (0.25, 0.6)
    """Pieces of furniture per m^2 of floor (the count is clipped to ``furniture_count``)."""
    furniture_count: tuple[int, int] = (4, 20)

    def __post_init__(self) -> None:
        _range(self.side, "room.side", 2.0)
        _range(self.short_side, "room.short_side", 2.0)
        check(self.short_side[0] <= self.side[1] and self.short_side[1] >= self.side[0],
              f"room.short_side {list(self.short_side)} must overlap room.side {list(self.side)}")
        _range(self.height, "room.height", 2.2)
        check(0.0 <= self.l_shape_prob <= 1.0, "room.l_shape_prob must lie in [0, 1]")
        _range(self.furniture_per_m2, "room.furniture_per_m2")
        _range(self.furniture_count, "room.furniture_count", 1)


@dataclass
class MaterialConfig:
    """Texture families (names from ``textures.TEXTURES``) per surface; each surface draws one
    uniformly (list a name twice to weight it). ``furniture``: painted furniture parts, cabinet
    fronts, doors, small objects; wood and upholstery keep their own families."""

    wall: list[str] = field(default_factory=lambda: [
        "plain", "plain", "gradient", "gradient", "plaster", "speckle", "stripes", "checker",
        "tiles", "fabric"])
    floor: list[str] = field(default_factory=lambda: [
        "wood", "wood", "tiles", "checker", "plain", "gradient", "speckle", "fabric"])
    ceiling: list[str] = field(default_factory=lambda: ["plain", "plain", "plaster", "speckle",
                                                        "gradient"])
    furniture: list[str] = field(default_factory=lambda: [
        "plain", "gradient", "plaster", "speckle", "stripes", "checker"])
    upholstery: list[str] = field(default_factory=lambda: ["fabric", "fabric", "stripes",
                                                           "checker", "plain"])

    def __post_init__(self) -> None:
        for role in ("wall", "floor", "ceiling", "furniture", "upholstery"):
            names = getattr(self, role)
            check(len(names) > 0, f"materials.{role} must name at least one texture")
            bad = [n for n in names if n not in TEXTURES or n == "sky"]
            check(not bad, f"materials.{role}: unknown texture(s) {bad}; choose from "
                           f"{[t for t in TEXTURES if t != 'sky']}")

    def families(self) -> set[str]:
        """Every texture family this setting can put on a surface."""
        return set(self.wall) | set(self.floor) | set(self.ceiling) | set(self.furniture) \
            | set(self.upholstery) | {"wood"}


@dataclass
class LightConfig:
    """Point lights (each costs one cube shadow map per room) and the ambient level."""

    count: tuple[int, int] = (1, 4)
    """Room lights (placed by ``placements``); lamps add theirs, up to ``max_lights`` in all."""
    placements: list[str] = field(default_factory=lambda: ["ceiling", "ceiling", "corner"])
    power: tuple[float, float] = (0.8, 3.0)
    """Irradiance at 1 m (light falls as 1/(1+d^2)); scaled by sqrt(floor area / 20 m^2) so
    large rooms are not darker on average."""
    ambient: tuple[float, float] = (0.08, 0.35)
    """Ambient level (linear), per room."""
    warmth: tuple[float, float] = (0.0, 1.0)
    """Light colour from cool white (0) to warm (1)."""
    max_lights: int = 5

    def __post_init__(self) -> None:
        _range(self.count, "lights.count")
        check(len(self.placements) > 0, "lights.placements must name at least one placement")
        bad = [p for p in self.placements if p not in LIGHT_PLACEMENTS]
        check(not bad, f"lights.placements: unknown {bad}; choose from {list(LIGHT_PLACEMENTS)}")
        _range(self.power, "lights.power")
        _range(self.ambient, "lights.ambient")
        _range(self.warmth, "lights.warmth")
        check(self.warmth[1] <= 1.0, "lights.warmth must lie in [0, 1]")
        check(self.max_lights >= max(1, self.count[1]),
              "lights.max_lights must be >= 1 and >= the largest lights.count")


@dataclass
class TrajectoryConfig:
    """Camera path parameters (metres, degrees, per frame), a setting's ``camera``; the paths are
    drawn by :func:`~gsnerf_ros.data.procedural.trajectory.sample_trajectory`."""

    robot_prob: float = 0.4
    """Probability that a path is a robot base's rather than a hand-held camera's."""
    handheld_height: tuple[float, float] = (1.2, 1.7)
    handheld_bob: float = 0.06
    """Amplitude (m) of the slow height drift of a hand-held camera."""
    robot_height: tuple[float, float] = (0.3, 0.6)
    robot_pitch_deg: tuple[float, float] = (-5.0, 20.0)
    """Upward tilt of the robot camera (fixed per path)."""
    clearance: float = 0.3
    """Minimum distance from the camera centre to any surface (m); with the 90 deg field of
    view it keeps nearly every pixel beyond the 0.25 m near plane."""
    speed: tuple[float, float] = (0.10, 0.20)
    """Path length per frame (m), drawn per path."""
    max_turn_deg: float = 10.0
    """Largest change of the viewing direction between consecutive frames."""
    turn_smoothing: float = 4.0
    """Gaussian low-pass (sigma, frames) of the wanted yaw and pitch before the turn limit."""
    leg: tuple[float, float] = (0.8, 2.5)
    """Length range of the straight legs between waypoints (m)."""
    look_around_deg: float = 25.0
    """Amplitude of the yaw oscillation around the look target (hand-held) or heading (robot)."""
    closeup_prob: float = 0.3
    """Probability that a hand-held waypoint is a close-up of a piece of furniture."""
    max_pitch_deg: float = 35.0
    attempts: int = 30

    def __post_init__(self) -> None:
        check(0.0 <= self.robot_prob <= 1.0, "camera.robot_prob must lie in [0, 1]")
        for name in ("handheld_height", "robot_height", "speed", "leg"):
            r = getattr(self, name)
            check(0.0 < r[0] <= r[1], f"camera.{name} must be an ordered positive range, got {r}")
        check(self.robot_pitch_deg[0] <= self.robot_pitch_deg[1],
              "camera.robot_pitch_deg must be an ordered range")
        check(0.0 < self.max_turn_deg <= 180.0, "camera.max_turn_deg must lie in (0, 180]")
        check(self.clearance > 0.0 and self.attempts >= 1,
              "camera.clearance must be > 0 and camera.attempts >= 1")


@dataclass
class SceneDistribution:
    """One setting: the distribution a room, its materials, lights and camera path come from."""

    room: RoomShapeConfig = field(default_factory=RoomShapeConfig)
    materials: MaterialConfig = field(default_factory=MaterialConfig)
    lights: LightConfig = field(default_factory=LightConfig)
    camera: TrajectoryConfig = field(default_factory=TrajectoryConfig)


def base_setting() -> SceneDistribution:
    """The training distribution (the defaults of every field)."""
    return SceneDistribution()


def novel_setting() -> SceneDistribution:
    """Held out from ``base``: both sides 6-8 m, marble / dots / brick walls and floors, and
    light from wall sconces and windows instead of ceiling and corner lights."""
    return SceneDistribution(
        room=RoomShapeConfig(side=(6.0, 8.0), short_side=(6.0, 8.0)),
        materials=MaterialConfig(wall=["marble", "dots", "bricks"], floor=["marble", "bricks"],
                                 ceiling=["plain", "plaster"],
                                 furniture=["marble", "dots", "plain"]),
        lights=LightConfig(count=(2, 4), placements=["wall", "window"], power=(1.0, 3.0)))


def novel_aspects(base: SceneDistribution, other: SceneDistribution) -> list[str]:
    """The respects in which ``other`` can never produce what ``base`` produces.

    ``room_size``: the shorter-side ranges do not overlap. ``materials``: no wall or floor
    family of ``other`` occurs anywhere in ``base``. ``lights``: no room-light placement is
    shared. ``camera``: the handheld and robot height ranges both fail to overlap.
    """
    out = []
    a, b = base.room.short_side, other.room.short_side
    if a[1] < b[0] or b[1] < a[0]:
        out.append("room_size")
    if not ((set(other.materials.wall) | set(other.materials.floor)) & base.materials.families()):
        out.append("materials")
    if not set(other.lights.placements) & set(base.lights.placements):
        out.append("lights")
    ca, cb = base.camera, other.camera
    if all(r1[1] < r2[0] or r2[1] < r1[0] for r1, r2 in
           ((ca.handheld_height, cb.handheld_height), (ca.robot_height, cb.robot_height))):
        out.append("camera")
    return out
