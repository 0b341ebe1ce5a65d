"""Launch the GSNeRF render node (and optionally RViz).

    ros2 launch gsnerf_ros gsnerf.launch.py image:=/camera/color/image_raw \
        camera_info:=/camera/color/camera_info world_frame:=map device:=cuda rviz:=true

Parameters come from config/gsnerf.yaml (``params_file:=`` to use another), then the launch
arguments below override the ones they name. With ``rviz:=true`` RViz opens config/gsnerf.rviz
with the world frame as its fixed frame and the image topic in its input display
(gsnerf_ros.ros.tools.rviz_config). ``lifecycle:=true`` starts the managed node
(``ros2 lifecycle set /gsnerf configure`` then ``activate``).
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

ARGUMENTS = [
    ("image", "image", "Camera image topic (rgb8/bgr8/rgba8/bgra8/mono8)."),
    ("camera_info", "camera_info", "CameraInfo topic of that image."),
    ("depth", "", "Optional depth topic (16UC1 mm or 32FC1 m); empty = none."),
    ("pose_topic", "", "Optional PoseStamped/Odometry pose topic instead of TF; empty = TF."),
    ("world_frame", "map", "World frame of keyframe poses and render requests."),
    ("camera_frame", "", "Camera optical frame; empty = the image header's frame_id."),
    ("virtual_camera_frame", "gsnerf_virtual_camera_optical_frame",
     "TF frame broadcast at rendered poses."),
    ("checkpoint", "models/gsnerf_cpu.safetensors", "Model checkpoint (.safetensors)."),
    ("device", "cuda", "Torch device (falls back to cpu with a warning)."),
    ("rviz", "false", "Start RViz with config/gsnerf.rviz (frames and topics from these "
     "arguments)."),
    ("lifecycle", "false", "Start the managed (lifecycle) node gsnerf_lifecycle_node instead."),
]


def _rviz(context, *args, **kwargs):
    """RViz on a copy of config/gsnerf.rviz with this launch's world frame and image topic."""
    from gsnerf_ros.ros.tools.rviz_config import write_rviz_config

    share = FindPackageShare("gsnerf_ros").perform(context)
    path = write_rviz_config(f"{share}/config/gsnerf.rviz",
                             LaunchConfiguration("world_frame").perform(context),
                             LaunchConfiguration("image").perform(context))
    return [Node(package="rviz2", executable="rviz2", name="rviz2", arguments=["-d", str(path)])]


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare("gsnerf_ros")
    declared = [DeclareLaunchArgument(name, default_value=default, description=text)
                for name, default, text in ARGUMENTS]
    declared.append(DeclareLaunchArgument(
        "params_file", default_value=PathJoinSubstitution([share, "config", "gsnerf.yaml"]),
        description="Node parameter file."))

    def gsnerf(executable, condition):
        return Node(
            package="gsnerf_ros",
            executable=executable,
            name="gsnerf",
            output="screen",
            emulate_tty=True,
            condition=condition,
            parameters=[
                LaunchConfiguration("params_file"),
                {
                    "topics.depth": LaunchConfiguration("depth"),
                    "topics.pose": LaunchConfiguration("pose_topic"),
                    "frames.world": LaunchConfiguration("world_frame"),
                    "frames.camera": LaunchConfiguration("camera_frame"),
                    "frames.virtual_camera": LaunchConfiguration("virtual_camera_frame"),
                    "model.checkpoint": LaunchConfiguration("checkpoint"),
                    "model.device": LaunchConfiguration("device"),
                },
            ],
            remappings=[
                ("image", LaunchConfiguration("image")),
                ("camera_info", LaunchConfiguration("camera_info")),
            ],
        )

    lifecycle = LaunchConfiguration("lifecycle")
    node = gsnerf("gsnerf_node", UnlessCondition(lifecycle))
    managed = gsnerf("gsnerf_lifecycle_node", IfCondition(lifecycle))
    rviz = OpaqueFunction(function=_rviz, condition=IfCondition(LaunchConfiguration("rviz")))
    return LaunchDescription([*declared, node, managed, rviz])
