"""Launch the GSNeRF render node (and optionally RViz).

    ros2 launch gsnerf_ros gsnerf.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info world_frame:=map device:=cuda rviz:=true

Parameters come from ``params_file`` (default config/gsnerf.yaml). A launch argument that maps
to a parameter (``world_frame`` -> ``frames.world``, ...) overrides the file only when it is
given on the command line; left out, the file's value stands. ``image`` / ``camera_info``
remap the node's input topics when given. ``namespace`` puts the node (and its ``~/`` topics)
under a namespace, ``use_sim_time`` sets the node's (and RViz's) ``use_sim_time`` when given,
``log_level`` is passed as ``--log-level``.

``lifecycle:=true`` starts the managed node ``gsnerf_lifecycle_node`` as a launch_ros
``LifecycleNode``: it waits unconfigured (``ros2 lifecycle set /gsnerf configure``, then
``activate``) unless ``autostart:=true``, which has launch configure and activate it
(launch_ros >= 0.26.7 on Jazzy; every Kilted release). With ``rviz:=true`` RViz opens
config/gsnerf.rviz with the world frame as its fixed frame and the image topic in its input
display (gsnerf_ros.ros.tools.rviz_config).
"""

from pathlib import Path

import yaml
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import LifecycleNode, Node
from launch_ros.substitutions import FindPackageShare

NOT_GIVEN = "(params_file)"
"""Default of the arguments that override a parameter: not given, so the file's value stands."""

# launch argument -> node parameter, overriding params_file only when given
PARAMETER_ARGUMENTS = [
    ("depth", "topics.depth", "Depth topic (16UC1 mm or 32FC1 m); empty = none."),
    ("pose_topic", "topics.pose",
     "PoseStamped/Odometry pose topic instead of TF; empty = TF."),
    ("world_frame", "frames.world", "World frame of keyframe poses and render requests."),
    ("camera_frame", "frames.camera", "Camera optical frame; empty = the image header's frame_id."),
    ("virtual_camera_frame", "frames.virtual_camera", "TF frame broadcast at rendered poses."),
    ("checkpoint", "model.checkpoint", "Model checkpoint (.safetensors)."),
    ("device", "model.device", "Torch device (falls back to cpu with a warning)."),
    ("use_sim_time", "use_sim_time", "Use /clock time (true when replaying a bag with --clock)."),
]
# launch argument -> the node's input topic it remaps, only when given
REMAP_ARGUMENTS = [
    ("image", "image", "Camera image topic (rgb8/bgr8/rgba8/bgra8/mono8)."),
    ("camera_info", "camera_info", "CameraInfo topic of that image."),
]
OTHER_ARGUMENTS = [
    ("namespace", "", "Namespace of the node (its ~/ topics, services and parameters)."),
    ("log_level", "info", "Node log level: debug, info, warn, error or fatal."),
    ("rviz", "false", "Start RViz with config/gsnerf.rviz (frames and topics from these "
     "arguments)."),
    ("lifecycle", "false", "Start the managed (lifecycle) node gsnerf_lifecycle_node instead."),
    ("autostart", "false", "With lifecycle:=true: configure and activate the node at launch."),
]
NODE_NAME = "gsnerf"


def _flag(context, name: str) -> bool:
    value = LaunchConfiguration(name).perform(context).strip().lower()
    if value not in ("true", "false", "1", "0"):
        raise ValueError(f"launch argument {name}:={value!r} must be true or false")
    return value in ("true", "1")


def _given(context, name: str) -> str | None:
    value = LaunchConfiguration(name).perform(context)
    return None if value == NOT_GIVEN else value


def _file_parameter(params_file: str, dotted: str, default: str) -> str:
    """A parameter's value in a ROS parameter file (node ``gsnerf`` or a wildcard), else default."""
    try:
        doc = yaml.safe_load(Path(params_file).read_text()) or {}
    except OSError:
        return default
    for section in (f"/**/{NODE_NAME}", NODE_NAME, f"/{NODE_NAME}", "/**"):
        value = (doc.get(section) or {}).get("ros__parameters", {})
        for part in dotted.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if value is not None:
            return str(value)
    return default


def _nodes(context, *args, **kwargs):
    """The render node (plain or managed) with the given arguments, and RViz if asked for."""
    params_file = LaunchConfiguration("params_file").perform(context)
    namespace = LaunchConfiguration("namespace").perform(context)
    overrides = {param: value for arg, param, _ in PARAMETER_ARGUMENTS
                 if (value := _given(context, arg)) is not None}
    remappings = [(topic, value) for arg, topic, _ in REMAP_ARGUMENTS
                  if (value := _given(context, arg)) is not None]
    common = dict(
        package="gsnerf_ros", name=NODE_NAME, namespace=namespace, output="screen",
        emulate_tty=True, parameters=[params_file, overrides] if overrides else [params_file],
        remappings=remappings,
        ros_arguments=["--log-level", LaunchConfiguration("log_level").perform(context)])
    lifecycle, autostart = _flag(context, "lifecycle"), _flag(context, "autostart")
    if autostart and not lifecycle:
        raise ValueError("autostart:=true applies to the managed node: add lifecycle:=true")
    if lifecycle:
        # autostart is passed only when asked for: launch_ros before 0.26.7 has no such argument
        extra = {"autostart": True} if autostart else {}
        nodes = [LifecycleNode(executable="gsnerf_lifecycle_node", **common, **extra)]
    else:
        nodes = [Node(executable="gsnerf_node", **common)]
    if _flag(context, "rviz"):
        nodes.append(_rviz(context, params_file, namespace, overrides))
    return nodes


def _rviz(context, params_file: str, namespace: str, overrides: dict):
    """RViz on a copy of config/gsnerf.rviz with this launch's world frame and image topic."""
    from gsnerf_ros.ros.tools.rviz_config import write_rviz_config

    share = FindPackageShare("gsnerf_ros").perform(context)
    world = overrides.get("frames.world") or _file_parameter(params_file, "frames.world", "map")
    image = _given(context, "image") or _file_parameter(params_file, "topics.image", "image")
    path = write_rviz_config(f"{share}/config/gsnerf.rviz", world, image,
                             node_name=NODE_NAME, namespace=namespace)
    sim = {"use_sim_time": overrides["use_sim_time"]} if "use_sim_time" in overrides else None
    return Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", str(path)],
                parameters=[sim] if sim else [])


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("gsnerf_ros")
    declared = [DeclareLaunchArgument(
        name, default_value=NOT_GIVEN,
        description=f"{text} Sets {param}; default: the params_file's value.")
        for name, param, text in PARAMETER_ARGUMENTS]
    declared += [DeclareLaunchArgument(
        name, default_value=NOT_GIVEN,
        description=f"{text} Remaps the node's '{topic}'; default: no remapping.")
        for name, topic, text in REMAP_ARGUMENTS]
    declared += [DeclareLaunchArgument(name, default_value=default, description=text)
                 for name, default, text in OTHER_ARGUMENTS]
    declared.append(DeclareLaunchArgument(
        "params_file", default_value=PathJoinSubstitution([share, "config", "gsnerf.yaml"]),
        description="Node parameter file."))
    return LaunchDescription([*declared, OpaqueFunction(function=_nodes)])
