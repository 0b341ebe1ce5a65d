"""Pack a device session's results into the few files a device machine hands back.

    python -m gsnerf_ros.train.device_outputs WORK OUT [--max-mib 15]
    python -m gsnerf_ros.train.device_outputs RUN --weights   # the weights a run hands back

A lent device returns at most 8 files of 16 MiB from ``$OUT`` (the device tool's limits), so
``tools/gpu_train.sh`` works in WORK and ends with this. OUT gets:

- ``summary.md`` and ``summary.json`` (copied from WORK when there);
- ``steps.txt`` (each step's exit status and seconds);
- ``checkpoints.tar``: for every training run folder in WORK (one holding ``config.yaml``),
  its selected weights (``best.safetensors``, else the last ``checkpoints/step_*``) as
  ``<run>.safetensors`` with the ``<run>.json`` sidecar that loading needs, its
  ``config.yaml`` and ``summary.json`` as ``<run>_config.yaml`` / ``<run>_summary.json``;
- ``results.tar.gz``: WORK's JSON, Markdown, logs and YAML (not the data), then as many panels
  (PNG) as fit the size cap, in name order.

Every file stays under ``--max-mib``; what did not fit is listed in ``results.tar.gz`` as
``left_out.txt``.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tarfile
from pathlib import Path
from typing import Sequence

__all__ = ["selected_weights", "pack", "main"]

_TEXT = (".json", ".md", ".log", ".txt", ".yaml")


def selected_weights(run: str | Path) -> Path | None:
    """A run folder's chosen weights: ``best.safetensors``, else its last step checkpoint
    (:func:`gsnerf_ros.train.checkpoint.latest_checkpoint`)."""
    from gsnerf_ros.train.checkpoint import latest_checkpoint

    best = Path(run) / "best.safetensors"
    return best if best.is_file() else latest_checkpoint(Path(run) / "checkpoints")


def _runs(work: Path) -> list[Path]:
    return sorted(p for p in work.iterdir() if p.is_dir() and (p / "config.yaml").is_file())


def pack(work: str | Path, out: str | Path, max_mib: float = 15.0) -> list[Path]:
    """Write OUT's files (see the module docstring); returns their paths."""
    work, out = Path(work), Path(out)
    if not work.is_dir():
        raise FileNotFoundError(f"{work} is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    cap = int(max_mib * 2**20)
    written: list[Path] = []
    for name in ("summary.md", "summary.json", "steps.txt"):
        if (work / name).is_file() and work.resolve() != out.resolve():
            shutil.copyfile(work / name, out / name)
        if (out / name).is_file():
            written.append(out / name)
    left_out: list[str] = []
    runs = _runs(work)
    if runs:
        path = out / "checkpoints.tar"
        with tarfile.open(path, "w") as tar:
            size = 0
            for run in runs:
                w = selected_weights(run)
                if w is None:
                    left_out.append(f"{run.name}: no checkpoint")
                    continue
                members = [(w, f"{run.name}.safetensors"),
                           (w.with_suffix(".json"), f"{run.name}.json"),
                           (run / "config.yaml", f"{run.name}_config.yaml"),
                           (run / "summary.json", f"{run.name}_summary.json")]
                members = [(p, a) for p, a in members if p.is_file()]
                need = sum(p.stat().st_size + 1024 for p, _ in members)
                if size + need > cap:
                    left_out.append(f"{run.name}: checkpoint over the {max_mib} MiB cap")
                    continue
                for p, a in members:
                    tar.add(p, arcname=a)
                size += need
        written.append(path)
    path = out / "results.tar.gz"
    # the runs' own files went into checkpoints.tar
    files = [p for p in work.rglob("*") if p.is_file()
             and not any(p.is_relative_to(r) for r in runs)]
    texts = sorted(p for p in files if p.suffix in _TEXT)
    panels = sorted(p for p in files if p.suffix == ".png")
    with tarfile.open(path, "w:gz") as tar:
        size = 0
        for p in texts + panels:
            n = p.stat().st_size + 1024
            if size + n > cap * 0.95:       # gzip of text only shrinks; leave the header room
                left_out.append(str(p.relative_to(work)))
                continue
            tar.add(p, arcname=str(p.relative_to(work)))
            size += n
        note = ("\n".join(left_out) + "\n").encode() if left_out else b""
        info = tarfile.TarInfo("left_out.txt")
        info.size = len(note)
        tar.addfile(info, io.BytesIO(note))
    written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("work", help="the session's working folder")
    ap.add_argument("out", nargs="?", help="the folder the device hands back ($OUT)")
    ap.add_argument("--max-mib", type=float, default=15.0, help="size cap of each file (MiB)")
    ap.add_argument("--weights", action="store_true", help="print the weights file that "
                    "WORK (one training run folder) would hand back, and pack nothing")
    args = ap.parse_args(argv)
    if args.weights:
        w = selected_weights(args.work)
        if w is None:
            ap.error(f"no checkpoint in {args.work}")
        print(w)
        return 0
    if args.out is None:
        ap.error("OUT is required unless --weights")
    try:
        files = pack(args.work, args.out, args.max_mib)
    except FileNotFoundError as exc:
        ap.error(str(exc))
    for f in files:
        print(f"{f}  {f.stat().st_size / 2**20:.2f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
