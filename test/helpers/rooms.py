"""Procedural rooms for tests: a room's source set as the evaluation protocol picks it, as
stacked tensors, and the small training and validation rooms of the ``rooms`` fixture."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor

from gsnerf_ros.data.procedural import SynthConfig, generate_scene
from gsnerf_ros.data.view_selection import EvalProtocol, evaluation_views


def protocol_views(height: int, width: int, frames: int, seed: int, num_sources: int,
                   source_stride: int, with_target: bool = False
                   ) -> tuple[Tensor, Tensor, Tensor, Tensor, float, float]:
    """The first source set (and, ``with_target``, its target last) of a test-split room:
    ``images`` [V(+1), 3, H, W], ``depths`` [V(+1), H, W] m, ``K`` [V(+1), 3, 3],
    ``c2w`` [V(+1), 4, 4], and the room's ``near``/``far`` m."""
    scene = generate_scene(SynthConfig(frames=frames, height=height, width=width), seed=seed,
                           split="test")
    t, src = evaluation_views(scene.poses(), EvalProtocol(
        num_sources=num_sources, source_stride=source_stride, target_offset=2))[0]
    idx = [int(i) for i in src] + ([int(t)] if with_target else [])
    fr = [scene.frame(i) for i in idx]
    return (torch.stack([f.image for f in fr]), torch.stack([f.depth for f in fr]),
            torch.stack([f.K for f in fr]).float(), torch.stack([f.c2w for f in fr]).float(),
            scene.near, scene.far)


SMALL_ROOMS_HW = (24, 32)
"""Height and width (px) of :func:`write_small_rooms`' images."""


def write_small_rooms(root: Path) -> Path:
    """One procedural training room and one validation room under ``root`` (``train/``,
    ``val/``; Replica layout, 12 frames at :data:`SMALL_ROOMS_HW`). Returns ``root``.
    Seed 0: with gsnerf-synth's wider distribution train room 3 became a robot path along a
    blank wall of a 2.8 m room, where 25 steps cannot raise mIoU (seeds 0, 1, 2, 4, 5 all
    pass)."""
    from gsnerf_ros.data.procedural.cli import main as synth

    h, w = SMALL_ROOMS_HW
    for split in ("train", "val"):
        synth([str(root / split), "--split", split, "--scenes", "1", "--frames", "12",
               "--height", str(h), "--width", str(w), "--seed", "0"])
    return root


def write_room_and_tiny_checkpoint(root: Path, height: int, width: int) -> Path:
    """One labelled procedural room of the ``test`` split (8 frames, ``height`` x ``width``,
    seed 11) under ``root/rooms`` and an untrained tiny checkpoint with the procedural classes,
    ``root/tiny.safetensors`` (returned): what an evaluation test needs."""
    from gsnerf_ros.data.classes import PROCEDURAL_CLASSES, PROCEDURAL_PALETTE
    from gsnerf_ros.data.procedural.cli import main as synth
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig

    synth([str(root / "rooms"), "--split", "test", "--scenes", "1", "--frames", "8", "--height",
           str(height), "--width", str(width), "--seed", "11"])
    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(len(PROCEDURAL_CLASSES)), class_names=PROCEDURAL_CLASSES,
                   palette=PROCEDURAL_PALETTE)
    return model.save_checkpoint(root / "tiny.safetensors", metadata={})


def eval_tiny_room(root: Path, out: Path, height: int, width: int, *extra: str) -> int:
    """``gsnerf-eval`` on the room and checkpoint of :func:`write_room_and_tiny_checkpoint`
    under ``root`` (3 sources, 2 targets, no baseline, no LPIPS, CPU, one thread), JSON to
    ``out``, with ``extra`` options. Returns the exit status."""
    from gsnerf_ros.train.cli import eval_main

    torch.set_num_threads(1)
    return eval_main(["--checkpoint", str(root / "tiny.safetensors"), "--data",
                      str(root / "rooms"), "--json", str(out), "--height", str(height),
                      "--width", str(width), "--num-sources", "3", "--max-targets", "2",
                      "--no-lpips", "--no-baseline", "--device", "cpu", *extra])


def label_skip_model_and_views():  # type: ignore[no-untyped-def]
    """A tiny model with the ``label_skip`` vote (seeded) and the protocol views of a 24x32
    room: ``model``, then ``images``, ``K``, ``c2w`` [4, ...] (3 sources, the target last),
    ``near``, ``far``."""
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig

    images, _, K, c2w, near, far = protocol_views(24, 32, frames=16, seed=2, num_sources=3,
                                                  source_stride=3, with_target=True)
    torch.manual_seed(0)
    cfg = GSNeRFConfig.tiny(4)
    cfg.semantic.label_skip = True
    return GSNeRF(cfg).eval(), images, K, c2w, near, far
