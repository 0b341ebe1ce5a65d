"""Readable tables of a benchmark result (the CLI prints them; docs/BENCHMARKS.md quotes them)."""

from __future__ import annotations

from typing import Any

__all__ = ["format_report", "fmt_ms"]


def fmt_ms(d: Any) -> str:
    """``median ± IQR`` in ms (or the skip reason)."""
    if not isinstance(d, dict):
        return "-"
    if d.get("median_ms") is None:
        return f"n/a ({d.get('skipped', 'not measured')})"
    s = f"{d['median_ms']:.1f}"
    if d.get("iqr_ms") is not None:
        s += f" ± {d['iqr_ms']:.1f}"
    return s


def _mem(d: dict[str, Any]) -> str:
    if d.get("peak_mem_mb") is None:
        return "-"
    kind = "RSS" if d.get("mem_kind") == "process_rss_peak" else "alloc"
    return f"{d['peak_mem_mb']:.0f} MiB ({kind})"


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def format_report(res: dict[str, Any]) -> str:
    """Markdown tables: stages, modes, variants, sweeps, accuracy, targets."""
    s, env = res["settings"], res["environment"]
    out = [f"gsnerf-bench on {env['device']} ({env.get('gpu') or env['cpu']}, "
           f"{env['torch_threads']} threads, load {env.get('load_avg_start')}), model "
           f"{res['model']['config']} ({res['model']['num_parameters']:,} params), "
           f"{s['width']}x{s['height']}, {s['views']} views, repeats {s['repeats']}, warm-up "
           f"{s['warmup']}, ray budget {s['ray_budget'] or 'whole view'}, chunk "
           f"{s['chunk_used']}", ""]
    rows = [[k, fmt_ms(v), v.get("per", "") if isinstance(v, dict) else "",
             _mem(v) if isinstance(v, dict) else "-"] for k, v in res["stages"].items()]
    out += ["Stages (ms, median ± IQR)", _table(["stage", "ms", "per", "peak mem"], rows), ""]
    if res.get("modes"):
        rows = []
        for m, d in res["modes"].items():
            bd = d["breakdown"]["stages_ms"]
            rows.append([m, str(d["samples"]), fmt_ms(d),
                         f"{d['speedup_vs_released']:.2f}x" if d.get("speedup_vs_released") else "-",
                         f"{bd['sampling_gathering']:.0f} / {bd['volume_renderer']:.0f} / "
                         f"{bd['semantic_renderer']:.0f} / {bd['target_depth']:.0f} / "
                         f"{bd['other']:.0f}", _mem(d),
                         "extrapolated" if d.get("extrapolated") else "whole view"])
        out += ["Modes (one view, same run)",
                _table(["mode", "samples/ray", "ms/view", "speed-up vs released",
                        "gather / volume / semantic / target depth / other (ms)", "peak mem",
                        "how"], rows), ""]
    if res.get("variants"):
        rows = [[k, fmt_ms(v), f"{v['speedup_vs_eager']:.2f}x" if v.get("speedup_vs_eager")
                 else "-"] for k, v in res["variants"].items()]
        out += ["Variants (depth_guided)", _table(["variant", "ms/view", "vs eager"], rows), ""]
        lab = res["variants"].get("labels_source", {})
        if lab.get("median_ms"):
            out += [f"labels_source (semantic.source: labels, the label vote included): "
                    f"{fmt_ms(lab)} ms/view without the model's semantics, "
                    f"{fmt_ms(lab['with_semantics'])} ms with them run and dropped "
                    f"({lab['speedup_vs_with_semantics']:.2f}x)", ""]
    sw = res.get("sweeps", {})
    if "resolution" in sw:
        r = sw["resolution"]
        rows = [[f"{p['width']}x{p['height']}", fmt_ms(p.get("keyframe_encode")),
                 fmt_ms(p["target_depth"]), fmt_ms(p["render"]), _mem(p["render"])]
                for p in r["points"]]
        out += [f"Resolution sweep ({r['mode']}, {r['views']} views); exponents: render "
                f"{_f(r['exponent_render_vs_pixels'])}, encode "
                f"{_f(r['exponent_encode_vs_pixels'])}, target depth "
                f"{_f(r['exponent_target_depth_vs_pixels'])}",
                _table(["size", "encode ms/keyframe", "target depth ms", "render ms/view",
                        "peak mem"], rows), ""]
    if "samples" in sw:
        for m, d in sw["samples"]["modes"].items():
            rows = [[str(p["samples"]), fmt_ms(p)] for p in d["points"]]
            out += [f"Samples sweep ({m}); exponent {_f(d['exponent_render_vs_samples'])} "
                    f"(upper half {_f(d['exponent_render_vs_samples_upper_half'])})",
                    _table(["samples/ray", "ms/view"], rows), ""]
    if "views" in sw:
        d = sw["views"]
        rows = [[str(p["views"]), fmt_ms(p)] for p in d["points"]]
        out += [f"Views sweep; exponent {_f(d['exponent_render_vs_views'])}",
                _table(["source views", "ms/view"], rows), ""]
    for key in ("accuracy", "precision", "node"):
        v = res.get(key)
        if isinstance(v, dict):
            if v.get("skipped"):
                out += [f"{key}: skipped ({v['skipped']})"]
            else:
                out += [f"{key}: " + ", ".join(f"{k}={_f(x)}" for k, x in v.items()
                                               if not isinstance(x, (list, dict)))]
    out += ["", "Targets", _table(["target", "goal", "measured", "met", "note"],
                                  [[t["target"], t["goal"], _f(t["measured"]),
                                    {True: "yes", False: "NO", None: "n/a"}[t["met"]],
                                    t["note"]] for t in res.get("targets", [])])]
    return "\n".join(out)


def _f(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.3g}" if abs(x) < 100 else f"{x:.1f}"
    return str(x)
