"""The complete head's files for a case folder: coloured meshes, pictures and a record, from one call.

`head_files(face, face_sd_mm=..., appearance=...)` fits the head to a variant's reconstructed face, colours it
per shown class combination and returns {relative path: bytes} to add under the variant's folder:
`head/head_<variant>.glb` and `.ply` (vertex colours; the PLY also carries the spread `sd_mm` and the `part`
per vertex), `head/head_<variant>.png` (front and three-quarter), `head/head_variants.png` (all variants),
`head/head.json` (fit residual, variants with probabilities, what is and is not estimated) and the ICT model's
licence. Meshes are in the canonical frame: PLY in mm, GLB in metres as glTF requires. The same face and
appearance give the same bytes. `head_result` returns the same files with the fit and its coloured variants
(`HeadResult`), so that the case viewer can show the head (`HeadResult.viewer_head`) without fitting again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import trimesh
from trimesh.exchange.gltf import export_glb
from trimesh.exchange.ply import export_ply

from facegen.data.pose import CANONICAL_FRAME_NAME
from facegen.use.face_mesh import GLB_SCALE, GLB_UNITS, mesh_header, ply_with_comment
from facegen.use.head.appearance import Appearance
from facegen.use.head.colour import HAIR, IRIS, SKIN, HeadVariant, colour_head
from facegen.use.head.fit import HeadFit, fit_head
from facegen.use.head.model import EYE_PARTS, Part
from facegen.use.head.render import head_renders
from facegen.use.viewer import ViewerHead

LICENCE = Path(__file__).resolve().parents[2] / "assets" / "ICT-LICENSE.txt"
HEAD_FOLDER = "head"
RECORD_NAME = "head.json"
STATEMENT = (
    "The complete head is the open ICT face model fitted to the reconstructed face: over the face it follows the "
    "reconstruction; the back of the head, the ears and the neck are the model's shape for that face, not a "
    "reconstruction, and hair is not shown. Colours are fixed palette colours of the predicted classes, one head per "
    "class with probability >= 0.2, never a blend; they show a category, not the person's exact shade."
)
VIEWER_NOTE = (
    "The ICT face model fitted to the reconstructed face: beyond the face (back of the head, ears, neck) it is the "
    "model's shape, not a reconstruction; colours are palette tones of the predicted classes, not the person's shade."
)
GLB_PARTS = {"skin": (Part.SKIN,), "eyes": EYE_PARTS, "eyelashes": (Part.EYELASHES,)}
"""The GLB's three meshes (eyes: sclera-and-cornea and iris balls of both eyes)."""


def _submesh(fit: HeadFit, colours: np.ndarray, parts: tuple[Part, ...]) -> trimesh.Trimesh:
    """The head's vertices of some parts as their own mesh, with colours and shading normals."""
    keep = fit.model.mask(*parts)
    index = np.full(len(keep), -1)
    index[keep] = np.arange(int(keep.sum()))
    faces = index[fit.mesh.faces[np.all(keep[fit.mesh.faces], axis=1)]]
    rgba = np.concatenate([colours[keep], np.full((int(keep.sum()), 1), 255, np.uint8)], axis=1)
    return trimesh.Trimesh(np.asarray(fit.mesh.vertices)[keep], faces, vertex_normals=fit.mesh.vertex_normals[keep],
                           vertex_colors=rgba, process=False)  # fmt: skip


def glb_bytes(fit: HeadFit, variant: HeadVariant) -> bytes:
    """Binary glTF of one coloured head: skin, eyes and eyelashes as named meshes with vertex colours, metres."""
    scene = trimesh.Scene()
    for name, parts in GLB_PARTS.items():
        part = _submesh(fit, variant.colours, parts)
        part.apply_scale(GLB_SCALE)
        scene.add_geometry(part, geom_name=name, node_name=name)
    header = mesh_header(CANONICAL_FRAME_NAME, None, GLB_UNITS)

    def named(tree: dict) -> None:
        tree["asset"]["extras"] = {"facegen": header, "variant": variant.label}

    return export_glb(scene, include_normals=True, tree_postprocessor=named)


def ply_bytes(fit: HeadFit, variant: HeadVariant) -> bytes:
    """Binary PLY of one coloured head (mm) with per-vertex RGBA, `sd_mm` (NaN: not estimated) and `part`."""
    rgba = np.concatenate([variant.colours, np.full((len(variant.colours), 1), 255, np.uint8)], axis=1)
    mesh = trimesh.Trimesh(np.asarray(fit.mesh.vertices), np.asarray(fit.mesh.faces), vertex_colors=rgba,
                           process=False)  # fmt: skip
    sd = fit.sd_mm if fit.sd_mm is not None else np.full(len(rgba), np.nan)
    mesh.vertex_attributes["sd_mm"] = sd.astype(np.float32)
    mesh.vertex_attributes["part"] = fit.model.part.astype(np.uint8)
    data = export_ply(mesh, encoding="binary", vertex_normal=False, include_attributes=True)
    parts = ", ".join(f"{p.value} {p.name.lower()}" for p in Part)
    return ply_with_comment(data, f"{mesh_header(CANONICAL_FRAME_NAME, None)}; {variant.label}; part: {parts}")


def head_record(fit: HeadFit, variants: list[HeadVariant], appearance: Appearance | None) -> dict[str, Any]:
    """The head's JSON record: the fit and its residual, the appearance, each variant with its probabilities
    and files, the palette, and what is not shown."""
    combos = (appearance or Appearance()).combinations()
    shown = {v.name for v in variants}
    return {
        "statement": STATEMENT,
        "fit": fit.record(),
        "appearance": None if appearance is None else appearance.record(),
        "variants": [
            {**v.record(), "files": [f"{HEAD_FOLDER}/head_{v.name}.{ext}" for ext in ("glb", "ply", "png")]}
            for v in variants
        ],
        "not_rendered": max(0, len(combos) - len(shown)),
        "palette_rgb": {
            "iris": {k or "unknown": list(c) for k, c in IRIS.items()},
            "eyebrows": {"-".join(x or "unknown" for x in k): list(c) for k, c in HAIR.items()},
            "skin": {k or "unknown": list(c) for k, c in SKIN.items()},
        },
        "licence": "ICT Face Model (USC Institute for Creative Technologies), MIT: see ICT-LICENSE.txt",
    }


@dataclass(frozen=True)
class HeadResult:
    """The complete head of one reconstructed face: the `fit`, its coloured `variants` (likeliest first) and
    their `files` {path under the variant's folder: bytes}."""

    fit: HeadFit
    variants: list[HeadVariant]
    files: dict[str, bytes]

    def viewer_head(self) -> ViewerHead:
        """The head for the case viewer: its geometry once (mm, canonical frame), one colouring per variant; plain
        (no colouring) in the palette's neutral skin tone."""
        r, g, b = SKIN[None]
        colourings = {v.label: v.colours for v in self.variants}
        return ViewerHead(self.fit.mesh, colourings, colour=(r / 255, g / 255, b / 255), note=VIEWER_NOTE)


def head_result(
    face_mesh_canonical: trimesh.Trimesh, *, face_sd_mm: np.ndarray | None = None,
    appearance: Appearance | None = None, max_variants: int = 16, fit: HeadFit | None = None,
) -> HeadResult:  # fmt: skip
    """The complete head for one reconstructed face: fitted, coloured and written (see `head_files`)."""
    fit = fit or fit_head(face_mesh_canonical, face_sd_mm=face_sd_mm)
    variants = colour_head(fit, appearance, max_variants=max_variants)
    files: dict[str, bytes] = {}
    for v in variants:
        files[f"{HEAD_FOLDER}/head_{v.name}.glb"] = glb_bytes(fit, v)
        files[f"{HEAD_FOLDER}/head_{v.name}.ply"] = ply_bytes(fit, v)
    colourings = [(v.name, v.colours / 255.0, v.label) for v in variants]
    pictures = head_renders(fit.mesh, colourings, title="complete head fitted to the reconstructed face")
    files.update({f"{HEAD_FOLDER}/head_{name}.png": png for name, png in pictures.items()})
    record = head_record(fit, variants, appearance)
    files[f"{HEAD_FOLDER}/{RECORD_NAME}"] = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    files[f"{HEAD_FOLDER}/ICT-LICENSE.txt"] = LICENCE.read_bytes()
    return HeadResult(fit, variants, files)


def head_files(
    face_mesh_canonical: trimesh.Trimesh, *, face_sd_mm: np.ndarray | None = None,
    appearance: Appearance | None = None, max_variants: int = 16, fit: HeadFit | None = None,
) -> dict[str, bytes]:  # fmt: skip
    """Files of the complete head for one reconstructed face, {path under the variant's folder: bytes}.

    `face_mesh_canonical`: the variant's face in the canonical frame (as `depth_map_mesh` makes it);
    `face_sd_mm` (N,): its spread per face vertex, or None; `appearance`: class probabilities, or None (neutral
    colours). `fit`: an earlier `fit_head` of this face, to skip fitting again.
    """
    return head_result(face_mesh_canonical, face_sd_mm=face_sd_mm, appearance=appearance,
                         max_variants=max_variants, fit=fit).files  # fmt: skip
