"""Fakes for the tests: a renderer without a network (the runtime's :class:`Renderer` protocol,
``gsnerf_ros.runtime.engine``) and a tiny untrained checkpoint. ROS-free: the runtime's tests
use them without rclpy."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any


class FakeRenderer:
    """A :class:`~gsnerf_ros.runtime.engine.Renderer` without a network: encodes a keyframe as
    its id and renders, after ``delay`` seconds, a grey image at depth 1 m whose confidence is
    the number of sources / 10. Tracks the most renders that ever ran at once and the poses
    (c2w [4,4]) it rendered at, in ``c2ws``."""

    class_names = ["a", "b"]
    palette: Any
    num_neighbors = 1
    description = "fake"
    device = "cpu"

    def __init__(self, delay: float = 0.0) -> None:
        import torch

        self.palette = torch.tensor([[255, 0, 0], [0, 255, 0]], dtype=torch.uint8)
        self.delay = delay
        self.active = 0
        self.max_active = 0
        self.renders = 0
        self.c2ws: list[Any] = []
        self.lock = threading.Lock()

    def encode(self, kf: Any, nbrs: list[Any]) -> int:
        return kf.id

    def render(self, sources: list[Any], K: Any, c2w: Any, height: int, width: int) -> Any:
        import torch

        from gsnerf_ros.runtime.engine import RenderOutput

        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        time.sleep(self.delay)
        with self.lock:
            self.active -= 1
            self.renders += 1
            self.c2ws.append(c2w.detach().clone())
        return RenderOutput(rgb=torch.full((height, width, 3), 0.5), depth=torch.ones(height, width),
                            labels=torch.ones(height, width, dtype=torch.long),
                            confidence=torch.full((height, width), float(len(sources)) / 10))


def make_tiny_checkpoint(path: Path, num_classes: int = 17) -> Path:
    """An untrained tiny GSNeRF checkpoint with the procedural classes (structure tests)."""
    import torch

    from gsnerf_ros.data.classes import PROCEDURAL_CLASSES, PROCEDURAL_PALETTE
    from gsnerf_ros.model import GSNeRF, GSNeRFConfig

    torch.manual_seed(0)
    model = GSNeRF(GSNeRFConfig.tiny(num_classes), class_names=PROCEDURAL_CLASSES,
                   palette=PROCEDURAL_PALETTE)
    return model.save_checkpoint(path)
