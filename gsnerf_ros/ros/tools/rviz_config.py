"""The RViz configuration for one launch: ``config/gsnerf.rviz`` with the launch's frames and
topics filled in (ROS-free; used by ``launch/gsnerf.launch.py`` when ``rviz:=true``).

``config/gsnerf.rviz`` stays a valid RViz file with the default names (fixed frame ``map``,
input ``/image``, node ``/gsnerf``); :func:`rviz_config` sets the fixed frame to the world frame,
the input camera display to the image topic, and every ``/gsnerf/...`` topic to the node's
fully qualified name, so the displays follow ``world_frame:=``, ``image:=`` and a namespace.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any

import yaml

__all__ = ["rviz_config", "write_rviz_config", "INPUT_DISPLAY"]

INPUT_DISPLAY = "Input camera"
"""Name of the Image display that shows the node's input topic."""


def _absolute(topic: str, namespace: str) -> str:
    if topic.startswith("/"):
        return topic
    ns = "/" + namespace.strip("/") if namespace.strip("/") else ""
    return f"{ns}/{topic}"


def rviz_config(template: str, world_frame: str, image_topic: str, node_name: str = "gsnerf",
                namespace: str = "") -> str:
    """``template`` (RViz YAML) with the fixed frame, input topic and node topics replaced."""
    cfg: dict[str, Any] = yaml.safe_load(template)
    vm = cfg["Visualization Manager"]
    vm["Global Options"]["Fixed Frame"] = world_frame
    node_fqn = _absolute(node_name, namespace)
    for d in vm.get("Displays", []):
        topic = d.get("Topic")
        if not isinstance(topic, dict) or "Value" not in topic:
            continue
        if d.get("Name") == INPUT_DISPLAY:
            topic["Value"] = _absolute(image_topic, namespace)
        elif str(topic["Value"]).startswith("/gsnerf/"):
            topic["Value"] = node_fqn + str(topic["Value"])[len("/gsnerf"):]
    return yaml.safe_dump(cfg, sort_keys=False)


def write_rviz_config(template_path: str | Path, world_frame: str, image_topic: str,
                      node_name: str = "gsnerf", namespace: str = "",
                      out_dir: str | Path | None = None) -> Path:
    """Write :func:`rviz_config` of ``template_path`` to a file named after its content (in
    ``out_dir``, default the temporary directory); returns its path."""
    text = rviz_config(Path(template_path).read_text(), world_frame, image_topic, node_name,
                       namespace)
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    out = Path(out_dir or tempfile.gettempdir()) / f"gsnerf_{digest}.rviz"
    out.write_text(text)
    return out
