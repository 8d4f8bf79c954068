import pytest

from facegen.models.registry import create, families, model_class


def test_registry_lists_families_and_refuses_unknown_names():
    assert "pca" in families()
    assert model_class("pca").family == "pca"
    with pytest.raises(ValueError, match=r"unknown model 'gann'; known models: .*pca"):
        create("gann")


def test_models_command_lists_the_families():
    from typer.testing import CliRunner

    from facegen.cli.main import app

    result = CliRunner().invoke(app, ["models"])
    assert result.exit_code == 0 and "pca" in result.output and "ridge regression" in result.output
