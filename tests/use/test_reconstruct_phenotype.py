"""`reconstruct(phenotype=...)`: the web service's way in (a prediction made from kept dosages), never beside a
genotype file."""

from __future__ import annotations

from pathlib import Path

import pytest

from facegen.data.synthetic.genotypes import random_dosages
from facegen.io.genotypes import Genotypes
from facegen.models.appearance.hirisplex import predict_phenotype
from facegen.use.reconstruct import reconstruct


@pytest.mark.parametrize("given", [{"genotypes": "g.txt"}, {"genotype_sample": "S1"}, {"skin_probabilities": "s.csv"}])
def test_reconstruct_takes_genotypes_or_a_phenotype_not_both(tmp_path: Path, given: dict[str, str]):
    phenotype = predict_phenotype(Genotypes(random_dosages(3), "23andMe"))
    with pytest.raises(ValueError, match=r"either genotypes .* or a phenotype"):
        reconstruct(tmp_path / "skull.ply", tmp_path / "case", phenotype=phenotype, **given)
    assert not (tmp_path / "case").exists()
