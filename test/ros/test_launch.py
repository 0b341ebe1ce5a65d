"""launch/gsnerf.launch.py: the description yields the node with the given arguments and the
parameters of config/gsnerf.yaml; the evaluated command starts a real node whose parameters are
then read back through its parameter services.

Here ``launch``/``launch_ros`` are not installed, so the description is loaded with the in-tree
shim (gsnerf_ros/ros/compat/launch_shim.py) and the same executable is started with the same arguments.
"""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

pytest.importorskip("rclpy")

from rcl_interfaces.msg import ParameterType  # noqa: E402
from rcl_interfaces.srv import DescribeParameters, GetParameters  # noqa: E402

from gsnerf_ros.ros.compat.launch_shim import (  # noqa: E402
    autostart, evaluate, load_launch_description, start,
)
from gsnerf_ros.ros.tools.node_harness import child_env as make_child_env  # noqa: E402
from helpers.fakes import make_tiny_checkpoint
from helpers.ros_nodes import ROOT, SpinningNode, call_until_answered, stop_process, wait_until

LAUNCH = ROOT / "launch" / "gsnerf.launch.py"


@contextlib.contextmanager
def _launched(node: Any, tmp_path: Path, client_name: str) -> Iterator[tuple[SpinningNode, Path]]:
    """Start the evaluated launch ``node`` in a child process (output in ``tmp_path/node.log``)
    beside a client node; yields (client, log). On leaving, the node is stopped and must exit
    with 0 (its log's tail is the message otherwise)."""
    log = tmp_path / "node.log"
    proc: subprocess.Popen | None = None
    client = SpinningNode(client_name)
    try:
        with open(log, "w") as out:
            proc = start(node, env=make_child_env(), stdout=out, stderr=subprocess.STDOUT)
        yield client, log
    finally:
        code = stop_process(proc) if proc is not None else 0
        client.close()
    assert code == 0, log.read_text(errors="replace")[-3000:]


def _get_parameters(client: SpinningNode, node: str, names: list[str]) -> dict:
    get = client.node.create_client(GetParameters, f"{node}/get_parameters")
    res = call_until_answered(get, GetParameters.Request(names=names), "get_parameters")
    return dict(zip(names, res.values))


def test_launch_description_arguments_and_nodes(tmp_path: Path) -> None:
    desc = load_launch_description(LAUNCH)
    names = {a.name for a in desc.get_launch_arguments()}
    assert {"image", "camera_info", "depth", "world_frame", "camera_frame", "checkpoint",
            "device", "rviz", "params_file", "use_sim_time", "namespace", "log_level",
            "lifecycle", "autostart"} <= names
    assert all(a.description for a in desc.get_launch_arguments())
    nodes = evaluate(desc, {"image": "/cam/color/image_raw", "camera_info": "/cam/color/info",
                            "world_frame": "odom", "device": "cpu"}, tmpdir=tmp_path)
    assert [n.executable for n in nodes] == ["gsnerf_node"]           # rviz defaults to false
    node = nodes[0]
    assert node.package == "gsnerf_ros" and node.name == "gsnerf" and not node.lifecycle
    assert node.parameter_files == [str(ROOT / "config" / "gsnerf.yaml")]
    # only the named arguments override the file
    assert node.parameter_overrides == {"frames.world": "odom", "model.device": "cpu"}
    assert node.remappings == [("image", "/cam/color/image_raw"),
                               ("camera_info", "/cam/color/info")]
    assert node.command is not None and "__node:=gsnerf" in node.command
    assert node.command[node.command.index("--log-level") + 1] == "info"
    assert not any(a.startswith("__ns:=") for a in node.command)
    (bare,) = evaluate(desc, {}, tmpdir=tmp_path)
    assert bare.parameter_overrides == {} and bare.remappings == []
    assert bare.command is not None and bare.command.count("--params-file") == 1
    # the named use_sim_time / namespace / log_level
    (ns,) = evaluate(desc, {"namespace": "robot1", "use_sim_time": "true", "log_level": "debug"},
                     tmpdir=tmp_path)
    assert ns.parameter_overrides == {"use_sim_time": True}
    assert ns.namespace == "/robot1" and ns.fully_qualified_name == "/robot1/gsnerf"
    assert ns.command is not None and "__ns:=/robot1" in ns.command
    assert ns.command[ns.command.index("--log-level") + 1] == "debug"
    override_file = Path(ns.command[ns.command.index("--params-file", ns.command.index(
        "--params-file") + 1) + 1])                                  # launch_ros: node-specific
    assert yaml.safe_load(override_file.read_text()) == {
        "/robot1/gsnerf": {"ros__parameters": {"use_sim_time": True}}}
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
    assert managed[0].lifecycle and not managed[0].autostart
    (auto,) = evaluate(desc, {"lifecycle": "true", "autostart": "true"}, tmpdir=tmp_path)
    assert auto.lifecycle and auto.autostart and auto.name == "gsnerf"
    with pytest.raises(ValueError, match="lifecycle:=true"):
        evaluate(desc, {"autostart": "true"})
    with pytest.raises(ValueError, match="true or false"):
        evaluate(desc, {"lifecycle": "yes"})
    with pytest.raises(ValueError, match="unknown launch arguments"):
        evaluate(desc, {"camera": "/x"})


def test_rviz_takes_frame_and_topic_from_a_custom_params_file(tmp_path: Path) -> None:
    params = tmp_path / "robot.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
        "frames": {"world": "odom_from_file"}, "topics": {"image": "/front/image"}}}}))
    nodes = evaluate(load_launch_description(LAUNCH),
                     {"params_file": str(params), "rviz": "true", "namespace": "r2"},
                     tmpdir=tmp_path)
    rviz = next(n for n in nodes if n.executable == "rviz2")
    vm = yaml.safe_load(Path(rviz.arguments[1]).read_text())["Visualization Manager"]
    assert vm["Global Options"]["Fixed Frame"] == "odom_from_file"
    topics = {d["Name"]: d["Topic"]["Value"] for d in vm["Displays"] if "Topic" in d}
    assert topics["Input camera"] == "/front/image"
    assert topics["Rendered RGB"] == "/r2/gsnerf/rendered/rgb"


def test_launch_shim_lifecycle_node_is_as_strict_as_jazzy() -> None:
    from gsnerf_ros.ros.compat.launch_shim import LifecycleNode, TextSubstitution

    with pytest.raises(TypeError):                       # name and namespace are required
        LifecycleNode(package="p", executable="e", name="n")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="bool"):          # no substitution before Rolling
        LifecycleNode(package="p", executable="e", name="n", namespace="",
                      autostart=TextSubstitution(text="true"))  # type: ignore[arg-type]


def test_launched_node_has_the_given_arguments_and_parameters(tmp_path: Path) -> None:
    ckpt = make_tiny_checkpoint(tmp_path / "tiny")
    desc = load_launch_description(LAUNCH)
    (node,) = evaluate(desc, {"image": "/cam/image", "camera_info": "/cam/info",
                              "world_frame": "odom", "checkpoint": str(ckpt), "device": "cpu",
                              "rviz": "false"}, tmpdir=tmp_path)
    with _launched(node, tmp_path, "launch_test_client") as (client, _log):
        n = client.node
        vals = _get_parameters(client, "/gsnerf", [
            "frames.world", "model.device", "model.checkpoint", "keyframes.capacity",
            "render.num_source_views", "topics.image"])
        assert vals["frames.world"].string_value == "odom"
        assert vals["model.device"].string_value == "cpu"
        assert vals["model.checkpoint"].string_value == str(ckpt)
        assert vals["keyframes.capacity"].type == ParameterType.PARAMETER_INTEGER
        assert vals["keyframes.capacity"].integer_value == 32                 # from gsnerf.yaml
        assert vals["render.num_source_views"].integer_value == 4
        desc_cli = n.create_client(DescribeParameters, "/gsnerf/describe_parameters")
        d = call_until_answered(desc_cli, DescribeParameters.Request(names=["keyframes.capacity"]),
                                "describe_parameters")
        assert d.descriptors[0].description and d.descriptors[0].integer_range[0].to_value == 1024
        # the remapped camera topics are what the node subscribes to
        wait_until(lambda: any(i.node_name == "gsnerf" for i in
                               n.get_subscriptions_info_by_topic("/cam/image")), 15,
                   "the node's subscription on /cam/image")
        assert any(i.node_name == "gsnerf" for i in n.get_subscriptions_info_by_topic("/cam/info"))


def test_custom_params_file_survives_unless_an_argument_names_it(tmp_path: Path) -> None:
    """A user's parameter file (here keyed ``/**``) keeps its values for every parameter a launch
    argument could set but was not given; the named ``world_frame`` wins; ``namespace``,
    ``use_sim_time`` and ``log_level`` reach the node."""
    ckpt = make_tiny_checkpoint(tmp_path / "tiny")
    params = tmp_path / "robot.yaml"
    params.write_text(yaml.safe_dump({"/**": {"ros__parameters": {
        "frames": {"world": "odom_from_file", "virtual_camera": "virtual_from_file",
                   "camera": "camera_from_file"},
        "topics": {"depth": "/from_file/depth", "pose": ""},
        "model": {"device": "cpu", "checkpoint": str(ckpt)},
        "keyframes": {"capacity": 7}}}}))
    (node,) = evaluate(load_launch_description(LAUNCH),
                       {"params_file": str(params), "world_frame": "named_world",
                        "namespace": "robot1", "use_sim_time": "true", "log_level": "debug"},
                       tmpdir=tmp_path)
    assert node.parameter_overrides == {"frames.world": "named_world", "use_sim_time": True}
    with _launched(node, tmp_path, "launch_params_test_client") as (client, log):
        vals = _get_parameters(client, "/robot1/gsnerf", [
            "frames.world", "frames.virtual_camera", "frames.camera", "topics.depth",
            "model.device", "model.checkpoint", "keyframes.capacity", "use_sim_time"])
        assert vals["frames.world"].string_value == "named_world"             # named: wins
        assert vals["frames.virtual_camera"].string_value == "virtual_from_file"
        assert vals["frames.camera"].string_value == "camera_from_file"
        assert vals["topics.depth"].string_value == "/from_file/depth"
        assert vals["model.device"].string_value == "cpu"
        assert vals["model.checkpoint"].string_value == str(ckpt)
        assert vals["keyframes.capacity"].integer_value == 7
        assert vals["use_sim_time"].bool_value is True
        wait_until(lambda: "[DEBUG]" in log.read_text(errors="replace"), 30,
                   "a debug line in the node's log (log_level:=debug)")


def test_lifecycle_node_autostarts_to_active(tmp_path: Path) -> None:
    """``lifecycle:=true autostart:=true``: the managed node, configured and activated through its
    change_state service as launch_ros does, reports ``active``."""
    from lifecycle_msgs.srv import GetState

    ckpt = make_tiny_checkpoint(tmp_path / "tiny")
    (node,) = evaluate(load_launch_description(LAUNCH),
                       {"lifecycle": "true", "autostart": "true", "checkpoint": str(ckpt),
                        "device": "cpu", "namespace": "robot2"}, tmpdir=tmp_path)
    assert node.executable == "gsnerf_lifecycle_node" and node.autostart
    with _launched(node, tmp_path, "launch_autostart_test_client") as (client, _log):
        get_state = client.node.create_client(GetState, "/robot2/gsnerf/get_state")
        state = call_until_answered(get_state, GetState.Request(), "get_state")
        assert state.current_state.label == "unconfigured"
        assert autostart(node, client.node, timeout=120) == "active"
        state = call_until_answered(get_state, GetState.Request(), "get_state")
        assert state.current_state.label == "active"
