"""Tooth loss with age: which of the template's teeth a head has lost, at the rates adults lose them.

The number of teeth lost follows the mean teeth remaining by age group, and whether none are left the share of
edentulous adults (NHANES 1999-2004, `craniometry_table.TEETH_REMAINING` and `EDENTULOUS_SHARE`). The template's
teeth are its separate tooth pieces; a lost tooth's piece is removed from the skull, so a frontal view sees
through the gap. The alveolar bone is left as it is (its resorption after loss is not modelled).
"""

from __future__ import annotations

import numpy as np
import trimesh

from facegen.data.synthetic.craniometry_table import EDENTULOUS_SHARE, TEETH_COUNTED, TEETH_REMAINING, by_age
from facegen.data.synthetic.template import HeadTemplate

MIN_TOOTH_FACES = 20
"""Tooth pieces smaller than this (slivers left by the cuts between teeth) are not counted as teeth."""


def tooth_pieces(template: HeadTemplate) -> list[np.ndarray]:
    """Face indices of each tooth piece of the template skull (connected teeth faces)."""
    faces = np.nonzero(template.skull_is_teeth[template.skull_triangles].all(axis=1))[0]
    mesh = trimesh.Trimesh(template.skull_vertices, template.skull_triangles[faces], process=False)
    groups = trimesh.graph.connected_components(mesh.face_adjacency, nodes=np.arange(len(faces)))
    return [faces[np.asarray(g)] for g in groups if len(g) >= MIN_TOOTH_FACES]


def lost_teeth(age_years: float | None, n_pieces: int, rng: np.random.Generator) -> np.ndarray:
    """Which of `n_pieces` teeth are lost (bool): none, some (Poisson around the age's mean loss) or all."""
    age = 48.0 if age_years is None else age_years
    lost = np.zeros(n_pieces, bool)
    if rng.random() < by_age(EDENTULOUS_SHARE, age):
        lost[:] = True
        return lost
    share = min(rng.poisson(TEETH_COUNTED - by_age(TEETH_REMAINING, age)) / TEETH_COUNTED, 1.0)
    lost[rng.permutation(n_pieces)[: int(round(share * n_pieces))]] = True
    return lost
