"""The statistical skull model the scan alignment fits: built once, then read from the cache."""

from dataclasses import fields

import numpy as np

from facegen.data.alignment import skull_model as sm


def test_the_model_is_built_once_then_read_from_the_cache(tmp_path, monkeypatch):
    path = tmp_path / "skull-model-test.npz"
    monkeypatch.setattr(sm, "_cache_path", lambda: path)
    sm.skull_model.cache_clear()
    try:
        built = sm.skull_model()
        assert path.is_file()
        sm.skull_model.cache_clear()

        def no_rebuild(*args, **kwargs):
            raise AssertionError("the cached model was built again")

        monkeypatch.setattr(sm, "build_skull_model", no_rebuild)
        loaded = sm.skull_model()
    finally:
        sm.skull_model.cache_clear()  # later tests get the model of the real cache
    for f in fields(sm.SkullShapeModel):
        np.testing.assert_array_equal(np.asarray(getattr(loaded, f.name)), np.asarray(getattr(built, f.name)))
    assert loaded.landmark_names == built.landmark_names and isinstance(loaded.landmark_names[0], str)
    assert set(sm.FRANKFURT_LANDMARKS) <= set(loaded.landmark_names)
    assert loaded.landmarks(loaded.mean).keys() == built.landmarks(built.mean).keys()
