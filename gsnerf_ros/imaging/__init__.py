"""Images without ROS: the codec (bytes <-> arrays), what pixels mean, colouring.

- :mod:`~gsnerf_ros.imaging.codec`: the one encoding table (:data:`ENCODINGS`); raw image bytes
  (``sensor_msgs/Image`` fields) and JPEG/PNG (``CompressedImage``) <-> NumPy arrays;
- :mod:`~gsnerf_ros.imaging.pixels`: colour order, depth units and class ids of decoded arrays
  (-> RGB, metres, int64 ids) and the node's camera encodings;
- :mod:`~gsnerf_ros.imaging.colouring`: label and depth colour images, depth colour bar and
  class legend (uint8 RGB [H, W, 3]).

The node (:mod:`gsnerf_ros.ros`) converts messages to and from these arrays; the bag reader and
writer (:mod:`gsnerf_ros.data.bag_messages`) and the panels use the same functions.
"""

from gsnerf_ros.imaging.codec import (
    CV_DEPTHS, ENCODINGS, EncodingInfo, ImageFormatError, canonical_encoding, cv_type_name,
    decode_compressed, decode_raw, encode_compressed, encode_raw, encoding_info,
)
from gsnerf_ros.imaging.colouring import (
    DEPTH_SCALES, class_legend, colorize_depth, colorize_labels, depth_colorbar,
    uint8_to_float_rgb,
)
from gsnerf_ros.imaging.pixels import (
    CAMERA_COLOUR_ENCODINGS, CAMERA_ENCODINGS, check_camera_encoding, convert_color,
    depth_metres, label_ids, labels_to_array, to_depth_metres, to_rgb_array, to_rgb_tensor,
)

__all__ = [
    "CV_DEPTHS", "ENCODINGS", "EncodingInfo", "ImageFormatError", "canonical_encoding",
    "cv_type_name", "decode_compressed", "decode_raw", "encode_compressed", "encode_raw",
    "encoding_info", "DEPTH_SCALES", "class_legend", "colorize_depth", "colorize_labels",
    "depth_colorbar", "uint8_to_float_rgb", "CAMERA_COLOUR_ENCODINGS", "CAMERA_ENCODINGS",
    "check_camera_encoding", "convert_color", "depth_metres", "label_ids", "labels_to_array",
    "to_depth_metres", "to_rgb_array", "to_rgb_tensor",
]
