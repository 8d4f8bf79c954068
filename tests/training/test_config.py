import json

import pytest

from facegen.training.config import TrainConfig, load_config


def test_defaults_work_and_overrides_are_typed():
    overrides = ["steps=500", "lr=1e-3", "precision=bf16", "model.lambda_l1=50", "model.channels=[8,16]"]
    config = load_config(None, overrides)
    assert (config.steps, config.lr, config.precision) == (500, 1e-3, "bf16")
    assert config.model_options == {"lambda_l1": 50.0, "channels": (8, 16)}
    assert isinstance(config.model_options["lambda_l1"], float)
    assert load_config().to_dict() == TrainConfig().to_dict()


def test_config_file_then_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('steps = 300\nbatch_size = 4\n[model]\nlambda_l1 = 10.0\ncondition_dropout = 0.0\n')
    config = load_config(path, ["batch_size=2"])
    assert (config.steps, config.batch_size) == (300, 2)
    assert config.model_options == {"lambda_l1": 10.0, "condition_dropout": 0.0}
    as_json = tmp_path / "run.json"
    as_json.write_text(json.dumps({"model": "pca", "seed": 3}))
    assert (load_config(as_json).model, load_config(as_json).seed) == ("pca", 3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["stpes=3"], "unknown key; known keys: .*steps"),
        (["steps"], "expected key=value"),
        (["steps=many"], "steps should be a int"),
        (["steps=0"], "steps must be at least 1"),
        (["precision=fp8"], "precision must be one of auto, bf16, fp32"),
        (["model.lamda_l1=3"], "no option lamda_l1; its options: .*model.lambda_l1"),
        (["model.lambda_l1=[1]"], "model.lambda_l1 should be a float"),
    ],
)
def test_bad_settings_name_the_problem(overrides, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, overrides)


def test_unknown_model_lists_the_families():
    with pytest.raises(ValueError, match="unknown model 'nosuch'; known models: .*gan2d.*pca"):
        load_config(None, [], model="nosuch")


def test_unreadable_config_file_is_named(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("steps = = 3")
    with pytest.raises(ValueError, match="broken.toml"):
        load_config(path)
