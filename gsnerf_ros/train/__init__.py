"""Offline training and evaluation of GSNeRF: losses, metrics, trainer, evaluator, CLIs.

Runs with no ROS installed. Console scripts: ``gsnerf-train`` and ``gsnerf-eval``
(:mod:`gsnerf_ros.train.cli`).
"""
