"""The published HIrisPlex coefficients and accuracy figures, transcribed with their sources; no number is facegen's.

Eye (IrisPlex, 6 SNPs): Walsh S. et al., "IrisPlex: a sensitive DNA tool for accurate prediction of blue and brown
eye colour in the absence of ancestry information", Forensic Sci. Int. Genetics 5(3):170-180, 2011 (FROG-kb
"Irisplex_calculation.xls"), identical to the eye rows of the HIrisPlex spreadsheet below.
Hair colour (22 SNPs) and shade (20 SNPs): Walsh S. et al., "The HIrisPlex system for simultaneous prediction of
hair and eye colour from DNA", Forensic Sci. Int. Genetics 7(1):98-115, 2013, doi 10.1016/j.fsigen.2012.07.005,
supplementary spreadsheet mmc7.xls, sheet "macro" (hair rows 2-24, shade rows 27-47, eye rows 51-57).
Transcribed in ../shared/reference/hirisplex.md from two independent public copies that agree digit for digit.
Dosages count the allele named in the web tool's labels (see facegen.io.genotypes.markers for the plus strand).
"""

from __future__ import annotations

SOURCES = {
    "irisplex_2011": "Walsh S. et al., IrisPlex, Forensic Sci. Int. Genetics 5(3):170-180, 2011 (eye model; FROG-kb "
    "Irisplex_calculation.xls)",
    "hirisplex_2013": "Walsh S. et al., The HIrisPlex system for simultaneous prediction of hair and eye colour from "
    "DNA, Forensic Sci. Int. Genetics 7(1):98-115, 2013, doi 10.1016/j.fsigen.2012.07.005 (supplementary mmc7.xls, "
    "sheet 'macro': hair, shade and eye coefficients; hair accuracy in the abstract)",
    "hirisplex_s_2017": "Walsh S. et al., Global skin colour prediction from DNA, Hum. Genet. 136:847-863, 2017 "
    "(HIrisPlex-S skin model: coefficients not published in usable form; cross-validated AUC in the abstract)",
}  # fmt: skip

# Eye, reference category brown: (blue, intermediate) per term. Source: irisplex_2011 / hirisplex_2013 rows 51-57.
EYE = {
    "source": "irisplex_2011",
    "classes": ("blue", "intermediate", "brown"),
    "reference": "brown",
    "intercept": {"blue": 3.8402, "intermediate": 0.372},
    "betas": {
        "rs12913832": {"blue": -4.8727, "intermediate": -1.99},
        "rs1800407": {"blue": 1.1536, "intermediate": 1.052},
        "rs12896399": {"blue": -0.5253, "intermediate": -0.0077},  # counts G (see markers.py)
        "rs16891982": {"blue": -1.5257, "intermediate": -0.7363},
        "rs1393350": {"blue": 0.4431, "intermediate": 0.259},
        "rs12203592": {"blue": 0.5951, "intermediate": 0.6872},
    },
}

# Hair colour, reference category blond: (brown, red, black). Source: hirisplex_2013, mmc7.xls "macro" rows 2-24.
_HAIR_ROWS = {
    "rs312262906": (1.2522, 25.508, 2.732),
    "rs11547464": (-0.61155, 2.5381, -16.969),
    "rs885479": (0.2937, -0.20889, 0.39983),
    "rs1805008": (-0.50143, 2.801, -0.86062),
    "rs1805005": (0.21172, 0.93493, -0.0029013),
    "rs1805006": (1.9293, 3.65, -16.088),
    "rs1805007": (-0.32318, 3.4408, -1.3757),
    "rs1805009": (0.60861, 4.5868, 0.060631),
    "rs201326893": (0.25624, 22.107, 3.9824),
    "rs2228479": (-0.054143, 0.62307, 0.17012),
    "rs1110400": (-0.56315, 1.4453, 0.29143),
    "rs28777": (0.52168, 0.70401, 0.82228),
    "rs16891982": (0.75284, -0.41869, 1.1617),
    "rs12821256": (-0.34957, -0.57964, -0.89824),
    "rs4959270": (-0.19171, 0.24861, -0.36359),
    "rs12203592": (1.6475, 0.90233, 1.997),
    "rs1042602": (0.16092, 0.45003, 0.065432),
    "rs1800407": (-0.19111, -0.27606, -0.49601),
    "rs2402130": (0.35821, 0.28313, 0.26536),
    "rs12913832": (1.214, -0.093776, 1.9391),
    "rs2378249": (0.12669, 0.76634, -0.089509),
    "rs683": (0.21172, -0.053427, 0.15796),
}
HAIR_COLOUR = {
    "source": "hirisplex_2013",
    "classes": ("blond", "brown", "red", "black"),
    "reference": "blond",
    "intercept": {"brown": -2.0769, "red": -6.3953, "black": -2.4029},
    "betas": {rsid: dict(zip(("brown", "red", "black"), row, strict=True)) for rsid, row in _HAIR_ROWS.items()},
}

# Hair shade, reference category light: one score for dark. Source: hirisplex_2013, mmc7.xls "macro" rows 27-47.
_SHADE_ROWS = {
    "rs11547464": -16.575,
    "rs885479": 0.18709,
    "rs1805008": -0.9331,
    "rs1805005": -0.030452,
    "rs1805006": -15.305,
    "rs1805007": -1.7901,
    "rs1805009": -0.078426,
    "rs2228479": 0.0049399,
    "rs1110400": -0.15892,
    "rs28777": 1.4594,
    "rs16891982": 0.78071,
    "rs12821256": -0.7757,
    "rs4959270": -0.44286,
    "rs12203592": 1.8636,
    "rs1042602": 0.18179,
    "rs1800407": -0.59583,
    "rs2402130": 0.33304,
    "rs12913832": 1.9622,
    "rs2378249": 0.090083,
    "rs683": 0.18114,
}
HAIR_SHADE = {
    "source": "hirisplex_2013",
    "classes": ("light", "dark"),
    "reference": "light",
    "intercept": {"dark": -2.528},
    "betas": {rsid: {"dark": beta} for rsid, beta in _SHADE_ROWS.items()},
}

ACCURACY = {
    "eye": {
        "measure": "AUC (approximate, from secondary sources)",
        "short": "AUC",
        "values": {"blue": 0.94, "intermediate": 0.74, "brown": 0.95},
        "source": "irisplex_2011",
        "note": "accuracy drops in admixed populations",
    },
    "hair_colour": {
        "measure": "individual-based accuracy on a 20% test set of 1,551 Europeans",
        "short": "accuracy",
        "values": {"blond": 0.695, "brown": 0.785, "red": 0.80, "black": 0.875},
        "source": "hirisplex_2013",
    },
    "hair_shade": None,
    "skin": {
        "measure": "5-category cross-validated AUC",
        "short": "AUC",
        "values": {"very_pale": 0.74, "pale": 0.72, "intermediate": 0.73, "dark": 0.87, "dark_black": 0.97},
        "source": "hirisplex_s_2017",
    },
}
"""The published accuracy per trait (None: no figure is published in the sources above)."""

PATENTS = ("US20110312534", "EP2195448")
"""Patents on the iris-colour method; their status was not checked."""
