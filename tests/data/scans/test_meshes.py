"""A skull mesh's SPACE tag (as 3D Slicer writes it) is found in STL, PLY and OBJ headers, and only there."""

from __future__ import annotations

import pytest
import trimesh

from facegen.data.scans.meshes import mesh_space
from facegen.use.face_mesh import mesh_file_bytes


@pytest.mark.parametrize("fmt", ["stl", "ply", "obj"])
@pytest.mark.parametrize("space", ["RAS", "LPS"])
def test_a_tagged_mesh_file_gives_its_space(tmp_path, fmt, space):
    path = tmp_path / f"skull.{fmt}"
    path.write_bytes(mesh_file_bytes(trimesh.creation.box(), fmt, frame="a scanner's", space=space))
    assert mesh_space(path) == space


def test_an_untagged_mesh_has_no_space_and_the_first_tag_counts(tmp_path):
    plain = tmp_path / "plain.ply"
    plain.write_bytes(mesh_file_bytes(trimesh.creation.box(), "ply"))
    assert mesh_space(plain) is None
    both = tmp_path / "both.obj"
    both.write_text("# 3D Slicer output. SPACE=RAS\n# later: SPACE=LPS\nv 0 0 0\n")
    assert mesh_space(both) == "RAS"
