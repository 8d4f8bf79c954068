"""Shared fixtures: faces made from the ICT model itself with known identity weights, seen as facegen sees a
reconstructed face (a frontal depth map at the default model's 2 mm pixels, meshed by `depth_map_mesh`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import trimesh

from facegen.data.representations.build import square_spec
from facegen.data.representations.depth_map import render_depth_map
from facegen.data.synthetic.ict import load_face_model
from facegen.use.face_mesh import depth_map_mesh
from facegen.use.head.fit import HeadFit, fit_head
from facegen.use.head.model import HeadModel, load_head_model

VIEW = square_spec(128, (8, 8, 8)).view
"""The default model's view: 128 x 128 pixels of 2 mm."""


@dataclass(frozen=True)
class KnownFace:
    """A reconstructed-looking face of known identity: the depth-map mesh, the closed skin it was seen from,
    the head model's vertices for the same identity and pose, and the weights."""

    face: trimesh.Trimesh
    skin: trimesh.Trimesh
    head_vertices: np.ndarray
    identity: np.ndarray


def rotation_about(axis: int, degrees: float) -> np.ndarray:
    """A rotation matrix about the x (0), y (1) or z (2) axis."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    i, j = [k for k in range(3) if k != axis]
    r = np.eye(3)
    r[i, i], r[i, j], r[j, i], r[j, j] = c, -s, s, c
    return r


def known_face(model: HeadModel, seed: int, *, rotation: np.ndarray | None = None,
               shift_mm: np.ndarray | None = None) -> KnownFace:  # fmt: skip
    """A face from the ICT model with weights w ~ N(0, 1) drawn from `seed`, optionally moved rigidly (about
    the canonical origin) before it is seen, as a skull's pose may leave it."""
    weights = np.random.default_rng(seed).standard_normal(model.n_modes)
    closed = load_face_model(model.n_modes)
    skin = model.to_canonical.apply(closed.mean + np.tensordot(weights, closed.modes, axes=1))
    head = model.shape(weights)
    rotation = np.eye(3) if rotation is None else rotation
    shift = np.zeros(3) if shift_mm is None else shift_mm
    skin, head = skin @ rotation.T + shift, head @ rotation.T + shift
    depth = render_depth_map(trimesh.Trimesh(skin, closed.triangles, process=False), VIEW)
    face = depth_map_mesh(depth.depth_mm, depth.mask, VIEW, max_edge_jump_mm=8 * VIEW.pixel_mm)
    return KnownFace(face, trimesh.Trimesh(skin, closed.triangles, process=False), head, weights)


@pytest.fixture(scope="session")
def head_model() -> HeadModel:
    return load_head_model()


@pytest.fixture(scope="session")
def face_a(head_model) -> KnownFace:
    return known_face(head_model, 11)


@pytest.fixture(scope="session")
def fit_a(face_a) -> HeadFit:
    """The head fitted to face A, with a made-up spread on the face (larger toward the sides)."""
    sd = 0.5 + np.abs(face_a.face.vertices[:, 0]) / 50.0
    return fit_head(face_a.face, face_sd_mm=sd)
