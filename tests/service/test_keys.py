"""Keys and settings: stored only as a keyed hash, roles ordered, errors that name the fix."""

from __future__ import annotations

import stat

import pytest
from sqlalchemy import select

from facegen.service.admin import create_key, create_tenant
from facegen.service.database import session_factory
from facegen.service.keys import Role, key_hash, server_secret
from facegen.service.models import ApiKey
from facegen.service.settings import load_settings
from facegen.service.tenancy import authenticate


def test_a_key_is_stored_only_as_its_keyed_hash_and_authenticates(tmp_path):
    settings = load_settings(tmp_path)
    create_tenant(settings, "lab")
    key = create_key(settings, "lab", "examiner")
    secret = server_secret(settings.secret_file)
    assert stat.S_IMODE(settings.secret_file.stat().st_mode) == 0o600
    with session_factory(settings)() as session:
        row = session.scalar(select(ApiKey))
        assert row.key_hash == key_hash(secret, key) and key not in row.key_hash
        caller = authenticate(session, secret, key)
        assert caller is not None and caller.role is Role.EXAMINER and key not in caller.actor
        assert authenticate(session, secret, key + "x") is None
    assert key.encode() not in (tmp_path / "facegen.db").read_bytes()


def test_roles_are_ordered_and_an_unknown_role_lists_the_known_ones():
    assert Role.ADMIN.allows(Role.EXAMINER) and Role.EXAMINER.allows(Role.VIEWER)
    assert not Role.VIEWER.allows(Role.EXAMINER) and not Role.EXAMINER.allows(Role.ADMIN)
    with pytest.raises(ValueError, match="use one of viewer, examiner, admin"):
        Role.parse("root")


def test_tenant_names_are_unique_and_keys_need_a_tenant(tmp_path):
    settings = load_settings(tmp_path)
    create_tenant(settings, "lab")
    with pytest.raises(ValueError, match="exists already"):
        create_tenant(settings, "lab")
    with pytest.raises(ValueError, match="must be 1-100 letters"):
        create_tenant(settings, "../etc")
    with pytest.raises(ValueError, match="create it first"):
        create_key(settings, "nope", "viewer")


def test_settings_name_a_bad_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ValueError, match="FACEGEN_MAX_UPLOAD_MB='lots' must be a whole number"):
        load_settings(tmp_path)
    monkeypatch.delenv("FACEGEN_DATA", raising=False)
    monkeypatch.delenv("FACEGEN_MAX_UPLOAD_MB")
    with pytest.raises(ValueError, match="pass --data DIR or set FACEGEN_DATA"):
        load_settings(None)


@pytest.mark.parametrize("value", ["lots", "-5", "inf", "nan"])
def test_a_bad_rate_limit_is_named_with_its_unit(tmp_path, monkeypatch, value):
    monkeypatch.setenv("FACEGEN_RATE_LIMIT", value)
    with pytest.raises(ValueError, match=f"FACEGEN_RATE_LIMIT='{value}' must be a number of requests a minute"):
        load_settings(tmp_path)


def test_the_rate_limit_and_sweep_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEGEN_RATE_LIMIT", "30")
    monkeypatch.setenv("FACEGEN_RATE_BURST", "5")
    monkeypatch.setenv("FACEGEN_SWEEP_SECONDS", "2.5")
    settings = load_settings(tmp_path)
    assert (settings.rate_limit.per_minute, settings.rate_limit.burst, settings.sweep_seconds) == (30.0, 5, 2.5)
    assert load_settings(tmp_path).job_nice == 10
