"""package.xml and the pip requirement files declare everything the package imports, and every
package.xml key resolves with rosdep on ROS 2 Jazzy and Kilted.

Third-party imports are found with an AST walk over gsnerf_ros/, launch/ and scripts/. Left out:
the standard library, gsnerf_ros itself, and optional imports (inside ``try`` with an ``except``
for ImportError or a base class of it that does more than re-raise). A module is declared when,
on a robot, package.xml names its rosdep key (ROSDEP_KEY_OF_MODULE), or requirements/robot.txt
names its distribution, or it is the CUDA torch the README leaves to the user; modules imported
outside the ROS code (gsnerf_ros/ros, launch, scripts) must also be in setup.py, which is what
``pip install .`` reads.
"""

from __future__ import annotations

import ast
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# rosdep keys that resolve for Jazzy and Kilted (both on Ubuntu 24.04 noble), checked against
# github.com/ros/rosdistro at commit 8468e88ccd523427f9131e39d2af0938f1c298b2 (2026-08-22):
# ROS package names released in both jazzy/distribution.yaml and kilted/distribution.yaml ...
ROS_PACKAGE_KEYS = frozenset({
    "action_msgs", "ament_cmake", "ament_cmake_pytest", "ament_cmake_python",
    "ament_index_python", "builtin_interfaces", "cv_bridge", "diagnostic_msgs",
    "domain_coordinator", "geometry_msgs", "launch", "launch_ros", "lifecycle_msgs",
    "message_filters", "nav_msgs", "rcl_interfaces", "rclpy", "rosidl_default_generators",
    "rosidl_default_runtime", "rviz2", "sensor_msgs", "std_msgs", "tf2_msgs", "tf2_ros",
    "tf2_ros_py", "vision_msgs", "visualization_msgs",
})
# ... and rosdep/python.yaml keys whose ubuntu rule for noble is an apt package (a key with a pip
# rule is left out: rosdep's pip installer stops at PEP 668 on Ubuntu 24.04; python3-torch is left
# out on purpose: it is Ubuntu's CPU torch, installed beside the user's CUDA torch).
PYTHON_APT_KEYS = frozenset({
    "python3-matplotlib", "python3-numpy", "python3-opencv", "python3-psutil", "python3-pytest",
    "python3-pytest-timeout", "python3-skimage", "python3-tqdm", "python3-yaml",
})
ALLOWED_KEYS = ROS_PACKAGE_KEYS | PYTHON_APT_KEYS

# python module -> the rosdep key that installs it on a robot
ROSDEP_KEY_OF_MODULE = {
    **{m: m for m in (
        "rclpy", "rcl_interfaces", "ament_index_python", "builtin_interfaces", "std_msgs",
        "geometry_msgs", "sensor_msgs", "nav_msgs", "visualization_msgs", "diagnostic_msgs",
        "action_msgs", "vision_msgs", "lifecycle_msgs", "tf2_msgs", "message_filters",
        "cv_bridge", "launch", "launch_ros", "domain_coordinator")},
    "tf2_ros": "tf2_ros_py",          # the package tf2_ros is the C++ library
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "psutil": "python3-psutil",
    "matplotlib": "python3-matplotlib",
    "skimage": "python3-skimage",
}
# python module -> pip distribution (setup.py, requirements/robot.txt)
DIST_OF_MODULE = {
    "torch": "torch", "numpy": "numpy", "cv2": "opencv-python-headless", "yaml": "pyyaml",
    "tqdm": "tqdm", "psutil": "psutil", "matplotlib": "matplotlib", "skimage": "scikit-image",
    "safetensors": "safetensors", "rosbags": "rosbags", "tensorboard": "tensorboard",
    "triton": "triton",
}
# imports that need another module than their top-level name says
INDIRECT = {"torch.utils.tensorboard": "tensorboard"}
# installed by the user (README, "Installing on a robot"): the CUDA build for the platform
USER_INSTALLED = {"torch"}
# the real packages the node prefers to its in-tree equivalents (gsnerf_ros/ros/ros_libs.py):
# optional imports, but a robot must have them
REAL_ON_A_ROBOT = ("tf2_ros", "message_filters", "cv_bridge")
# files that only run with ROS present: their imports need not be in setup.py
ROS_ONLY = ("gsnerf_ros/ros/", "launch/", "scripts/")


# ------------------------------------------------------------------ collecting imports
def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    """The handler catches ImportError (or a base class of it) and falls back (does more than
    re-raise)."""
    t = handler.type
    names = {e.id for e in (t.elts if isinstance(t, ast.Tuple) else [t]) if isinstance(e, ast.Name)}
    fallback = not (len(handler.body) == 1 and isinstance(handler.body[0], ast.Raise))
    catches = t is None or bool(
        {"ImportError", "ModuleNotFoundError", "Exception", "BaseException"} & names)
    return fallback and catches


def imports_of(source: str) -> dict[str, bool]:
    """Absolute imports of a module's source -> True when required, False when optional (every
    place it is imported is guarded by an ``except ImportError`` fallback). Dotted names are
    kept ("torch.utils.tensorboard")."""
    found: dict[str, bool] = {}

    def visit(node: ast.AST, guarded: bool) -> None:
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for n in names:
            found[n] = found.get(n, False) or not guarded
        if isinstance(node, ast.Try):
            body_guarded = guarded or any(_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, body_guarded)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, guarded)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(ast.parse(source), False)
    return found


def _python_files() -> list[Path]:
    files = sorted((ROOT / "gsnerf_ros").rglob("*.py")) + sorted((ROOT / "launch").glob("*.py"))
    files += [p for p in sorted((ROOT / "scripts").iterdir())
              if p.is_file() and p.read_text(errors="replace").startswith("#!/usr/bin/env python")]
    return files


def third_party_imports() -> dict[str, dict[str, bool]]:
    """Module (top-level name, or the INDIRECT name it needs) -> {file: required}."""
    out: dict[str, dict[str, bool]] = {}
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        for name, required in imports_of(path.read_text()).items():
            top = name.split(".")[0]
            mods = [top] + [m for dotted, m in INDIRECT.items()
                            if name == dotted or name.startswith(dotted + ".")]
            for mod in mods:
                if mod in sys.stdlib_module_names or mod == "gsnerf_ros" or mod == "__future__":
                    continue
                files = out.setdefault(mod, {})
                files[rel] = files.get(rel, False) or required
    return out


# ------------------------------------------------------------------ the declarations
def package_xml_keys() -> dict[str, list[str]]:
    """Dependency tag -> keys, in package.xml."""
    root = ET.parse(ROOT / "package.xml").getroot()
    out: dict[str, list[str]] = {}
    for el in root:
        if isinstance(el.tag, str) and el.tag.endswith("depend"):
            out.setdefault(el.tag, []).append((el.text or "").strip())
    return out


def _dist_name(requirement: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    assert m, f"cannot parse requirement {requirement!r}"
    return re.sub(r"[-_.]+", "-", m.group(1)).lower()


def requirements(path: Path) -> dict[str, str]:
    """Distribution -> requirement line of a pip requirements file (comments dropped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            out[_dist_name(line)] = line
    return out


def setup_py_requirements() -> tuple[dict[str, str], dict[str, str]]:
    """(install_requires, extras_require flattened): distribution -> requirement string."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", None) == "setup")
    kw = {k.arg: ast.literal_eval(k.value) for k in call.keywords
          if k.arg in ("install_requires", "extras_require")}
    base = {_dist_name(r): r for r in kw.get("install_requires", [])}
    extras = {_dist_name(r): r for reqs in kw.get("extras_require", {}).values() for r in reqs}
    return base, extras


ROBOT_TXT = ROOT / "requirements" / "robot.txt"


def _exec_keys() -> set[str]:
    keys = package_xml_keys()
    return set(keys.get("exec_depend", [])) | set(keys.get("depend", []))


# ------------------------------------------------------------------ tests
def test_every_package_xml_key_resolves_on_jazzy_and_kilted() -> None:
    keys = package_xml_keys()
    assert keys.get("exec_depend"), "package.xml has no exec_depend"
    unknown = {f"<{tag}>{k}" for tag, ks in keys.items() for k in ks if k not in ALLOWED_KEYS}
    assert not unknown, (f"package.xml keys that rosdep does not resolve (or that install the "
                         f"wrong thing) on Jazzy/Kilted: {sorted(unknown)}")
    for tag, ks in keys.items():
        assert len(ks) == len(set(ks)), f"duplicate <{tag}> keys: {ks}"


def test_package_xml_is_a_valid_format_3_manifest() -> None:
    catkin_pkg = pytest.importorskip("catkin_pkg.package")
    pkg = catkin_pkg.parse_package(str(ROOT / "package.xml"))
    pkg.validate()                       # raises InvalidPackage
    assert pkg.package_format == 3 and pkg.name == "gsnerf_ros"


def test_every_import_is_declared() -> None:
    apt = _exec_keys()
    robot_pip = set(requirements(ROBOT_TXT))
    base, extras = setup_py_requirements()
    problems = []
    for mod, files in sorted(third_party_imports().items()):
        required_in = sorted(f for f, req in files.items() if req)
        if not required_in:
            continue                      # optional everywhere: a fallback exists
        dist = DIST_OF_MODULE.get(mod)
        key = ROSDEP_KEY_OF_MODULE.get(mod)
        if dist is None and key is None:
            problems.append(f"{mod} (imported by {required_in[0]}): in neither "
                            "ROSDEP_KEY_OF_MODULE nor DIST_OF_MODULE; add its rosdep key or "
                            "pip distribution there and declare it")
            continue
        on_robot = ((key is not None and key in apt) or (dist is not None and dist in robot_pip)
                    or mod in USER_INSTALLED or (dist is not None and dist in extras))
        if not on_robot:
            problems.append(f"{mod} (imported by {required_in[0]}): neither package.xml "
                            f"({key}) nor requirements/robot.txt ({dist}) installs it on a robot")
        pip_side = [f for f in required_in if not f.startswith(ROS_ONLY)]
        if pip_side and (dist is None or (dist not in base and dist not in extras)):
            problems.append(f"{mod} (imported by {pip_side[0]}): not in setup.py ({dist})")
    assert not problems, "\n".join(problems)


def test_real_ros_libraries_are_declared_for_robots() -> None:
    apt = _exec_keys()
    imported = third_party_imports()
    for mod in REAL_ON_A_ROBOT:
        assert mod in imported, f"{mod} is no longer imported; update REAL_ON_A_ROBOT"
        assert ROSDEP_KEY_OF_MODULE[mod] in apt, f"package.xml lacks {ROSDEP_KEY_OF_MODULE[mod]}"


def test_pip_requirement_files_agree_with_setup_py() -> None:
    robot = requirements(ROBOT_TXT)
    base, _ = setup_py_requirements()
    assert "torch" not in robot, "the CUDA torch is the user's (README); not in robot.txt"
    apt_dists = {DIST_OF_MODULE[m] for m, k in ROSDEP_KEY_OF_MODULE.items()
                 if k in _exec_keys() and m in DIST_OF_MODULE}
    for dist, line in robot.items():
        if dist in apt_dists:             # installed by rosdep: only an upper-bound constraint
            assert ">" not in line and "<" in line, (
                f"{dist} comes from rosdep (package.xml); robot.txt may only constrain it "
                f"from above, not install it: {line!r}")
            continue
        assert dist in base, f"robot.txt's {dist} is not in setup.py's install_requires"
    # every install_requires of setup.py is there on a robot
    for dist in base:
        mod = next((m for m, d in DIST_OF_MODULE.items() if d == dist), None)
        key = ROSDEP_KEY_OF_MODULE.get(mod or "")
        assert (dist in robot or (key is not None and key in _exec_keys())
                or mod in USER_INSTALLED), f"setup.py's {dist} is not installed on a robot"


@pytest.mark.parametrize("source, expected", [
    ("import torch\nfrom rosbags.rosbag2 import Reader\n",
     {"torch": True, "rosbags.rosbag2": True}),
    ("try:\n    import lpips\nexcept ImportError:\n    lpips = None\n", {"lpips": False}),
    ("try:\n    import lpips\nexcept ImportError:\n    raise\n", {"lpips": True}),
    ("try:\n    import a\nexcept (ValueError, ModuleNotFoundError):\n    a = None\n", {"a": False}),
    ("try:\n    import a\nexcept KeyError:\n    a = None\n", {"a": True}),
    ("try:\n    import a\nexcept Exception:\n    pass\n", {"a": False}),
    ("def f():\n    import psutil\n", {"psutil": True}),
    ("try:\n    import b\nexcept ImportError:\n    import c\n", {"b": False, "c": True}),
    ("from . import sibling\nfrom .x import y\n", {}),
])
def test_import_collector(source: str, expected: dict[str, bool]) -> None:
    assert imports_of(source) == expected


def test_collector_sees_the_known_imports() -> None:
    found = third_party_imports()
    assert found["torch"]["gsnerf_ros/model/gsnerf.py"] is True
    assert found["tensorboard"]["gsnerf_ros/train/trainer.py"] is True
    assert found["tf2_ros"]["gsnerf_ros/ros/ros_libs.py"] is False      # compat fallback
    assert found["launch_ros"]["launch/gsnerf.launch.py"] is True
    assert not any(m in found for m in ("os", "gsnerf_ros", "typing"))


def test_readme_explains_every_dependency_and_the_robot_install() -> None:
    readme = (ROOT / "README.md").read_text()
    deps = readme[readme.index("## Dependencies and why"):].lower()
    base, extras = setup_py_requirements()
    for dist in [*base, *extras, *requirements(ROBOT_TXT)]:
        assert dist in deps, f"README's 'Dependencies and why' does not mention {dist}"
    install = readme[readme.index("## Installing on a robot"):readme.index("## The node")]
    for step in ("rosdep install --from-paths src", "colcon build", "--system-site-packages",
                 "pip install -r src/gsnerf_ros/requirements/robot.txt", "pip install torch"):
        assert step in install, f"README's robot install lacks {step!r}"
