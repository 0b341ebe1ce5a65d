"""gsnerf_ros: generalizable semantic neural radiance fields (GSNeRF) for ROS 2 robots.

The hand-written package (model, geometry, data, train, ros) and the rosidl-generated
interface modules (``gsnerf_ros.msg``, ``gsnerf_ros.srv``, ``gsnerf_ros.action``) share this
namespace; ``extend_path`` lets both halves import together from a source checkout.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)  # type: ignore[name-defined]

__version__ = "0.1.0"
