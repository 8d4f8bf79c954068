"""The head's files for a case: coloured GLB and PLY per variant, pictures, a record; the same bytes again."""

from __future__ import annotations

import io
import json

import matplotlib.image as mpimg
import numpy as np
import trimesh

from facegen.use.head.appearance import Appearance
from facegen.use.head.colour import IRIS
from facegen.use.head.files import head_files

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LOOK = Appearance(eye={"blue": 0.1, "intermediate": 0.15, "brown": 0.75}, source="made up for the test")


def test_head_files_for_a_case_folder(face_a, fit_a):
    files = head_files(face_a.face, appearance=LOOK, fit=fit_a)
    stem = "head/head_eye-brown_hair-unknown"
    assert set(files) == {f"{stem}.glb", f"{stem}.ply", f"{stem}.png", "head/head_variants.png", "head/head.json",
                          "head/ICT-LICENSE.txt"}  # fmt: skip
    record = json.loads(files["head/head.json"])
    assert record["fit"]["residual_mean_mm"] < 1.0
    assert [v["name"] for v in record["variants"]] == ["eye-brown_hair-unknown"]
    assert record["variants"][0]["probabilities"]["eye"] == 0.75
    assert record["appearance"]["source"] == "made up for the test"
    assert "MIT" in files["head/ICT-LICENSE.txt"].decode()

    scene = trimesh.load(io.BytesIO(files[f"{stem}.glb"]), file_type="glb")
    assert set(scene.geometry) == {"skin", "eyes", "eyelashes"}
    eyes = scene.geometry["eyes"]
    assert eyes.visual.kind == "vertex"
    assert (eyes.visual.vertex_colors[:, :3] == IRIS["brown"]).all(axis=1).sum() > 100
    assert np.ptp(scene.geometry["skin"].vertices[:, 1]) < 0.5  # metres

    ply = files[f"{stem}.ply"]
    assert b"comment facegen mesh; frame: facegen canonical" in ply and b"property float sd_mm" in ply
    mesh = trimesh.load(io.BytesIO(ply), file_type="ply", process=False)
    assert len(mesh.vertices) == len(fit_a.mesh.vertices)
    for name in (f"{stem}.png", "head/head_variants.png"):
        assert files[name].startswith(PNG_SIGNATURE)
        pixels = mpimg.imread(io.BytesIO(files[name]), format="png")
        assert pixels.shape[0] > 300 and pixels[..., :3].std() > 0.05
    again = head_files(face_a.face, appearance=LOOK, fit=fit_a)
    assert again == files
