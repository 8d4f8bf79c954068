"""A complete head for a case: the open ICT face model fitted to the reconstructed face, coloured by what is known.

fit (pose, identity modes, smooth residual) -> colour (one head per shown class) -> files (GLB, PLY, PNG, JSON).
"""

from facegen.use.head.appearance import Appearance
from facegen.use.head.colour import HeadVariant, colour_head
from facegen.use.head.files import HeadResult, head_files, head_result
from facegen.use.head.fit import HeadFit, fit_head

__all__ = [
    "Appearance",
    "HeadFit",
    "HeadResult",
    "HeadVariant",
    "colour_head",
    "fit_head",
    "head_files",
    "head_result",
]
