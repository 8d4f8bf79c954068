"""Case pictures: every render is a real, non-blank, deterministic PNG; the overlay shows the skull."""

from __future__ import annotations

import io

import matplotlib.image as mpimg
import numpy as np
import pytest

from facegen.data.representations.depth_map import DepthView, render_depth_map
from facegen.use.renders import case_renders

VIEW = DepthView(shape=(96, 96), pixel_mm=3.0)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _pixels(png: bytes) -> np.ndarray:
    return mpimg.imread(io.BytesIO(png), format="png")


@pytest.fixture(scope="module")
def sd_map(one_head) -> np.ndarray:
    """A made-up SD map over the face: larger toward the sides, undefined where the face is not seen."""
    depth = render_depth_map(one_head.face, VIEW)
    x, _ = VIEW.pixel_centres()
    return np.where(depth.mask, 0.5 + np.abs(x)[None, :] / 40.0, np.nan)


@pytest.fixture(scope="module")
def renders(one_head, sd_map) -> dict[str, bytes]:
    return case_renders(one_head.face, one_head.skull, uncertainty_mm=sd_map, view=VIEW)


def test_every_render_is_a_sensible_png(renders):
    assert set(renders) == {"front", "profile", "front_profile", "three_quarter", "overlay", "uncertainty"}
    for name, png in renders.items():
        assert png.startswith(PNG_SIGNATURE), name
        pixels = _pixels(png)
        assert 250 <= pixels.shape[0] <= 1500 and 250 <= pixels.shape[1] <= 1500, (name, pixels.shape)
        assert pixels[..., :3].std() > 0.1, f"{name} looks blank"
        assert b"Software" not in png and b"tIME" not in png, f"{name} carries metadata"


def test_renders_are_deterministic_and_uncertainty_is_optional(one_head, sd_map, renders):
    again = case_renders(one_head.face, one_head.skull, uncertainty_mm=sd_map, view=VIEW)
    assert again == renders
    without = case_renders(one_head.face, one_head.skull, uncertainty_mm=None, view=VIEW)
    assert "uncertainty" not in without
    assert without["front"] == renders["front"]


def test_overlay_differs_from_the_plain_face(renders):
    front, overlay = _pixels(renders["front"]), _pixels(renders["overlay"])
    assert overlay.shape != front.shape or not np.array_equal(overlay, front)
    # the overlay's left panel is the front view: crop both to the same size and compare the pictures
    rows, cols = min(front.shape[0], overlay.shape[0]), min(front.shape[1], overlay.shape[1] // 2)
    assert np.abs(front[:rows, :cols, :3] - overlay[:rows, :cols, :3]).mean() > 0.02


def test_bad_uncertainty_maps_are_refused(one_head):
    with pytest.raises(ValueError, match="does not match the view"):
        case_renders(one_head.face, one_head.skull, uncertainty_mm=np.zeros((5, 5)), view=VIEW)
    with pytest.raises(ValueError, match="negative"):
        case_renders(one_head.face, one_head.skull, uncertainty_mm=-np.ones(VIEW.shape), view=VIEW)


def _skin_rows(picture: np.ndarray) -> np.ndarray:
    """Rows of a picture where skin-coloured pixels are (the shaded face: red over blue, unlike background)."""
    rgb = picture[..., :3]
    return np.nonzero(((rgb[..., 0] - rgb[..., 2]) > 0.12).any(axis=1))[0]


def test_front_and_profile_share_one_scale(renders):
    both = _pixels(renders["front_profile"])
    gap = both.shape[1] // 2
    front, profile = _skin_rows(both[:, :gap]), _skin_rows(both[:, gap:])
    # the same head is as tall in both panels: one mm is the same number of pixels
    assert abs((front[-1] - front[0]) - (profile[-1] - profile[0])) <= 0.03 * (front[-1] - front[0])
    dark = (both[..., :3].max(axis=-1) < 0.2).sum(axis=0)  # the scale bars: a dark line under each picture
    assert dark[:gap].sum() > 20 and dark[gap:].sum() > 20
