"""The service commands on the facegen command line: help, and errors that name the fix (exit code 2)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from facegen.cli.main import app

runner = CliRunner()


COMMANDS = [["serve"], ["worker"], ["submit"], ["admin"], ["admin", "tenant", "create"],
            ["admin", "tenant", "keep-uploads"], ["admin", "key", "create"], ["admin", "webhook", "set"],
            ["admin", "webhook", "clear"]]  # fmt: skip


@pytest.mark.parametrize("command", COMMANDS)
def test_every_service_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output, result.output


def test_admin_commands_name_the_problem(tmp_path):
    data = ["--data", str(tmp_path)]
    assert runner.invoke(app, ["admin", "tenant", "create", "lab", *data]).exit_code == 0
    twice = runner.invoke(app, ["admin", "tenant", "create", "lab", *data])
    assert twice.exit_code == 2 and "exists already" in twice.output
    unknown = runner.invoke(app, ["admin", "key", "create", "--tenant", "other", "--role", "viewer", *data])
    assert unknown.exit_code == 2 and "facegen admin tenant create other" in unknown.output
    role = runner.invoke(app, ["admin", "key", "create", "--tenant", "lab", "--role", "root", *data])
    assert role.exit_code == 2 and "viewer, examiner, admin" in role.output
    key = runner.invoke(app, ["admin", "key", "create", "--tenant", "lab", "--role", "viewer", *data])
    assert key.exit_code == 0 and key.output.strip().startswith("fgk_")
