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
    with pytest.raises(tf2_ros.InvalidArgumentException):
        bad = _tf("map", "base", 3.0)
        bad.transform.rotation.w = float("nan")
        buf.set_transform(bad, "test")


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
