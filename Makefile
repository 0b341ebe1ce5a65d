# gsnerf_ros developer entry points. Both main targets set up .venv first (idempotent).
#   make demo            end-to-end ROS demo (node + player + render_view calls) -> demo_output/
#   make demo BAG=path   the same, playing a recorded ROS 2 bag; the world frame (root of its TF
#                        tree) and topics are found in the bag, or name them with WORLD_FRAME=,
#                        IMAGE_TOPIC=, CAMERA_INFO_TOPIC= (DEMO_ARGS= passes other gsnerf-demo options)
#   make test            the pytest suite (CI runs this through .ci/run)
SHELL := /bin/bash
PY := .venv/bin/python
PYTEST_ARGS ?=
BAG ?=
WORLD_FRAME ?=
IMAGE_TOPIC ?=
CAMERA_INFO_TOPIC ?=
DEMO_ARGS ?=

.PHONY: env demo test test-all bench clean-build

env:
	@bash tools/setup_env.sh

demo: env
	$(PY) -m gsnerf_ros.ros.tools.demo $(if $(BAG),--bag $(BAG),) \
		$(if $(WORLD_FRAME),--world-frame $(WORLD_FRAME),) \
		$(if $(IMAGE_TOPIC),--image-topic $(IMAGE_TOPIC),) \
		$(if $(CAMERA_INFO_TOPIC),--camera-info-topic $(CAMERA_INFO_TOPIC),) $(DEMO_ARGS)

test: env
	OMP_NUM_THREADS=1 $(PY) -m pytest $(PYTEST_ARGS)

test-all: env
	OMP_NUM_THREADS=1 $(PY) -m pytest -m "" $(PYTEST_ARGS)

bench: env
	$(PY) -m gsnerf_ros.bench.cli --json bench.json

clean-build:
	rm -rf build .venv/.stamp-interfaces .venv/.stamp-tf2 .venv/.stamp-vision
