"""PNG plots of a benchmark result (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["write_plots"]


def write_plots(res: dict[str, Any], out_dir: str | Path, prefix: str = "bench_") -> list[Path]:
    """Write the plots the result supports; returns their paths. Needs matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = res["environment"]["device"]
    written: list[Path] = []

    def save(fig: Any, name: str) -> None:
        p = out / f"{prefix}{name}.png"
        fig.tight_layout()
        fig.savefig(p, dpi=110)
        plt.close(fig)
        written.append(p)

    def save_sweep(fig: Any, ax: Any, name: str, xlabel: str, ylabel: str, what: str) -> None:
        """Axis labels, title and legend shared by the sweep plots, then :func:`save`."""
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"Cost vs {what} ({dev})", fontsize=9)
        ax.legend(fontsize=7)
        save(fig, name)

    modes = res.get("modes", {})
    if modes:
        names = list(modes)
        parts = ("target_depth", "sampling_gathering", "volume_renderer", "semantic_renderer",
                 "other")
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
        tot = [modes[m]["median_ms"] / 1e3 for m in names]
        ax1.barh(names, tot, color="tab:gray")
        for i, m in enumerate(names):
            sp = modes[m].get("speedup_vs_released")
            ax1.text(tot[i], i, f" {modes[m]['samples']} samp." + (f", {sp:.1f}x" if sp else ""),
                     va="center", fontsize=8)
        ax1.set_xscale("log")
        ax1.set_xlim(right=max(tot) * 20)
        ax1.set_xlabel("seconds per view (log); label: samples/ray, speed-up vs released")
        left = [0.0] * len(names)
        for part in parts:
            vals = []
            for m in names:
                bd = modes[m]["breakdown"]["stages_ms"]
                vals.append(100 * bd[part] / max(sum(bd.values()), 1e-9))
            ax2.barh(names, vals, left=left, label=part.replace("_", " "))
            left = [a + b for a, b in zip(left, vals)]
        ax2.set_xlabel("share of the view's time (%)")
        ax2.set_yticklabels([])
        ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
        s = res["settings"]
        fig.suptitle(f"Sampling modes, same run ({s['width']}x{s['height']}, {s['views']} views, "
                     f"{dev})", fontsize=9)
        save(fig, "modes")

    sw = res.get("sweeps", {})
    if "resolution" in sw:
        r = sw["resolution"]
        px = [p["pixels"] for p in r["points"]]
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.loglog(px, [p["render"]["median_ms"] for p in r["points"]], "o-",
                  label=f"render (exp {r['exponent_render_vs_pixels']:.2f})")
        if r.get("exponent_encode_vs_pixels") is not None:
            ax.loglog(px, [p["keyframe_encode"]["median_ms"] for p in r["points"]], "s-",
                      label=f"keyframe encode (exp {r['exponent_encode_vs_pixels']:.2f})")
        ax.loglog(px, [p["target_depth"]["median_ms"] for p in r["points"]], "^-",
                  label=f"target depth (exp {r['exponent_target_depth_vs_pixels']:.2f})")
        save_sweep(fig, ax, "resolution", "pixels", "ms", "resolution")
    if "samples" in sw:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        for m, d in sw["samples"]["modes"].items():
            ax.loglog([p["samples"] for p in d["points"]], [p["median_ms"] for p in d["points"]],
                      "o-", label=f"{m} (exp {d['exponent_render_vs_samples']:.2f})")
        save_sweep(fig, ax, "samples", "samples per ray", "ms per view", "samples per ray")
    if "views" in sw:
        d = sw["views"]
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.plot([p["views"] for p in d["points"]], [p["median_ms"] for p in d["points"]], "o-",
                label=f"exp {d['exponent_render_vs_views']:.2f}")
        save_sweep(fig, ax, "views", "source views", "ms per view", "source views")
    return written
