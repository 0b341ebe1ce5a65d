"""Command-line overrides of a checkpoint's inference settings, shared by ``gsnerf-eval`` and
the depth probe: ``--geometry-max-pixels``, ``--num-neighbors``, ``--consistency-tolerance``,
``--colour-views`` and ``--floor-z`` (an inference setting of the data, not of the
checkpoint: the callers pass it to ``GSNeRF.render`` / ``with_floor``). (The node has the
same five as parameters, ``runtime.engine.GSNeRFRenderer``.)"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_inference_overrides", "check_inference_overrides", "apply_inference_overrides"]


def add_inference_overrides(p: argparse.ArgumentParser, neighbours_note: str = "") -> None:
    """Add the override options (default None: keep the checkpoint's value; no floor)."""
    p.add_argument("--geometry-max-pixels", type=int, default=None, metavar="N",
                   help="largest image (pixels) the encoder and cost volume work at (default: "
                        "the checkpoint's model.geometry_max_pixels; 0 = the render size)")
    p.add_argument("--num-neighbors", type=int, default=None, metavar="N",
                   help="views each source's cost volume matches against (default: the "
                        "checkpoint's cost_volume.num_neighbors)" + neighbours_note)
    p.add_argument("--consistency-tolerance", type=float, default=None, metavar="T",
                   help="relative depth agreement for the multi-view check of D_T (default: "
                        "the checkpoint's target_depth.consistency_tolerance; 0 = off)")
    p.add_argument("--colour-views", type=int, default=None, metavar="K",
                   help="the colour is blended from the K source views nearest the target, a "
                        "farther view only where none of those sees the sample (default: the "
                        "checkpoint's renderer.colour_views; 0 = every view)")
    p.add_argument("--floor-z", type=float, default=None, metavar="M",
                   help="height of the floor plane in the data's z-up world frame (0 for "
                        "gsnerf-synth and tools/independent_rooms.py rooms): every depth is "
                        "bounded by it (gsnerf-eval: the model's and so the baseline's; "
                        "default: off)")


def check_inference_overrides(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse out-of-range overrides through ``p.error`` (exit status 2)."""
    if args.geometry_max_pixels is not None and args.geometry_max_pixels < 0:
        p.error("--geometry-max-pixels must be >= 0")
    if args.num_neighbors is not None and args.num_neighbors < 1:
        p.error("--num-neighbors must be >= 1")
    if args.consistency_tolerance is not None and args.consistency_tolerance < 0:
        p.error("--consistency-tolerance must be >= 0")
    if args.colour_views is not None and args.colour_views < 0:
        p.error("--colour-views must be >= 0 (0 = every view)")
    if args.floor_z is not None:
        from gsnerf_ros.model.encoding import check_floor_z

        try:
            check_floor_z(args.floor_z)
        except ValueError as exc:
            p.error(f"--floor-z: {exc}")


def apply_inference_overrides(model: Any, args: argparse.Namespace) -> None:
    """Set the given overrides on ``model.config`` (a :class:`gsnerf_ros.model.GSNeRF`)."""
    if args.geometry_max_pixels is not None:
        model.config.geometry_max_pixels = args.geometry_max_pixels
    if args.num_neighbors is not None:
        model.config.cost_volume.num_neighbors = args.num_neighbors
    if args.consistency_tolerance is not None:
        model.config.target_depth.consistency_tolerance = args.consistency_tolerance
    if args.colour_views is not None:
        model.config.renderer.colour_views = args.colour_views
