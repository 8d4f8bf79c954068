"""Synthetic head CTs shared by the segmentation and surface tests: clean, with scanner objects, with metal."""

import numpy as np
import pytest

from facegen.data.scans.scanner_objects import add_dental_metal, add_scanner_objects
from facegen.data.synthetic.ct import render_ct
from facegen.data.synthetic.generator import SyntheticHead
from facegen.io.volume import Volume
from tests.data.scans.test_segment import NECK_CUT_Y, SPACING, filling_points, neck_cut


@pytest.fixture(scope="module")
def clean(one_head: SyntheticHead) -> Volume:
    """The head at 1 x 1 x 1.25 mm with room around it for scanner objects, cut at the neck."""
    return neck_cut(render_ct(one_head, spacing_mm=SPACING, seed=21, margin_mm=40.0), NECK_CUT_Y)


@pytest.fixture(scope="module")
def cluttered(clean: Volume) -> Volume:
    return add_scanner_objects(clean, np.random.default_rng(5))


@pytest.fixture(scope="module")
def with_metal(cluttered: Volume, one_head: SyntheticHead) -> Volume:
    return add_dental_metal(cluttered, filling_points(one_head), np.random.default_rng(6))
