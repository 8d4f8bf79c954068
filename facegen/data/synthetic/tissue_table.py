"""Adult facial soft-tissue thickness (FSTT) at the standard craniometric landmarks, and its covariates.

Means and SDs are the pooled adult figures of `shared/reference/cfr-facts.md` section 1 (approx. pooled
T-Table values, Stephan & Simpson 2008 and the 2023 tally by Hona & Stephan). Covariate effects follow the
published directions: BMI is the dominant covariate, strongest at cheeks and zygomatic region (0.3-0.6 mm
per BMI unit) and weakest at forehead and nasal bones (0.05-0.1) (De Greef et al. 2009; Dong et al. 2012);
men thicker at midline points, women at lateral orbit, inferior malar and gonion (Domaracki & Stephan 2006;
Cha 2013; differences <= 2.2 mm); lips thin with age, cheeks and jaw line thicken slightly (Stephan &
Simpson 2008). Effects are centred on the generator's population so that the population mean at each
landmark is the pooled mean, and the residual spread is what remains of the pooled SD.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LandmarkDepth:
    """Soft-tissue depth at one landmark: population mean and SD (mm) and covariate effects.

    `bmi_slope_mm`: mm per BMI unit; `male_minus_female_mm`: sex difference; `age_slope_mm`: mm per decade.
    `bilateral`: the landmark stands on both sides of the face.
    """

    name: str
    mean_mm: float
    sd_mm: float
    bmi_slope_mm: float
    male_minus_female_mm: float
    age_slope_mm: float
    bilateral: bool


FSTT_TABLE: tuple[LandmarkDepth, ...] = (
    LandmarkDepth("supraglabella", 4.5, 1.2, 0.06, 0.6, 0.0, False),
    LandmarkDepth("glabella", 5.5, 1.5, 0.08, 0.6, 0.0, False),
    LandmarkDepth("nasion", 6.5, 1.5, 0.08, 0.8, 0.0, False),
    LandmarkDepth("rhinion", 3.0, 1.0, 0.05, 0.4, 0.0, False),
    LandmarkDepth("subnasale", 11.5, 2.5, 0.15, 1.5, -0.2, False),
    LandmarkDepth("labrale_superius", 12.0, 2.5, 0.15, 1.5, -0.4, False),
    LandmarkDepth("labrale_inferius", 13.0, 2.5, 0.15, 1.2, -0.4, False),
    LandmarkDepth("supramentale", 10.5, 2.0, 0.18, 0.8, 0.0, False),
    LandmarkDepth("pogonion", 11.0, 2.5, 0.22, 0.6, 0.0, False),
    LandmarkDepth("gnathion", 8.0, 2.0, 0.2, 0.5, 0.1, False),
    LandmarkDepth("menton", 7.0, 2.0, 0.2, 0.5, 0.1, False),
    LandmarkDepth("frontal_eminence", 4.5, 1.2, 0.07, 0.3, 0.0, True),
    LandmarkDepth("supraorbital", 6.0, 1.5, 0.1, 0.3, 0.0, True),
    LandmarkDepth("infraorbital", 6.0, 2.0, 0.25, -0.3, 0.1, True),
    LandmarkDepth("inferior_malar", 12.0, 3.0, 0.45, -1.2, 0.2, True),
    LandmarkDepth("lateral_orbit", 9.0, 2.5, 0.3, -1.0, 0.1, True),
    LandmarkDepth("zygion", 7.5, 2.5, 0.35, -0.2, 0.1, True),
    LandmarkDepth("supraglenoid", 8.0, 2.5, 0.25, 0.0, 0.0, True),
    LandmarkDepth("gonion", 12.0, 4.0, 0.5, -1.0, 0.2, True),
    LandmarkDepth("mid_ramus", 18.0, 4.0, 0.5, 0.5, 0.2, True),
    LandmarkDepth("supra_m2", 23.0, 5.0, 0.55, 0.5, 0.2, True),
    LandmarkDepth("infra_m2", 21.0, 5.0, 0.55, 0.5, 0.2, True),
    LandmarkDepth("mid_mandibular_border", 8.5, 2.5, 0.3, 0.3, 0.1, True),
)

FSTT_BY_NAME = {row.name: row for row in FSTT_TABLE}

NEIGHBOUR_CORRELATION_LENGTH_MM = 22.0
SHARED_RESIDUAL_SHARE = 0.1
"""The individual tissue variation is a shared part (one factor per person: fatter or leaner all over than
the BMI says, this share of the variance) plus a local Gaussian field with this correlation length. Together
they give r ~ 0.77 between upper and lower lip and between pogonion and gnathion (16-17 mm apart), as
measured (FSI 2018: r = 0.76 and 0.78), while keeping the face smooth."""
