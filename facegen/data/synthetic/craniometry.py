"""Craniometric variation: skull measurements drawn from published figures and built into skull and face.

A head's measurements (`craniometry_table.CRANIOMETRY`: cranial length and breadth, bizygomatic breadth, facial
height, nasal height and breadth, orbit height and breadth, bigonial breadth) are drawn jointly (sex means,
SDs and correlations), then reached by smooth displacement fields, one per measurement and linear in its
coefficient (a uniform stretch, a stretch of the vault, of the cheekbone level, of the midface, and local
stretches around the nasal aperture, the orbits and the jaw angles). The coefficients that give the drawn
measurements are solved by Newton steps on the skull's own measurements. The same fields move the bone and the
skin over it (read at the bone beneath each skin vertex), so tissue depths stay as they were.

Measurements are read as Howells defines them, on landmarks: GOL from glabella to the farthest midline point
of the occiput (opisthocranion); XCB the widest vault (euryon); ZYB the widest zygomatic arches; NPH
nasion-prosthion; NLH nasion to the aperture's lower margin (the bone below subnasale); NLB the aperture's widest
chord; OBH and OBB across the left orbit's margins; BGB gonion-gonion. Points the template has no landmark for
(prosthion, orbit and aperture margins) are found once on the template skull by frontal rays and then follow the
skull's vertices.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import trimesh

from facegen.data.raycast import first_hits
from facegen.data.subject import Sex
from facegen.data.synthetic.craniometry_table import CORRELATION, CRANIOMETRY
from facegen.data.synthetic.fields import gaussian_bump, smoothstep
from facegen.data.synthetic.template import HeadTemplate

CODES = tuple(row.code for row in CRANIOMETRY)
MAX_Z = 2.5
"""Drawn measurements are kept within this many SDs of the mean (a head beyond is no adult skull we can build)."""
NEWTON_STEPS = 3
OPENING_DEPTH_MM = 60.0
"""Seen from the front, bone this far behind an opening's centre is the inside of the skull seen through it."""
_FRONT = np.array([0.0, 0.0, -1.0])


@dataclass(frozen=True)
class TrackedPoints:
    """Points on the template skull as (triangle, barycentric), so that they follow any deformed skull."""

    names: tuple[str, ...]
    triangles: np.ndarray
    barycentric: np.ndarray

    def at(self, skull_vertices: np.ndarray, skull_triangles: np.ndarray) -> dict[str, np.ndarray]:
        """The points on a skull of the template's topology."""
        corners = skull_vertices[skull_triangles[self.triangles]]
        return dict(zip(self.names, np.einsum("lk,lkj->lj", self.barycentric, corners), strict=True))


def _frontal_hits(skull: trimesh.Trimesh, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z of the first skull surface seen from the front at each (x, y), NaN where none, and its triangle."""
    start = skull.bounds[1, 2] + 10.0
    distance, tri = first_hits(skull, np.column_stack([xy, np.full(len(xy), start)]), _FRONT)
    return start - distance, tri


def _margin(skull: trimesh.Trimesh, start: np.ndarray, step: np.ndarray, front_z: float) -> tuple[np.ndarray, int]:
    """First point from `start` along `step` (mm, in x-y) where bone is seen in front of `front_z`: an opening's
    margin seen from the front."""
    xy = start[None, :2] + np.arange(1, 160)[:, None] * 0.25 * step[None, :2]
    z, tri = _frontal_hits(skull, xy)
    hit = np.nonzero(np.isfinite(z) & (z > front_z))[0]
    if len(hit) == 0:
        raise RuntimeError(f"no margin found from {start} along {step}")
    i = hit[0]
    return np.array([xy[i, 0], xy[i, 1], z[i]]), int(tri[i])


def _prosthion(skull: trimesh.Trimesh, is_teeth: np.ndarray, triangles: np.ndarray, lm: dict, stomion_y: float):
    """Lowest bone (not tooth) point of the upper jaw on the midline, above the teeth: the alveolar crest."""
    ys = np.arange(stomion_y, lm["subnasale"][1], 0.25)
    z, tri = _frontal_hits(skull, np.column_stack([np.full(len(ys), 1.2), ys]))
    bone = np.isfinite(z) & (z > lm["subnasale"][2] - 15.0)
    bone[bone] &= ~is_teeth[triangles[tri[bone]]].all(axis=1)
    i = np.nonzero(bone)[0][0]
    return np.array([1.2, ys[i], z[i]]), int(tri[i])


def craniometric_points(template: HeadTemplate, lm: dict[str, np.ndarray]) -> TrackedPoints:
    """Prosthion, the left and right orbit margins and the nasal aperture's widest margins on the template skull."""
    t = template
    skull = trimesh.Trimesh(t.skull_vertices, t.skull_triangles, process=False)
    found = {"prosthion": _prosthion(skull, t.skull_is_teeth, t.skull_triangles, lm,
                                     t.face_vertices[t.face_landmarks["stomion"]][1])}  # fmt: skip
    for side, sign, eye in (("l", 1.0, t.eye_centres[0]), ("r", -1.0, t.eye_centres[1])):
        centre = eye - np.array([sign * 2.3, 1.4, 0.0])  # orbit centre (Stephan & Davidson 2008)
        front = centre[2] - OPENING_DEPTH_MM
        found[f"ectoconchion_{side}"] = _margin(skull, centre, np.array([sign, 0.0]), front)
        found[f"dacryon_{side}"] = _margin(skull, centre, np.array([-sign, 0.0]), front)
        found[f"orbit_top_{side}"] = _margin(skull, centre, np.array([0.0, 1.0]), front)
        found[f"orbit_bottom_{side}"] = _margin(skull, centre, np.array([0.0, -1.0]), front)
    front = lm["rhinion"][2] - OPENING_DEPTH_MM
    widest = None
    for y in np.linspace(lm["subnasale"][1] + 2.0, lm["rhinion"][1] - 6.0, 25):
        pair = [_margin(skull, np.array([0.0, y, 0.0]), np.array([s, 0.0]), front) for s in (1.0, -1.0)]
        if widest is None or pair[0][0][0] - pair[1][0][0] > widest[0][0][0] - widest[1][0][0]:
            widest = pair
    found["aperture_l"], found["aperture_r"] = widest
    names = tuple(found)
    tris = np.array([found[n][1] for n in names])
    bary = trimesh.triangles.points_to_barycentric(skull.triangles[tris], np.stack([found[n][0] for n in names]))
    return TrackedPoints(names, tris, bary)


@dataclass(frozen=True)
class MeasureSites:
    """Where the measurements are read: tracked points and the vertex subsets that extremal measures search."""

    points: TrackedPoints
    midline: np.ndarray
    vault: np.ndarray
    arches: np.ndarray

    @staticmethod
    def of(template: HeadTemplate, lm: dict[str, np.ndarray]) -> MeasureSites:
        """Sites on the template skull (canonical frame)."""
        v, bone = template.skull_vertices, ~template.skull_is_teeth
        midline = np.nonzero(bone & (np.abs(v[:, 0]) < 4.0) & (v[:, 2] < 0.0) & (v[:, 1] > 0.0))[0]
        vault = np.nonzero(bone & (v[:, 1] > 20.0))[0]
        zy = lm["zygion_l"]
        arches = np.nonzero(bone & (np.abs(v[:, 1] - zy[1]) < 12.0) & (np.abs(v[:, 2] - zy[2]) < 25.0)
                            & (np.abs(v[:, 0]) > 40.0))[0]  # fmt: skip
        return MeasureSites(craniometric_points(template, lm), midline, vault, arches)

    def landmarks(self, template: HeadTemplate, skull_vertices: np.ndarray) -> dict[str, np.ndarray]:
        """Standard skull landmarks, the craniometric points, and the extremal points of a skull of the template's
        topology: opisthocranion (midline, farthest from glabella), euryon and the zygomatic arches' widest points."""
        out = template.skull_landmark_points(skull_vertices)
        out.update(self.points.at(skull_vertices, template.skull_triangles))
        v = skull_vertices
        back = v[self.midline]
        out["opisthocranion"] = back[np.argmax(np.linalg.norm(back - out["glabella"], axis=1))]
        for name, subset in (("euryon", v[self.vault]), ("zygion_arch", v[self.arches])):
            out[f"{name}_l"], out[f"{name}_r"] = subset[np.argmax(subset[:, 0])], subset[np.argmin(subset[:, 0])]
        return out

    def measure(self, template: HeadTemplate, skull_vertices: np.ndarray) -> np.ndarray:
        """The `CODES` measurements (mm) of one skull of the template's topology."""
        measured = measure_skull(self.landmarks(template, skull_vertices))
        return np.array([measured[c] for c in CODES])


def measure_skull(landmarks: dict[str, np.ndarray]) -> dict[str, float]:
    """The `CODES` measurements (mm) from a skull's craniometric landmarks (a wide head's `skull_landmarks`:
    points on the bone as generated, before any scan); breadths across x, the transverse axis."""
    p = landmarks
    values = {
        "GOL": np.linalg.norm(p["glabella"] - p["opisthocranion"]),
        "XCB": p["euryon_l"][0] - p["euryon_r"][0],
        "ZYB": p["zygion_arch_l"][0] - p["zygion_arch_r"][0],
        "NPH": np.linalg.norm(p["nasion"] - p["prosthion"]),
        "NLH": np.linalg.norm(p["nasion"] - p["subnasale"]),
        "NLB": np.linalg.norm(p["aperture_l"] - p["aperture_r"]),
        "OBH": np.linalg.norm(p["orbit_top_l"] - p["orbit_bottom_l"]),
        "OBB": np.linalg.norm(p["ectoconchion_l"] - p["dacryon_l"]),
        "BGB": np.linalg.norm(p["gonion_l"] - p["gonion_r"]),
    }
    return {c: float(values[c]) for c in CODES}


def draw_targets(sex: Sex | None, rng: np.random.Generator) -> np.ndarray:
    """Measurements (mm, `CODES` order) of one skull: a joint normal draw, kept within `MAX_Z` SDs."""
    sexes = [sex] if sex is not None else [Sex.MALE, Sex.FEMALE]
    chosen = sexes[int(rng.integers(len(sexes)))]
    mean, sd = np.array([row.mean_sd(chosen) for row in CRANIOMETRY]).T
    z = np.linalg.cholesky(CORRELATION) @ rng.standard_normal(len(CODES))
    return mean + sd * np.clip(z, -MAX_Z, MAX_Z)


def _soft_ramp(u: np.ndarray, width: float) -> np.ndarray:
    """clip(u, -1, 0) with its two corners rounded over `width` (softplus): 0 above, -1 below, u between."""
    return width * (np.logaddexp(0.0, (u + 1.0) / width) - np.logaddexp(0.0, u / width)) - 1.0


class CraniometricFields:
    """One smooth displacement field per measurement (`CODES` order), placed on one skull's landmarks (mm)."""

    def __init__(self, lm: dict[str, np.ndarray]) -> None:
        self.lm = lm
        orbit = {s: np.mean([lm[f"{k}_{s}"] for k in ("ectoconchion", "dacryon", "orbit_top", "orbit_bottom")], 0)
                 for s in ("l", "r")}  # fmt: skip
        self.orbits = orbit
        self.aperture = 0.5 * (lm["aperture_l"] + lm["aperture_r"])
        self.aperture[1] = 0.5 * (lm["rhinion"][1] + lm["subnasale"][1])
        self.gonial = 0.5 * (lm["gonion_l"] + lm["gonion_r"])

    def basis(self, p: np.ndarray) -> np.ndarray:
        """(K, N, 3) displacements of points p (N, 3) per unit coefficient (about 1 mm of its measurement)."""
        lm, x, y, z = self.lm, p[:, 0], p[:, 1], p[:, 2]
        out = np.zeros((len(CODES), len(p), 3))
        k = {c: i for i, c in enumerate(CODES)}
        out[k["GOL"], :, 2] = z / 180.0
        out[k["XCB"], :, 0] = x / 135.0 * smoothstep(y, 5.0, 30.0)
        out[k["ZYB"], :, 0] = x / 130.0 * np.exp(-0.5 * ((y - lm["zygion_l"][1]) / 16.0) ** 2)
        n_y, ns_y, pr_y = lm["nasion"][1], lm["subnasale"][1], lm["prosthion"][1]
        face = smoothstep(z, 15.0, 45.0)  # the face moves, the ear and the vault behind it stay
        out[k["NLH"], :, 1] = _soft_ramp((y - n_y) / (n_y - ns_y), 0.1) * face
        out[k["NPH"], :, 1] = _soft_ramp((y - ns_y) / (ns_y - pr_y), 0.2) * face
        a = self.aperture
        out[k["NLB"], :, 0] = (x - a[0]) / 25.0 * gaussian_bump(p, a, np.array([14.0, 20.0, 30.0]))
        for c in self.orbits.values():
            bump = gaussian_bump(p, c, np.array([20.0, 18.0, 30.0]))
            out[k["OBB"], :, 0] += (x - c[0]) / 38.0 * bump
            out[k["OBH"], :, 1] += (y - c[1]) / 33.0 * bump
        g = self.gonial
        jaw = np.exp(-0.5 * (((y - g[1]) / 22.0) ** 2 + ((z - g[2]) / 25.0) ** 2))
        out[k["BGB"], :, 0] = x / 95.0 * jaw
        return out


def fit_coefficients(
    measure: Callable[[np.ndarray], np.ndarray], basis: np.ndarray, points: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients whose fields (`basis` (K, N, 3) at `points`) bring `measure(points + displacement)` to
    `targets`, by Newton steps with a numerical Jacobian; and the measurements reached."""
    current = measure(points)
    jacobian = np.stack([measure(points + b) - current for b in basis], axis=1)
    coefficients = np.zeros(len(basis))
    reached = current
    for _ in range(NEWTON_STEPS):
        coefficients = coefficients + np.linalg.solve(jacobian, targets - reached)
        reached = measure(points + np.tensordot(coefficients, basis, axes=1))
    return coefficients, reached
