"""The head fit: a face of known identity is recovered within 1 mm, eyes stay in their sockets, the spread
carries over only where the face was reconstructed, the fit is deterministic and bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from facegen.use.head.fit import fit_head
from facegen.use.head.model import EYE_PARTS

from .conftest import known_face, rotation_about


def _region_errors(fit, known) -> tuple[np.ndarray, np.ndarray]:
    """Over the fitted face region: each fitted vertex's distance to the true skin surface, and to its own
    vertex of the true head (same topology: correspondence, not just closeness)."""
    region = fit.fit_region
    fitted = np.asarray(fit.mesh.vertices)[region]
    _, to_surface, _ = trimesh.proximity.closest_point(known.skin, fitted)
    return np.asarray(to_surface), np.linalg.norm(fitted - known.head_vertices[region], axis=1)


def test_a_face_of_known_identity_is_recovered_within_1mm(face_a, fit_a):
    to_surface, to_vertex = _region_errors(fit_a, face_a)
    assert fit_a.fit_region.sum() > 3000
    assert to_surface.mean() < 1.0 and np.percentile(to_surface, 95) < 1.0
    assert to_vertex.mean() < 1.0
    assert fit_a.residual_mean_mm < 1.0 and fit_a.residual_p95_mm < 1.0
    record = fit_a.record()
    assert record["residual_mean_mm"] == pytest.approx(fit_a.residual_mean_mm, abs=1e-3)
    assert record["covered_fraction"] > 0.95


def test_a_moved_face_is_found_and_recovered(head_model):
    moved = rotation_about(1, 4.0) @ rotation_about(0, -3.0)
    known = known_face(head_model, 12, rotation=moved, shift_mm=np.array([3.0, -4.0, 5.0]))
    fit = fit_head(known.face, model=head_model)
    to_surface, to_vertex = _region_errors(fit, known)
    assert to_surface.mean() < 1.0 and to_vertex.mean() < 1.0
    # the modes can mimic a small turn of the head, so the pose alone need not match the turn to the degree
    assert np.degrees(np.arccos((np.trace(fit.pose.rotation @ moved.T) - 1) / 2)) < 3.0


def test_a_closed_head_surface_is_fitted_whatever_its_winding(head_model, face_a):
    inside_out = trimesh.Trimesh(face_a.skin.vertices, face_a.skin.faces[:, ::-1], process=False)
    fit = fit_head(inside_out, model=head_model)  # as a 3D model's whole head surface may come
    to_surface, to_vertex = _region_errors(fit, face_a)
    assert to_surface.mean() < 1.0 and to_vertex.mean() < 1.0


def test_eyeballs_move_with_their_sockets(head_model, face_a, fit_a):
    vertices = np.asarray(fit_a.mesh.vertices)
    for side in (0, 1):
        eye = head_model.mask(*EYE_PARTS[2 * side : 2 * side + 2])
        rim = head_model.eye_rims[side]
        fitted = vertices[eye].mean(axis=0) - vertices[rim].mean(axis=0)
        true = face_a.head_vertices[eye].mean(axis=0) - face_a.head_vertices[rim].mean(axis=0)
        assert np.linalg.norm(fitted - true) < 1.0
        assert np.linalg.norm(vertices[eye].mean(axis=0) - face_a.head_vertices[eye].mean(axis=0)) < 1.5


def test_the_spread_carries_over_only_onto_the_reconstructed_face(head_model, face_a, fit_a):
    sd = fit_a.sd_mm
    face_sd = 0.5 + np.abs(face_a.face.vertices[:, 0]) / 50.0
    region = fit_a.fit_region
    assert np.isfinite(sd[region]).mean() > 0.95
    assert np.nanmin(sd) >= face_sd.min() and np.nanmax(sd) <= face_sd.max()
    assert np.isnan(sd[~head_model.skin]).all()  # eyeballs and lashes: not estimated
    back = head_model.skin & (np.asarray(fit_a.mesh.vertices)[:, 2] < -40.0)
    assert back.sum() > 500 and np.isnan(sd[back]).all()
    assert "not estimated" in fit_a.record()["uncertainty"]["elsewhere"]


def test_the_fit_is_deterministic(head_model, face_a, fit_a):
    again = fit_head(face_a.face, model=head_model)
    assert np.array_equal(np.asarray(again.mesh.vertices), np.asarray(fit_a.mesh.vertices))
    assert again.sd_mm is None


def test_bad_faces_are_refused_by_name(head_model, face_a):
    far = face_a.face.copy()
    far.apply_translation([0.0, 0.0, 300.0])
    with pytest.raises(ValueError, match="canonical frame"):
        fit_head(far, model=head_model)
    with pytest.raises(ValueError, match="one SD per face vertex"):
        fit_head(face_a.face, face_sd_mm=np.ones(5), model=head_model)
    with pytest.raises(ValueError, match="negative"):
        fit_head(face_a.face, face_sd_mm=-np.ones(len(face_a.face.vertices)), model=head_model)
    with pytest.raises(ValueError, match="no triangles"):
        fit_head(trimesh.Trimesh(np.zeros((3, 3)), np.zeros((0, 3), int)), model=head_model)
