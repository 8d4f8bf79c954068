"""Soft-tissue depth of a subject: population mean, covariate shifts and correlated individual variation.

depth(v) = template mean(v) + BMI, sex and age shifts(v) + residual(v). The shifts and the residual SD are
the table's per-landmark figures spread over the face; the residual is a Gaussian random field whose
correlation falls with distance (NEIGHBOUR_CORRELATION_LENGTH_MM), and its SD is what remains of the
published population SD once the covariates and the soft-feature variation are accounted for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from facegen.data.subject import Sex, Subject
from facegen.data.synthetic.fields import spread_landmark_values
from facegen.data.synthetic.population import population_moments
from facegen.data.synthetic.template import TISSUE_WIDTH_MM, HeadTemplate
from facegen.data.synthetic.tissue_table import (
    FSTT_TABLE,
    NEIGHBOUR_CORRELATION_LENGTH_MM,
    SHARED_RESIDUAL_SHARE,
)

MIN_TISSUE_MM = 1.5
_CONTROL_SPACING_MM = 7.0


@dataclass(frozen=True)
class TissueModel:
    """Per face vertex: covariate effect maps, residual SD, and the correlated-noise matrix (V x M)."""

    bmi_slope: np.ndarray
    male_minus_female: np.ndarray
    age_slope_per_decade: np.ndarray
    residual_sd: np.ndarray
    noise_basis: sparse.csr_matrix

    def mean_shift(self, subject: Subject) -> np.ndarray:
        """Expected change of tissue depth (mm) for this subject against the population mean."""
        pop = population_moments()
        sex = 0.5 if subject.sex is Sex.MALE else -0.5
        return (
            self.bmi_slope * (subject.bmi - pop["bmi_mean"])
            + self.male_minus_female * sex
            + self.age_slope_per_decade * (subject.age_years - pop["age_mean"]) / 10.0
        )

    def residual(self, rng: np.random.Generator) -> np.ndarray:
        """One draw of the individual, spatially correlated variation (mm)."""
        shared = rng.standard_normal()
        local = self.noise_basis @ rng.standard_normal(self.noise_basis.shape[1])
        mix = np.sqrt(SHARED_RESIDUAL_SHARE) * shared + np.sqrt(1.0 - SHARED_RESIDUAL_SHARE) * local
        return self.residual_sd * mix


def _landmark_rows(template: HeadTemplate):
    lm = template.face_landmarks
    for row in FSTT_TABLE:
        for name in [f"{row.name}_l", f"{row.name}_r"] if row.bilateral else [row.name]:
            yield name, template.face_vertices[lm[name]], row


def _noise_basis(points: np.ndarray) -> sparse.csr_matrix:
    """Process-convolution basis: unit-variance field with correlation exp(-d^2 / (2 L^2))."""
    keys = np.round(points / _CONTROL_SPACING_MM).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    controls = points[np.sort(first)]
    width = NEIGHBOUR_CORRELATION_LENGTH_MM / np.sqrt(2.0)
    # the coo output keeps zero distances (a vertex that is itself a control point)
    pairs = cKDTree(points).sparse_distance_matrix(cKDTree(controls), 3.0 * width, output_type="coo_matrix")
    weights = np.exp(-0.5 * (pairs.data / width) ** 2)
    basis = sparse.csr_matrix((weights, (pairs.row, pairs.col)), shape=(len(points), len(controls)))
    norm = np.sqrt(np.asarray(basis.multiply(basis).sum(axis=1)).ravel())
    return sparse.diags(1.0 / norm) @ basis


def build_tissue_model(template: HeadTemplate, soft_variance_mm2: np.ndarray) -> TissueModel:
    """Spread the table's covariate effects and residual SDs over the template face.

    `soft_variance_mm2` (V,): variance that the soft-feature variation already adds along each vertex normal.
    """
    pop = population_moments()
    names, points, rows = zip(*_landmark_rows(template), strict=True)
    pts = np.stack(points)
    idx = [template.face_landmarks[n] for n in names]

    def spread(values, background):
        return spread_landmark_values(
            template.face_vertices, pts, np.asarray(values, float), background=background, width_mm=TISSUE_WIDTH_MM
        )

    bmi = spread([r.bmi_slope_mm for r in rows], 0.15)
    sex = spread([r.male_minus_female_mm for r in rows], 0.0)
    age = spread([r.age_slope_mm for r in rows], 0.0)
    covariate_var = [
        (r.bmi_slope_mm * pop["bmi_sd"]) ** 2
        + (r.male_minus_female_mm / 2) ** 2
        + (r.age_slope_mm * pop["age_sd"] / 10) ** 2
        for r in rows
    ]
    residual = [
        np.sqrt(max(r.sd_mm**2 - cv - soft_variance_mm2[i], (0.35 * r.sd_mm) ** 2))
        for r, cv, i in zip(rows, covariate_var, idx, strict=True)
    ]
    residual_sd = np.maximum(spread(residual, 0.4), 0.3)
    return TissueModel(bmi, sex, age, residual_sd, _noise_basis(template.face_vertices))
