"""launch/gsnerf.launch.py: the description yields the node with the given arguments and the
parameters of config/gsnerf.yaml; the evaluated command starts a real node whose parameters are
then read back through its parameter services.

Here ``launch``/``launch_ros`` are not installed, so the description is loaded with the in-tree
shim (gsnerf_ros/ros/compat/launch_shim.py) and the same executable is started with the same arguments.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rclpy")

from rcl_interfaces.msg import ParameterType  # noqa: E402
from rcl_interfaces.srv import DescribeParameters, GetParameters  # noqa: E402

from gsnerf_ros.ros.compat.launch_shim import evaluate, load_launch_description, start  # noqa: E402
from gsnerf_ros.ros.tools.node_harness import child_env as make_child_env  # noqa: E402
from gsnerf_ros.ros.tools.testing import (  # noqa: E402
    ROOT, SpinningNode, make_tiny_checkpoint, stop_process, wait_until,
)

LAUNCH = ROOT / "launch" / "gsnerf.launch.py"


def test_launch_description_arguments_and_nodes(tmp_path: Path) -> None:
    desc = load_launch_description(LAUNCH)
    names = {a.name for a in desc.get_launch_arguments()}
    assert {"image", "camera_info", "depth", "world_frame", "camera_frame", "checkpoint",
            "device", "rviz", "params_file"} <= names
    assert all(a.description for a in desc.get_launch_arguments())
    nodes = evaluate(desc, {"image": "/cam/color/image_raw", "camera_info": "/cam/color/info",
                            "world_frame": "odom", "device": "cpu"}, tmpdir=tmp_path)
    assert [n.executable for n in nodes] == ["gsnerf_node"]           # rviz defaults to false
    node = nodes[0]
    assert node.package == "gsnerf_ros" and node.name == "gsnerf"
    assert node.parameter_files == [str(ROOT / "config" / "gsnerf.yaml")]
    assert node.parameter_overrides["frames.world"] == "odom"
    assert node.parameter_overrides["model.device"] == "cpu"
    assert ("image", "/cam/color/image_raw") in node.remappings
    assert node.command is not None and "__node:=gsnerf" in node.command
    with_rviz = evaluate(desc, {"rviz": "true", "world_frame": "odom",
                                "image": "/cam/color/image_raw"}, tmpdir=tmp_path)
    rviz = [n for n in with_rviz if n.executable == "rviz2"]
    assert len(rviz) == 1 and rviz[0].arguments[0] == "-d"
    cfg = yaml.safe_load(Path(rviz[0].arguments[1]).read_text())    # frames/topics from the args
    vm = cfg["Visualization Manager"]
    assert vm["Global Options"]["Fixed Frame"] == "odom"
    topics = {d["Name"]: d["Topic"]["Value"] for d in vm["Displays"] if "Topic" in d}
    assert topics["Input camera"] == "/cam/color/image_raw"
    assert topics["Rendered RGB"] == "/gsnerf/rendered/rgb"
    assert topics["Semantic legend"] == "/gsnerf/semantic_legend"
    managed = evaluate(desc, {"lifecycle": "true"}, tmpdir=tmp_path)
    assert [n.executable for n in managed] == ["gsnerf_lifecycle_node"]
    with pytest.raises(ValueError, match="unknown launch arguments"):
        evaluate(desc, {"camera": "/x"})


def test_launched_node_has_the_given_arguments_and_parameters(tmp_path: Path) -> None:
    ckpt = make_tiny_checkpoint(tmp_path / "tiny")
    desc = load_launch_description(LAUNCH)
    (node,) = evaluate(desc, {"image": "/cam/image", "camera_info": "/cam/info",
                              "world_frame": "odom", "checkpoint": str(ckpt), "device": "cpu",
                              "rviz": "false"}, tmpdir=tmp_path)
    env = make_child_env()
    proc: subprocess.Popen | None = None
    client = SpinningNode("launch_test_client")
    try:
        proc = start(node, env=env)
        n = client.node
        get = n.create_client(GetParameters, "/gsnerf/get_parameters")
        names = ["frames.world", "model.device", "model.checkpoint", "keyframes.capacity",
                 "render.num_source_views", "topics.image"]
        res = client.call(get, GetParameters.Request(names=names), timeout=60)
        vals = dict(zip(names, res.values))
        assert vals["frames.world"].string_value == "odom"
        assert vals["model.device"].string_value == "cpu"
        assert vals["model.checkpoint"].string_value == str(ckpt)
        assert vals["keyframes.capacity"].type == ParameterType.PARAMETER_INTEGER
        assert vals["keyframes.capacity"].integer_value == 32                 # from gsnerf.yaml
        assert vals["render.num_source_views"].integer_value == 4
        desc_cli = n.create_client(DescribeParameters, "/gsnerf/describe_parameters")
        d = client.call(desc_cli, DescribeParameters.Request(names=["keyframes.capacity"]))
        assert d.descriptors[0].description and d.descriptors[0].integer_range[0].to_value == 1024
        # the remapped camera topics are what the node subscribes to
        wait_until(lambda: any(i.node_name == "gsnerf" for i in
                               n.get_subscriptions_info_by_topic("/cam/image")), 15,
                   "the node's subscription on /cam/image")
        assert any(i.node_name == "gsnerf" for i in n.get_subscriptions_info_by_topic("/cam/info"))
    finally:
        code = stop_process(proc) if proc is not None else 0
        client.close()
    assert code == 0
