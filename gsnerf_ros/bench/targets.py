"""The issue's speed targets, checked against a benchmark result (measured, never asserted)."""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate_targets"]


def _t(name: str, target: str, value: Any, met: bool | None, note: str = "") -> dict[str, Any]:
    return {"target": name, "goal": target, "measured": value, "met": met, "note": note}


def _ms(d: Any) -> float | None:
    return d.get("median_ms") if isinstance(d, dict) else None


def _sweep_point(res: dict[str, Any], h: int, w: int) -> dict[str, Any] | None:
    for p in res.get("sweeps", {}).get("resolution", {}).get("points", []):
        if p["height"] == h and p["width"] == w:
            return p
    return None


def evaluate_targets(res: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per target: goal, measured value, ``met`` (None: not measurable in this run)."""
    s = res["settings"]
    dev = res["environment"]["device"]
    on_gpu = dev.startswith("cuda")
    std = (s["height"], s["width"]) == (240, 320)
    out = []
    modes = res.get("modes", {})
    dg, rel = modes.get("depth_guided"), modes.get("released")
    if dg and rel:
        sp = rel["median_ms"] / dg["median_ms"]
        ok = sp >= 10 if (std and s["views"] == 8 and not on_gpu) else None
        out.append(_t("cpu_speedup_vs_released", ">= 10x per view (CPU, 320x240, 8 views)",
                      round(sp, 2), ok, "" if ok is not None else
                      f"setting is {s['width']}x{s['height']}, {s['views']} views on {dev}"))
    acc = res.get("accuracy", {})
    if acc.get("miou_diff_points") is not None:
        d = acc["miou_diff_points"]
        out.append(_t("miou_vs_released", "within 2 points", round(d, 2), abs(d) <= 2.0))
    else:
        out.append(_t("miou_vs_released", "within 2 points", None, None,
                      acc.get("skipped", "not measured")))
    if acc.get("psnr_diff_db") is not None:
        d = acc["psnr_diff_db"]
        out.append(_t("psnr_vs_released", "within 1 dB", round(d, 2), abs(d) <= 1.0))
    else:
        out.append(_t("psnr_vs_released", "within 1 dB", None, None,
                      acc.get("skipped", "not measured")))
    gpu_note = "" if on_gpu else f"GPU target; this run is on {dev}"
    r320 = _ms(dg) if (dg and std) else _ms((_sweep_point(res, 240, 320) or {}).get("render"))
    out.append(_t("gpu_render_320x240_ms", "<= 15 ms (H100, cached encodings)",
                  r320, (r320 <= 15) if (on_gpu and r320 is not None) else None, gpu_note))
    enc = res.get("stages", {}).get("keyframe_encode") if std else (
        (_sweep_point(res, 240, 320) or {}).get("keyframe_encode"))
    e320 = _ms(enc)
    out.append(_t("gpu_encode_320x240_ms", "<= 20 ms per keyframe", e320,
                  (e320 <= 20) if (on_gpu and e320 is not None) else None, gpu_note))
    p640 = _sweep_point(res, 480, 640)
    r640 = _ms(p640["render"]) if p640 else None
    mem = p640["render"].get("peak_mem_mb") if p640 else None
    out.append(_t("gpu_render_640x480_ms", "<= 50 ms", r640,
                  (r640 <= 50) if (on_gpu and r640 is not None) else None,
                  gpu_note or ("" if p640 else "needs --sweep resolution")))
    out.append(_t("gpu_peak_mem_640x480_gb", "<= 3 GB",
                  round(mem / 1024, 3) if mem is not None else None,
                  (mem / 1024 <= 3) if (on_gpu and mem is not None) else None,
                  gpu_note or ("" if p640 else "needs --sweep resolution")))
    node = res.get("node", {})
    if node.get("round_trip_ms") is not None and node.get("server_render_ms") is not None:
        over = node["round_trip_ms"]["median_ms"] - node["server_render_ms"]["median_ms"]
        out.append(_t("node_round_trip_overhead_ms", "<= render + 10 ms", round(over, 2),
                      over <= 10))
    else:
        out.append(_t("node_round_trip_overhead_ms", "<= render + 10 ms", None, None,
                      node.get("skipped", "not measured")))
    sw = res.get("sweeps", {})
    if "resolution" in sw:
        e = sw["resolution"]["exponent_render_vs_pixels"]
        out.append(_t("exponent_pixels", "~1 (linear)", e, None, "reported, not a pass/fail"))
    if "samples" in sw:
        for m, d in sw["samples"]["modes"].items():
            out.append(_t(f"exponent_samples_{m}", "~1 (linear)",
                          d["exponent_render_vs_samples"], None, "reported, not a pass/fail"))
    if "views" in sw:
        out.append(_t("exponent_views", "~1 (linear)", sw["views"]["exponent_render_vs_views"],
                      None, "reported, not a pass/fail"))
    return out
