"""Nose, mouth and eyes from the bone, by the rules forensic artists use, plus individual variation.

Nose (Rynn, Wilkinson & Peters 2010): pronasale projection changes by 0.83 mm per mm of rhinion-subspinale
distance (Y) and its vertical position by 0.9 mm per mm of nasion-acanthion distance (X); single-case
errors of 3-4 mm. Mouth (Stephan 2003; Stephan & Henneberg 2003): inter-canine width is ~75% of mouth
width, error 0 +- 3 mm. Eyes (Stephan & Davidson 2008): the eyeball sits 1.4 mm above and 2.3 mm lateral to
the orbit centre; the template is built that way and the bone-driven fields keep it so.
The rules act as corrections on top of what the bone-driven fields already did, so each feature ends where
the rule puts it for this skull; the variation is added separately, zero-mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegen.data.synthetic.fields import gaussian_bump, smoothstep

MOUTH_CORNER_RADIUS_MM = 10.0
EYE_RADIUS_MM = 14.0
NOSE_PROJECTION_SD_MM = 3.0
NOSE_VERTICAL_SD_MM = 2.0
MOUTH_WIDTH_SD_MM = 3.0
EYE_POSITION_SD_MM = 1.0


@dataclass(frozen=True)
class SoftFeatureNoise:
    """The individual departures from the rules for one subject (mm)."""

    nose: np.ndarray  # (vertical, projection)
    mouth_width: float
    eyes: np.ndarray  # (2, 3)

    @staticmethod
    def draw(rng: np.random.Generator) -> SoftFeatureNoise:
        return SoftFeatureNoise(
            nose=rng.normal(0.0, [NOSE_VERTICAL_SD_MM, NOSE_PROJECTION_SD_MM]),
            mouth_width=float(rng.normal(0.0, MOUTH_WIDTH_SD_MM)),
            eyes=rng.normal(0.0, EYE_POSITION_SD_MM, size=(2, 3)),
        )

    @staticmethod
    def none() -> SoftFeatureNoise:
        return SoftFeatureNoise(np.zeros(2), 0.0, np.zeros((2, 3)))


def _nose_measures(skull: dict[str, np.ndarray]) -> tuple[float, float]:
    """X (nasion-acanthion) and Y (rhinion-subspinale) on the skull, mm."""
    acanthion = skull["subnasale"] + np.array([0.0, 1.5, 0.0])
    x = float(np.linalg.norm(skull["nasion"] - acanthion))
    y = float(np.linalg.norm(skull["rhinion"] - skull["subnasale"]))
    return x, y


def _canine_width(skull: dict[str, np.ndarray]) -> float:
    """Inter-canine width proxy: the bone beneath the mouth corners, mm."""
    return float(np.linalg.norm(skull["cheilion_l"] - skull["cheilion_r"]))


@dataclass(frozen=True)
class SoftFeatureRules:
    """Template measures that the rules' changes are counted from, and the template feature positions."""

    template_face: np.ndarray
    face_landmarks: dict[str, int]
    template_skull: dict[str, np.ndarray]
    eye_centres: np.ndarray

    def _nose_height(self) -> np.ndarray:
        """Height (mm) of each template face vertex over the nasion-subnasale line: the protruding soft nose."""
        lm, ref = self.face_landmarks, self.template_face
        top, bottom = ref[lm["nasion"]], ref[lm["subnasale"]]
        s = np.clip((top[1] - ref[:, 1]) / (top[1] - bottom[1]), 0.0, 1.0)
        height = np.clip(ref[:, 2] - (top[2] + s * (bottom[2] - top[2])), 0.0, None)
        lateral = 1.0 - smoothstep(np.abs(ref[:, 0]), 16.0, 24.0)
        below = smoothstep(ref[:, 1], bottom[1] - 6.0, bottom[1])
        return height * lateral * below

    def nose_weight(self) -> np.ndarray:
        """How much each face vertex follows the nose tip: its height over the nasion-subnasale line relative to
        the tip's, fading out above the lower nasal dorsum, so the cartilaginous nose is rescaled as a whole
        while the nasal bones (rhinion) and the subnasale stay put."""
        lm, ref = self.face_landmarks, self.template_face
        height = self._nose_height()
        rhinion_y, tip_y = ref[lm["rhinion"]][1], ref[lm["pronasale"]][1]
        vertical = 1.0 - smoothstep(ref[:, 1], 0.5 * (rhinion_y + tip_y), rhinion_y)
        return np.clip(height / height[lm["pronasale"]], 0.0, 1.0) * vertical

    def soft_nose_mask(self) -> np.ndarray:
        """1 on the cartilaginous nose below the nasal bones, 0 elsewhere: its shape follows the nose rules,
        not the soft-tissue depth tables."""
        rhinion_y = self.template_face[self.face_landmarks["rhinion"]][1]
        return smoothstep(self._nose_height(), 1.0, 5.0) * (
            1.0 - smoothstep(self.template_face[:, 1], rhinion_y - 8, rhinion_y)
        )

    def displacement(self, face: np.ndarray, skull: dict[str, np.ndarray], noise: SoftFeatureNoise) -> np.ndarray:
        """Displacement (V, 3) that puts nose tip, mouth corners and eyes where the rules say, plus noise."""
        lm, ref = self.face_landmarks, self.template_face
        x0, y0 = _nose_measures(self.template_skull)
        x1, y1 = _nose_measures(skull)
        tip, tip0 = face[lm["pronasale"]], ref[lm["pronasale"]]
        projection_change = (tip[2] - skull["rhinion"][2]) - (tip0[2] - self.template_skull["rhinion"][2])
        drop_change = (skull["nasion"][1] - tip[1]) - (self.template_skull["nasion"][1] - tip0[1])
        dz = 0.83 * (y1 - y0) - projection_change + noise.nose[1]
        dy = -(0.9 * (x1 - x0) - drop_change) - noise.nose[0]
        out = self.nose_weight()[:, None] * np.array([0.0, dy, dz])
        width = np.linalg.norm(face[lm["cheilion_l"]] - face[lm["cheilion_r"]])
        width0 = np.linalg.norm(ref[lm["cheilion_l"]] - ref[lm["cheilion_r"]])
        predicted = (_canine_width(skull) - _canine_width(self.template_skull)) / 0.75
        half = 0.5 * (predicted - (width - width0) + noise.mouth_width)
        for side, sign in (("l", 1.0), ("r", -1.0)):
            corner = ref[lm[f"cheilion_{side}"]]
            out[:, 0] += sign * half * gaussian_bump(ref, corner, MOUTH_CORNER_RADIUS_MM)
        for eye, shift in zip(self.eye_centres, noise.eyes, strict=True):
            out += gaussian_bump(ref, eye, EYE_RADIUS_MM)[:, None] * shift
        return out
