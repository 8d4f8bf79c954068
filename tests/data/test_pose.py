import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from facegen.data.pose import frankfurt_frame

PORION_L = np.array([65.0, 0.0, 0.0])
PORION_R = np.array([-65.0, 0.0, 0.0])
ORBITALE_L = np.array([30.0, 0.0, 70.0])


def test_canonical_landmarks_give_the_identity():
    frame = frankfurt_frame(porion_left=PORION_L, porion_right=PORION_R, orbitale_left=ORBITALE_L)
    np.testing.assert_allclose(frame.rotation, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(frame.translation, 0.0, atol=1e-12)


def test_a_moved_head_is_brought_back_exactly():
    rotation = Rotation.from_euler("xyz", [12.0, -30.0, 7.0], degrees=True).as_matrix()
    shift = np.array([4.0, -20.0, 33.0])
    moved = [rotation @ p + shift for p in (PORION_L, PORION_R, ORBITALE_L)]
    frame = frankfurt_frame(porion_left=moved[0], porion_right=moved[1], orbitale_left=moved[2])
    back = frame.apply(np.stack(moved))
    np.testing.assert_allclose(back, np.stack([PORION_L, PORION_R, ORBITALE_L]), atol=1e-9)
    np.testing.assert_allclose(frame.inverse().apply(back), np.stack(moved), atol=1e-9)
    assert np.isclose(np.linalg.det(frame.rotation), 1.0)


def test_degenerate_landmarks_are_refused():
    with pytest.raises(ValueError, match="porions are 2.0 mm apart"):
        frankfurt_frame(
            porion_left=np.array([1.0, 0, 0]), porion_right=np.array([-1.0, 0, 0]), orbitale_left=ORBITALE_L
        )
    with pytest.raises(ValueError, match="orbitale lies on the porion axis"):
        frankfurt_frame(porion_left=PORION_L, porion_right=PORION_R, orbitale_left=np.array([40.0, 0, 0]))
