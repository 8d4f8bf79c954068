"""The evaluation report's pictures, as PNG bytes: CMC curves, errors by region and group, heat maps, cases.

PNGs are written without a timestamp or software tag, so the same figures give the same bytes.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from facegen.data.representations.depth_map import DepthMap, DepthView  # noqa: E402
from facegen.viz.shading import shade_depth_map  # noqa: E402


def png_bytes(fig: plt.Figure, dpi: int = 90) -> bytes:
    """The figure as PNG bytes with no metadata (byte-identical for identical figures); closes it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None}, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def cmc_figure(cmc: dict[str, np.ndarray], gallery_size: int) -> bytes:
    """Cumulative match characteristic of every model, the floor and chance, over the first ranks."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    top = min(gallery_size, 30)
    ranks = np.arange(1, top + 1)
    for name, curve in cmc.items():
        ax.plot(ranks, 100 * np.asarray(curve)[:top], marker=".", label=name)
    ax.plot(ranks, 100 * ranks / gallery_size, "k--", label="chance")
    ax.set_xlabel("rank")
    ax.set_ylabel("identified within rank (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"CMC: each reconstruction against a gallery of {gallery_size} true faces")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return png_bytes(fig)


def region_figure(models: list[dict[str, Any]]) -> bytes:
    """Mean absolute error per facial region, one bar per model."""
    regions = list(models[0]["regions"])
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    width = 0.8 / len(models)
    for i, m in enumerate(models):
        values = [m["regions"][r]["mae_mm"]["mean"] for r in regions]
        ax.bar(np.arange(len(regions)) + i * width, values, width, label=m["name"])
    ax.set_xticks(np.arange(len(regions)) + 0.4 - width / 2, regions)
    ax.set_ylabel("mean absolute error (mm)")
    ax.set_title("depth error by facial region")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig)


def bias_figure(models: list[dict[str, Any]], by: str, metric: str = "mae_mm") -> bytes:
    """Per-group means of one metric with their bootstrap 95% intervals, one series per model."""
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    groups = [g for g in models[0]["bias"][metric][by]["groups"]]
    offsets = np.linspace(-0.25, 0.25, len(models)) if len(models) > 1 else np.zeros(1)
    for offset, m in zip(offsets, models, strict=True):
        rows = m["bias"][metric][by]["groups"]
        x = np.arange(len(groups)) + offset
        mean = np.array([rows[g]["mean"] for g in groups], float)
        low = np.array([rows[g]["ci_low"] for g in groups], float)
        high = np.array([rows[g]["ci_high"] for g in groups], float)
        ax.errorbar(x, mean, yerr=[mean - low, high - mean], fmt="o", capsize=3, label=m["name"])
    ax.set_xticks(np.arange(len(groups)), [f"{g}\n(n={models[0]['bias'][metric][by]['groups'][g]['n']})"
                                           for g in groups])  # fmt: skip
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{metric.replace('_', ' ')} by {by}, with bootstrap 95% intervals")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return png_bytes(fig)


def heat_map_figure(heat_maps: dict[str, np.ndarray], view: DepthView, label: str = "mean |error| (mm)") -> bytes:
    """Mean absolute error (or another per-pixel mean in mm) over the test set, one panel per map, one scale."""
    names = list(heat_maps)
    finite = np.concatenate([h[np.isfinite(h)] for h in heat_maps.values()])
    vmax = float(np.percentile(finite, 99)) if finite.size else 1.0
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names) + 0.8, 3.4), squeeze=False)
    x, y = view.pixel_centres()
    extent = (x[0], x[-1], y[-1], y[0])
    for ax, name in zip(axes[0], names, strict=True):
        image = ax.imshow(heat_maps[name], cmap="magma", vmin=0, vmax=vmax, extent=extent)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(image, ax=axes[0].tolist(), label=label, shrink=0.8)
    return png_bytes(fig)


def calibration_figure(models: list[dict[str, Any]]) -> bytes:
    """Reliability: observed mean |error| per quintile of predicted SD, against what an honest SD implies."""
    fig, ax = plt.subplots(figsize=(5.6, 4.0))
    top = 0.0
    for m in models:
        c = m["calibration"]
        sd = np.array([b["sd_mm"] for b in c["reliability"]])
        k = c["samples"]
        ax.plot(sd, [b["mae_mm"] for b in c["reliability"]], "o-",
                label=f"{m['name']} (K={k})" if k else f"{m['name']} (stated SD)")  # fmt: skip
        top = max(top, float(sd.max()), max(b["mae_mm"] for b in c["reliability"]))
    line = np.linspace(0, top * 1.05, 2)
    ax.plot(line, line * np.sqrt(2 / np.pi * (1 + 1 / k if k else 1)), "k--", label="honest SD (Gaussian)")
    ax.set_xlabel("predicted SD (mm), per quintile of pixels")
    ax.set_ylabel("observed mean |error| (mm)")
    ax.set_title("does the uncertainty track the error?")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return png_bytes(fig)


def cases_figure(skull: np.ndarray, skull_mask: np.ndarray, truth: np.ndarray, truth_mask: np.ndarray,
                 faces: dict[str, tuple[np.ndarray, np.ndarray]], view: DepthView, title: str) -> bytes:  # fmt: skip
    """One subject: shaded skull | true face | each model's face, as a forensic reader compares them."""
    panels = [("skull", skull, skull_mask), ("truth", truth, truth_mask)]
    panels += [(name, face, mask) for name, (face, mask) in faces.items()]
    fig, axes = plt.subplots(1, len(panels), figsize=(2.4 * len(panels), 2.9), squeeze=False)
    for ax, (name, depth, mask) in zip(axes[0], panels, strict=True):
        ax.imshow(shade_depth_map(DepthMap(depth, mask, view)), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=10)
    return png_bytes(fig)
