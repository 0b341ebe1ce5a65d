"""In-tree tf2_ros / message_filters / cv_bridge equivalents, tested against hand-built cases."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from builtin_interfaces.msg import Time as TimeMsg  # noqa: E402
from geometry_msgs.msg import TransformStamped  # noqa: E402
from rclpy.duration import Duration  # noqa: E402
from rclpy.time import Time  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from gsnerf_ros.ros.compat import message_filters, tf2_ros  # noqa: E402
from gsnerf_ros.ros.compat.cv_bridge import CvBridge, CvBridgeError  # noqa: E402


def _tf(parent: str, child: str, t: float, xyz=(0.0, 0.0, 0.0), yaw: float = 0.0) -> TransformStamped:
    m = TransformStamped()
    m.header.frame_id, m.child_frame_id = parent, child
    ns = int(round(t * 1e9))
    m.header.stamp = TimeMsg(sec=ns // 10**9, nanosec=ns % 10**9)
    m.transform.translation.x, m.transform.translation.y, m.transform.translation.z = xyz
    m.transform.rotation.z, m.transform.rotation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    return m


def _xyz(t: TransformStamped) -> np.ndarray:
    tr = t.transform.translation
    return np.array([tr.x, tr.y, tr.z])


def _yaw(t: TransformStamped) -> float:
    r = t.transform.rotation
    return 2 * math.atan2(r.z, r.w)


# ------------------------------------------------------------------------------- tf2_ros
def test_tf_chain_composes_static_and_dynamic_links() -> None:
    buf = tf2_ros.Buffer()
    buf.set_transform(_tf("map", "base", 1.0, (1.0, 0.0, 0.0), yaw=math.pi / 2), "test")
    buf.set_transform_static(_tf("base", "cam", 0.0, (0.5, 0.0, 0.0)), "test")
    t = buf.lookup_transform("map", "cam", Time(seconds=1.0))
    # cam origin is 0.5 m along base's x, which points along map's +y after the 90 deg yaw
    np.testing.assert_allclose(_xyz(t), [1.0, 0.5, 0.0], atol=1e-9)
    assert t.header.frame_id == "map" and t.child_frame_id == "cam"
    inv = buf.lookup_transform("cam", "map", Time(seconds=1.0))
    np.testing.assert_allclose(_xyz(inv), [-0.5, 1.0, 0.0], atol=1e-9)


def test_tf_interpolates_translation_and_slerps_rotation() -> None:
    buf = tf2_ros.Buffer()
    buf.set_transform(_tf("map", "base", 1.0, (0.0, 0.0, 0.0), yaw=0.0), "test")
    buf.set_transform(_tf("map", "base", 2.0, (2.0, 0.0, 0.0), yaw=math.pi / 2), "test")
    t = buf.lookup_transform("map", "base", Time(seconds=1.25))
    np.testing.assert_allclose(_xyz(t), [0.5, 0.0, 0.0], atol=1e-9)
    assert _yaw(t) == pytest.approx(math.pi / 8, abs=1e-9)
    latest = buf.lookup_transform("map", "base", Time())
    np.testing.assert_allclose(_xyz(latest), [2.0, 0.0, 0.0], atol=1e-9)
    assert latest.header.stamp.sec == 2


def test_tf_errors_extrapolation_lookup_connectivity() -> None:
    buf = tf2_ros.Buffer()
    buf.set_transform(_tf("map", "base", 1.0), "test")
    buf.set_transform(_tf("map", "base", 2.0), "test")
    buf.set_transform(_tf("odom", "wheel", 1.0), "test")
    with pytest.raises(tf2_ros.ExtrapolationException):
        buf.lookup_transform("map", "base", Time(seconds=5.0))
    with pytest.raises(tf2_ros.LookupException):
        buf.lookup_transform("map", "nowhere", Time())
    with pytest.raises(tf2_ros.ConnectivityException):
        buf.lookup_transform("map", "wheel", Time())
    assert not buf.can_transform("map", "base", Time(seconds=0.5))


@pytest.mark.parametrize("case", ["scaled_by_2", "scaled_by_1.05", "nan", "self", "no_parent"])
def test_tf_ignores_bad_transforms_like_tf2(case: str) -> None:
    """tf2's BufferCore::setTransform logs and ignores these (buffer_core.cpp): |q|^2 must be
    within 0.01 of 1 (a scaled quaternion is NOT normalised), no NaN, distinct frame ids."""
    buf = tf2_ros.Buffer()
    buf.set_transform(_tf("map", "base", 1.0), "test")
    bad = _tf("map", "base", 2.0, (5.0, 0.0, 0.0))
    if case.startswith("scaled_by_"):
        k = float(case.split("_")[-1])
        q = bad.transform.rotation
        q.x, q.y, q.z, q.w = q.x * k, q.y * k, q.z * k, q.w * k
    elif case == "nan":
        bad.transform.rotation.w = float("nan")
    elif case == "self":
        bad.child_frame_id = "map"
    else:
        bad.header.frame_id = ""
    assert buf.set_transform(bad, "test") is None                   # no exception, no result
    assert buf.lookup_transform("map", "base", Time()).header.stamp.sec == 1   # still the old one


def test_tf_accepts_quaternions_within_tf2_tolerance() -> None:
    buf = tf2_ros.Buffer()
    ok = _tf("map", "base", 1.0)
    ok.transform.rotation.w = 1.004                                   # |q|^2 - 1 = 0.008 < 0.01
    buf.set_transform(ok, "test")
    assert buf.can_transform("map", "base", Time())


def test_transform_listener_has_the_real_signature() -> None:
    """tf2_ros_py transform_listener.py: (buffer, node, *, spin_thread, qos, static_qos,
    tf_topic, tf_static_topic); no callback_group argument (it makes its own group)."""
    import inspect

    params = list(inspect.signature(tf2_ros.TransformListener.__init__).parameters)
    assert params == ["self", "buffer", "node", "spin_thread", "qos", "static_qos", "tf_topic",
                      "tf_static_topic"]
    with pytest.raises(TypeError):
        tf2_ros.TransformListener(tf2_ros.Buffer(), object(), callback_group=None)  # type: ignore[call-arg]


def test_buffer_clears_on_a_jump_back_in_time() -> None:
    buf = tf2_ros.Buffer()
    buf.set_transform(_tf("map", "base", 1.0), "test")
    buf.time_jump_callback(None)
    assert not buf.can_transform("map", "base", Time())


def test_tf_timeout_waits_for_data_from_another_thread() -> None:
    buf = tf2_ros.Buffer()
    buf.set_transform(_tf("map", "base", 1.0), "test")

    def later() -> None:
        time.sleep(0.2)
        buf.set_transform(_tf("map", "base", 3.0, (3.0, 0.0, 0.0)), "test")

    th = threading.Thread(target=later)
    th.start()
    t = buf.lookup_transform("map", "base", Time(seconds=2.0), timeout=Duration(seconds=2.0))
    th.join()
    np.testing.assert_allclose(_xyz(t), [1.5, 0.0, 0.0], atol=1e-9)  # halfway from 0 to 3 m


def test_tf_cache_drops_old_samples() -> None:
    buf = tf2_ros.Buffer(cache_time=Duration(seconds=1.0))
    for k in range(5):
        buf.set_transform(_tf("map", "base", float(k)), "test")
    with pytest.raises(tf2_ros.ExtrapolationException):
        buf.lookup_transform("map", "base", Time(seconds=1.0))
    buf.lookup_transform("map", "base", Time(seconds=3.5))


# ------------------------------------------------------------------------ message_filters
class _Src(message_filters.SimpleFilter):
    pass


def _img(t: float) -> Image:
    m = Image()
    ns = int(round(t * 1e9))
    m.header.stamp = TimeMsg(sec=ns // 10**9, nanosec=ns % 10**9)
    return m


def _info(t: float) -> CameraInfo:
    m = CameraInfo()
    m.header.stamp = _img(t).header.stamp
    return m


def test_approximate_sync_pairs_within_slop_and_drops_outliers() -> None:
    a, b = _Src(), _Src()
    sync = message_filters.ApproximateTimeSynchronizer([a, b], queue_size=5, slop=0.05)
    got: list[tuple[float, float]] = []
    sync.registerCallback(lambda x, y: got.append((round(x.header.stamp.nanosec * 1e-9, 6),
                                                   round(y.header.stamp.nanosec * 1e-9, 6))))
    a.signalMessage(_img(0.10))
    b.signalMessage(_info(0.30))       # too far from 0.10: nothing
    assert got == []
    b.signalMessage(_info(0.12))       # pairs with 0.10
    assert got == [(0.10, 0.12)]
    a.signalMessage(_img(0.31))        # pairs with the waiting 0.30
    assert got[-1] == (0.31, 0.30)
    a.signalMessage(_img(0.50))
    b.signalMessage(_info(0.505))
    assert len(got) == 3


def test_approximate_sync_needs_a_spread_strictly_below_slop() -> None:
    """message_filters (Python): candidates within <= slop, but a set is emitted only when its
    spread is < slop; a spread of exactly slop is not."""
    a, b = _Src(), _Src()
    sync = message_filters.ApproximateTimeSynchronizer([a, b], queue_size=5, slop=0.05)
    got: list[int] = []
    sync.registerCallback(lambda x, y: got.append(1))
    a.signalMessage(_img(1.00))
    b.signalMessage(_info(1.05))                                     # spread == slop
    assert got == []
    b.signalMessage(_info(1.049))                                    # spread < slop
    assert got == [1]


def test_approximate_sync_headerless_messages() -> None:
    a, b = _Src(), _Src()
    sync = message_filters.ApproximateTimeSynchronizer([a, b], 5, 10.0, allow_headerless=True)
    got: list[int] = []
    sync.registerCallback(lambda x, y: got.append(1))
    a.signalMessage(object())                                        # stamped with ROS time now
    b.signalMessage(object())
    assert got == [1]
    strict = message_filters.ApproximateTimeSynchronizer([_Src(), _Src()], 5, 10.0)
    strict.add(object(), strict.queues[0], 0)                          # dropped with a warning
    assert strict.queues[0] == {}


def test_exact_time_synchronizer_and_subscriber_api() -> None:
    a, b, c = _Src(), _Src(), _Src()
    sync = message_filters.TimeSynchronizer([a, b, c], queue_size=3)
    got: list[int] = []
    sync.registerCallback(lambda *m: got.append(len(m)))
    a.signalMessage(_img(1.0))
    b.signalMessage(_img(1.0))
    assert got == []
    c.signalMessage(_img(1.0))
    assert got == [3]
    assert hasattr(message_filters.Subscriber, "registerCallback")


# ---------------------------------------------------------------------------- cv_bridge
def test_cv_bridge_rejects_like_the_real_one() -> None:
    """cv_bridge core.py: TypeError for a non-array, CvBridgeError for an encoding that does
    not fit the array, passthrough names the OpenCV type of any array."""
    br = CvBridge()
    with pytest.raises(TypeError, match="not a numpy array"):
        br.cv2_to_imgmsg([[1, 2]], "mono8")
    with pytest.raises(CvBridgeError, match="incompatible type 16UC1"):
        br.cv2_to_imgmsg(np.zeros((2, 3), np.uint16), "rgb8")
    assert br.cv2_to_imgmsg(np.zeros((2, 3, 4), np.uint8)).encoding == "8UC4"
    assert br.cv2_to_imgmsg(np.zeros((2, 3), np.float64)).encoding == "64FC1"
    m = br.cv2_to_imgmsg(np.arange(6, dtype=np.int16).reshape(2, 3))
    assert m.encoding == "16SC1"
    np.testing.assert_array_equal(br.imgmsg_to_cv2(m), np.arange(6).reshape(2, 3))


@pytest.mark.parametrize("encoding,dtype,ch", [("rgb8", np.uint8, 3), ("bgr8", np.uint8, 3),
                                               ("rgba8", np.uint8, 4), ("bgra8", np.uint8, 4),
                                               ("mono8", np.uint8, 1), ("16UC1", np.uint16, 1),
                                               ("32FC1", np.float32, 1)])
def test_cv_bridge_round_trip(encoding: str, dtype: type, ch: int) -> None:
    rng = np.random.default_rng(0)
    shape = (5, 7) if ch == 1 else (5, 7, ch)
    a = (rng.random(shape) * 200).astype(dtype)
    br = CvBridge()
    msg = br.cv2_to_imgmsg(a, encoding)
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    np.testing.assert_array_equal(br.imgmsg_to_cv2(msg), a)


def test_cv_bridge_row_padding_bigendian_and_colour_conversion() -> None:
    a = np.arange(4 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3)
    msg = Image(height=4, width=3, encoding="rgb8", step=12)       # 3 px * 3 B + 3 B padding
    msg.data = b"".join(a[r].tobytes() + b"\xff\xff\xff" for r in range(4))
    br = CvBridge()
    np.testing.assert_array_equal(br.imgmsg_to_cv2(msg), a)
    np.testing.assert_array_equal(br.imgmsg_to_cv2(msg, "bgr8"), a[..., ::-1])
    d = np.array([[1000, 2500]], dtype=np.uint16)
    big = Image(height=1, width=2, encoding="16UC1", step=4, is_bigendian=1)
    big.data = d.astype(">u2").tobytes()
    np.testing.assert_array_equal(br.imgmsg_to_cv2(big), d)
    with pytest.raises(CvBridgeError, match="unsupported image encoding 'yuv422'"):
        br.imgmsg_to_cv2(Image(height=1, width=2, encoding="yuv422", step=4, data=b"\0" * 4))
    with pytest.raises(CvBridgeError, match="step"):
        br.imgmsg_to_cv2(Image(height=2, width=2, encoding="rgb8", step=4, data=b"\0" * 8))
