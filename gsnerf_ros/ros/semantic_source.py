"""Where the node's classes come from (``semantic.source``) and where their names go.

``model``: the checkpoint's classes; their names and colours go out on ``~/label_info`` /
``~/semantic_legend`` when the node starts (:class:`~gsnerf_ros.ros.visualisation.ClassInfoPublisher`).
``labels``: a 2D segmenter's (:mod:`~gsnerf_ros.ros.segmenter_input`): its label images
(``topics.labels``, ``topics.label_confidence``, :func:`label_topics`) ride the node's
synchroniser with the colour image and are kept on the keyframes, its ``vision_msgs/LabelInfo``
(``topics.label_info``) names them and is republished on ``~/label_info``, and the rendered
``semantic`` / ``semantic_color`` are in its ids with a palette keyed by id
(:meth:`SemanticSourceMixin.semantic_output`). With ``model`` and ``topics.labels`` set the
labels are still decoded, checked and kept (not rendered). The segmenter's counts and last
refusal join the node's /diagnostics status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from gsnerf_ros.ros.diagnostics import INPUT_ERROR_WARN_S
from gsnerf_ros.ros.ros_libs import CvBridgeError
from gsnerf_ros.ros.segmenter_input import SegmenterInput
from gsnerf_ros.ros.visualisation import ClassInfoPublisher
from gsnerf_ros.runtime.engine import Renderer
from gsnerf_ros.runtime.params import NodeParams
from gsnerf_ros.runtime.segmenter_labels import KeyframeLabels, LabelError, LabelSpace, id_palette

if TYPE_CHECKING:
    from rclpy.node import Node as _NodeBase
else:
    _NodeBase = object

__all__ = ["SemanticSourceMixin", "label_topics", "check_renderer_source"]


def label_topics(p: NodeParams) -> list[str]:
    """The segmenter's image topics that join the synchroniser, in its order: ``topics.labels``
    then ``topics.label_confidence``, each when set."""
    return [t for t in (p.topics_labels, p.topics_label_confidence) if t]


def check_renderer_source(p: NodeParams, renderer: Renderer) -> None:
    """ValueError when ``semantic.source: labels`` but ``renderer`` cannot vote labels."""
    if (p.semantic_source == "labels"
            and getattr(renderer, "semantic_source", "model") != "labels"):
        raise ValueError(f"semantic.source: labels, but the renderer "
                         f"{type(renderer).__name__} does not vote segmenter labels")


class SemanticSourceMixin(_NodeBase):
    """The classes of a ``rclpy`` Node that provides the attributes annotated below.

    Call :meth:`_create_class_outputs` from the node's build step once they exist, and
    :meth:`_publish_class_names` when it starts.
    """

    p: NodeParams
    renderer: Renderer | None
    cb_tf: Any
    _bridge: Any
    _warn: Callable[[str, str], None]      # throttled warning (key, text)

    def _create_class_outputs(self) -> None:
        """:attr:`segmenter` (with ``topics.labels``, else None) and :attr:`class_info` (the
        model's names, None with ``semantic.source: labels``)."""
        p, renderer = self.p, self.renderer
        assert renderer is not None, "_load_renderer first"
        self.segmenter: SegmenterInput | None = None
        if p.topics_labels:
            space = getattr(renderer, "label_space", None)
            self.segmenter = SegmenterInput(
                self, p, space if space is not None else LabelSpace(),
                relay=p.semantic_source == "labels", warn=self._warn,
                callback_group=self.cb_tf)
        # The class names go out when the node starts (a managed node's publishers are enabled
        # at activate): the checkpoint's, or the segmenter's once it sends them.
        self.class_info = (None if p.semantic_source == "labels" else
                           ClassInfoPublisher(self, renderer.class_names, renderer.palette))

    def _publish_class_names(self) -> None:
        """The current class names on ``~/label_info`` and ``~/semantic_legend``."""
        if self.class_info is not None:
            self.class_info.publish(Header(stamp=self.get_clock().now().to_msg(),
                                           frame_id=self.p.frames_virtual_camera))
        elif self.segmenter is not None:
            self.segmenter.publish_names()

    def semantic_output(self) -> tuple[Any, int]:
        """(palette, number of ids) of ``semantic`` / ``semantic_color``: the model's classes,
        or with ``semantic.source: labels`` the segmenter's ids (mono8, or mono16 for 16-bit
        labels or ids above 254) with a palette keyed by id (a class keeps its colour when
        others appear; the unknown id is black)."""
        if self.p.semantic_source != "labels":
            return self.renderer.palette, len(self.renderer.class_names)
        n = self.renderer.label_space.unknown_value
        return id_palette(n), n

    def _frame_labels(self, image: Image, labels: Image | None,
                      confidence: Image | None) -> KeyframeLabels | None:
        """The segmenter's labels of a frame that becomes a keyframe, or None (none sent, or
        refused: counted and logged, the keyframe is kept)."""
        if self.segmenter is None or labels is None:
            return None
        try:
            out = self.segmenter.decode(image, labels, confidence, self._bridge)
        except (LabelError, CvBridgeError) as exc:
            self.segmenter.record(False, str(exc))
            return None
        self.segmenter.record(True)
        return out

    def _add_segmenter_diagnostics(self, status: DiagnosticStatus) -> None:
        """The segmenter's counts on ``status``; a recent refusal turns it to WARN."""
        if self.segmenter is None:
            return
        status.values.extend(KeyValue(key=k, value=v)
                             for k, v in self.segmenter.diagnostics().items())
        why = self.segmenter.recent_problem(INPUT_ERROR_WARN_S)
        if why:
            status.level = max(status.level, DiagnosticStatus.WARN)
            status.message = why if status.message == "ok" else f"{status.message}; {why}"
