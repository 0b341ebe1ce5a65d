"""A 2D segmenter the robot already runs, as an input of the node: its class-id images (and
confidence) on the keyframes, its ``vision_msgs/LabelInfo`` class names, and, with
``semantic.source: labels``, those names on ``~/label_info`` / ``~/semantic_legend``.

The label and confidence images travel through the node's approximate-time synchroniser with
the colour image (``topics.labels``, ``topics.label_confidence``); :meth:`SegmenterInput.decode`
checks one pair against its image (encoding, size, stamp within
``semantic.label_stamp_tolerance``) and raises :class:`LabelError` saying what is wrong; the
node then keeps the keyframe without labels. A LabelInfo that changes mid-run is taken and
logged (labels kept from before are translated by class name,
:class:`~gsnerf_ros.runtime.segmenter_labels.LabelSpace`); one that cannot be used (duplicate
names) is refused and the previous one kept. Counts and the last refusal go to /diagnostics
(:meth:`SegmenterInput.diagnostics`).
"""

from __future__ import annotations

import time
from typing import Any, Callable

from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from vision_msgs.msg import LabelInfo, VisionClass

from gsnerf_ros.imaging import class_legend
from gsnerf_ros.ros import convert
from gsnerf_ros.ros.visualisation import LATCHED
from gsnerf_ros.runtime.params import NodeParams
from gsnerf_ros.runtime.segmenter_labels import (KeyframeLabels, LabelError, LabelSpace,
                                                 check_label_header, decode_confidence,
                                                 decode_labels, id_palette)

__all__ = ["SegmenterInput", "LabelError"]


class SegmenterInput:
    """The segmenter's inputs of ``node`` (parameters ``p``) into ``space``.

    ``relay``: republish the segmenter's names on ``~/label_info`` and ``~/semantic_legend``
    (``semantic.source: labels``); ``warn(key, text)``: the node's throttled warning."""

    def __init__(self, node: Node, p: NodeParams, space: LabelSpace, relay: bool,
                 warn: Callable[[str, str], None], callback_group: Any = None) -> None:
        self.node, self.p, self.space, self.warn = node, p, space, warn
        self.labelled = 0
        """Keyframes that got labels."""
        self.refused = 0
        """Label images refused (the keyframe was kept without them)."""
        self.last_refusal: tuple[float, str] | None = None
        self.unnamed: set[int] = set()
        """Ids seen in label images that the current LabelInfo does not name."""
        self.label_info_updates = 0
        self.label_info_refused = 0
        self.pub_info = self.pub_legend = None
        if relay:
            self.pub_info = node.create_publisher(LabelInfo, "~/label_info", LATCHED)
            self.pub_legend = node.create_publisher(Image, "~/semantic_legend", LATCHED)
        self.sub_info = None
        if p.topics_label_info:
            self.sub_info = node.create_subscription(LabelInfo, p.topics_label_info,
                                                     self.on_label_info, LATCHED,
                                                     callback_group=callback_group)

    # ------------------------------------------------------------------ class names
    def on_label_info(self, msg: LabelInfo) -> None:
        """Take a LabelInfo (the first, or a change); a bad one is refused, the last kept."""
        class_map = {int(c.class_id): str(c.class_name) for c in msg.class_map}
        if len(class_map) != len(msg.class_map):
            self._refuse_info(f"label_info lists class id(s) more than once "
                              f"({len(msg.class_map)} entries, {len(class_map)} ids)")
            return
        try:
            change = self.space.update(class_map)
        except LabelError as exc:
            self._refuse_info(str(exc))
            return
        if change.kind == "same":
            return
        self.label_info_updates += 1
        log = self.node.get_logger()
        if change.kind == "first":
            log.info(f"segmenter label_info: {change.message}")
        elif change.kind == "extended":
            log.info(f"segmenter label_info extended: {change.message}")
        else:
            log.warning(f"segmenter label_info changed mid-run: {change.message}")
        self.unnamed.clear()
        self.publish_names(msg.header)

    def _refuse_info(self, why: str) -> None:
        self.label_info_refused += 1
        self.warn("label_info", f"refusing the segmenter's label_info: {why}; keeping the "
                  f"previous one ({len(self.space.names())} classes)")

    def publish_names(self, header: Header | None = None) -> None:
        """The current names on ``~/label_info`` and their colours on ``~/semantic_legend``
        (with ``relay``)."""
        if self.pub_info is None:
            return
        names = self.space.names()
        header = Header(stamp=self.node.get_clock().now().to_msg(),
                        frame_id=self.p.frames_virtual_camera)
        msg = LabelInfo(header=header)
        msg.class_map = [VisionClass(class_id=i, class_name=n)
                         for i, n in sorted(names.items())]
        self.pub_info.publish(msg)
        if names:
            ids = sorted(names)
            pal = id_palette(self.space.unknown_value)[[min(i, self.space.unknown_value - 1)
                                                        for i in ids]]
            rows = len(ids)
            legend = class_legend([f"{i} {names[i]}" for i in ids], pal,
                                  height=min(24 * rows, 480), width=320 * -(-rows // 20))
            self.pub_legend.publish(convert.array_to_image(legend, "rgb8", header))

    # ------------------------------------------------------------------ label images
    def decode(self, image: Image, labels: Image, confidence: Image | None,
               bridge: Any) -> KeyframeLabels:
        """The labels (and confidence) of ``image`` as :class:`KeyframeLabels`; raises
        :class:`LabelError` when they do not fit it (encoding, size, stamp)."""
        stamp = convert.stamp_to_sec(image.header.stamp)
        tol = self.p.semantic_label_stamp_tolerance
        check_label_header("label", labels.width, labels.height,
                           convert.stamp_to_sec(labels.header.stamp), image.width, image.height,
                           stamp, tol)
        ids, wide = decode_labels(bridge.imgmsg_to_cv2(labels, desired_encoding="passthrough"),
                                  labels.encoding)
        conf = None
        if confidence is not None:
            check_label_header("label confidence", confidence.width, confidence.height,
                               convert.stamp_to_sec(confidence.header.stamp), image.width,
                               image.height, stamp, tol)
            conf = decode_confidence(bridge.imgmsg_to_cv2(confidence,
                                                          desired_encoding="passthrough"),
                                     confidence.encoding)
        if wide and not self.space.wide:
            self.space.wide = True
        unnamed = [i for i in self.space.unnamed_ids(ids) if i not in self.unnamed]
        if unnamed:
            self.unnamed.update(unnamed)
            self.warn("label-unnamed", f"segmenter labels hold class id(s) {sorted(unnamed)[:10]}"
                      f" that its label_info ({len(self.space.names())} classes) does not "
                      "name; they are kept and rendered as they are")
        return KeyframeLabels(ids, conf, self.space.generation, wide)

    def record(self, labelled: bool, why: str = "") -> None:
        """Count a keyframe with labels, or one whose labels were refused (and why)."""
        if labelled:
            self.labelled += 1
        else:
            self.refused += 1
            self.last_refusal = (time.monotonic(), why)
            self.warn("labels-refused", f"keyframe kept without its segmenter labels: {why}")

    def recent_problem(self, within_s: float) -> str | None:
        """The last label refusal when it is under ``within_s`` s old (a WARN), else None."""
        if self.last_refusal is None or time.monotonic() - self.last_refusal[0] > within_s:
            return None
        return f"segmenter labels refused: {self.last_refusal[1]}"

    def diagnostics(self) -> dict[str, str]:
        """Key/values for /diagnostics."""
        out = {"labels_keyframes": str(self.labelled), "labels_refused": str(self.refused),
               "label_info_classes": str(len(self.space.names())),
               "label_info_updates": str(self.label_info_updates),
               "label_info_refused": str(self.label_info_refused),
               "labels_unnamed_ids": str(sorted(self.unnamed)[:20])}
        if self.last_refusal is not None:
            out["labels_last_refusal"] = self.last_refusal[1]
        return out
