"""The roster, the project secret, the people's Ground Truth identities, sign-in tokens and sessions."""

from __future__ import annotations

import base64
import json
import re
import stat
from pathlib import Path

import pytest
from gtaudit_local.team.people import (
    RoleNotAllowed,
    Roster,
    RosterError,
    TokenExpired,
    TokenInvalid,
    UnknownPerson,
    project_secret,
)
from gtaudit_local.team.sessions import Session, Sessions, csrf_ok, read_cookie, set_cookie
from team_support import roster

NOW = 1_800_000_000.0


def test_the_secret_is_32_bytes_mode_0600_and_drawn_once(tmp_path: Path) -> None:
    first = project_secret(tmp_path)
    path = tmp_path / "state" / "secret"
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert project_secret(tmp_path) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret"]  # no temporary file left


def test_a_damaged_secret_is_refused_not_replaced(tmp_path: Path) -> None:
    project_secret(tmp_path)
    (tmp_path / "state" / "secret").write_bytes(b"short")
    with pytest.raises(RosterError, match="5 bytes"):
        Roster(tmp_path)


def test_identities_are_gt_shaped_stable_across_restarts_and_differ_between_projects(tmp_path: Path) -> None:
    team = roster(tmp_path / "a")
    ana = team.person("Ana")
    assert re.fullmatch(r"private\.us-east-1\.[0-9a-f]{16}", ana.worker_id)
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", ana.sub)
    assert Roster(tmp_path / "a").person("ana") == ana  # a restart (and any case) finds the same person
    other = roster(tmp_path / "b").person("Ana")
    assert (other.worker_id, other.sub) != (ana.worker_id, ana.sub)
    assert len({p.worker_id for p in team.people}) == len(team.people)


def test_team_json_holds_no_secret_and_is_refused_under_another_projects_secret(tmp_path: Path) -> None:
    team = roster(tmp_path / "a")
    text = (tmp_path / "a" / "team.json").read_text()
    secret = project_secret(tmp_path / "a")
    assert secret.hex() not in text and "secret" not in text
    assert [p["name"] for p in json.loads(text)["people"]] == ["Ana", "Ben", "Chloé", "Dana"]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "team.json").write_text(text)
    with pytest.raises(RosterError, match="another project"):
        Roster(tmp_path / "b")
    assert team.person("Ben").role == "labeler"


def test_names_are_unique_ignoring_case_and_checked(tmp_path: Path) -> None:
    team = roster(tmp_path)
    with pytest.raises(ValueError, match="already"):
        team.add("ANA", "auditor")
    for bad in ("", " ", "x" * 65, "a\nb"):
        with pytest.raises(ValueError, match="name"):
            team.add(bad, "labeler")
    with pytest.raises(ValueError, match="role"):
        team.add("Eve", "admin")


def test_a_change_by_another_process_is_seen_at_the_next_look_up(tmp_path: Path) -> None:
    server_side = roster(tmp_path)
    Roster(tmp_path).add("Eve", "auditor")  # the lead's command line, while the server runs
    assert server_side.person("Eve").role == "auditor"
    Roster(tmp_path).remove("Eve")
    with pytest.raises(UnknownPerson):
        server_side.person("Eve")


def test_a_token_signs_its_person_in_until_it_expires(tmp_path: Path) -> None:
    team = roster(tmp_path)
    token = team.sign_in_token("Ana", 3600, now=NOW)
    person, expires = team.verify(token, now=NOW + 3599)
    assert person == team.person("Ana") and expires == NOW + 3600
    with pytest.raises(TokenExpired):
        team.verify(token, now=NOW + 3600)


def test_a_tampered_token_is_invalid(tmp_path: Path) -> None:
    team = roster(tmp_path)
    payload, mac = team.sign_in_token("Ana", 3600, now=NOW).split(".")
    forged = json.dumps({"p": "Dana", "r": "lead", "e": NOW + 3600}).encode()
    forged_payload = base64.urlsafe_b64encode(forged).rstrip(b"=").decode()
    for bad in (
        f"{forged_payload}.{mac}",
        f"{payload}.{mac[:-2]}AA",
        payload,
        "",
        "a.b.c",
        f"{payload}.",
        "é.é",
        f"{payload}.é",
    ):
        with pytest.raises(TokenInvalid):
            team.verify(bad, now=NOW)


def test_another_projects_token_is_invalid_even_for_a_namesake(tmp_path: Path) -> None:
    ours, theirs = roster(tmp_path / "ours"), roster(tmp_path / "theirs")
    with pytest.raises(TokenInvalid):
        ours.verify(theirs.sign_in_token("Ana", 3600, now=NOW), now=NOW)


def test_a_removed_person_or_a_changed_role_no_longer_signs_in(tmp_path: Path) -> None:
    team = roster(tmp_path)
    ben = team.sign_in_token("Ben", 3600, now=NOW)
    team.remove("Ben")
    with pytest.raises(UnknownPerson):
        team.verify(ben, now=NOW)
    team.add("Ben", "auditor")  # back, in another role: the labeler's link is not his any more
    with pytest.raises(RoleNotAllowed):
        team.verify(ben, now=NOW)
    assert team.verify(team.sign_in_token("Ben", 3600, now=NOW), now=NOW)[0].role == "auditor"


def test_a_role_the_caller_does_not_admit_is_refused(tmp_path: Path) -> None:
    team = roster(tmp_path)
    with pytest.raises(RoleNotAllowed):
        team.verify(team.sign_in_token("Ana", 3600, now=NOW), roles=("lead",), now=NOW)
    assert team.verify(team.sign_in_token("Dana", 3600, now=NOW), roles=("lead",), now=NOW)[0].name == "Dana"


def test_sessions_end_with_their_token_or_at_sign_out(tmp_path: Path) -> None:
    clock = [NOW]
    sessions = Sessions(clock=lambda: clock[0])
    ana = roster(tmp_path).person("Ana")
    s = sessions.open(ana, NOW + 10)
    assert sessions.get(s.id) == s and sessions.get(None) is None and sessions.get("x") is None
    clock[0] = NOW + 10
    assert sessions.get(s.id) is None
    t = sessions.open(ana, NOW + 100)
    assert sessions.close(t.id) == t and sessions.get(t.id) is None


def test_the_cookie_is_httponly_strict_and_secure_only_over_https() -> None:
    plain = set_cookie("gtaudit-team-8800", "abc", secure=False, max_age=60)
    assert plain == "gtaudit-team-8800=abc; Path=/; HttpOnly; SameSite=Strict; Max-Age=60"
    assert set_cookie("n", "abc", secure=True).endswith("; Secure")
    assert read_cookie("a=1; gtaudit-team-8800=abc; b=2", "gtaudit-team-8800") == "abc"
    assert read_cookie("gtaudit-team-8800=abc; gtaudit-team-8800=evil", "gtaudit-team-8800") is None
    assert read_cookie(None, "n") is None


def test_csrf_tokens_are_per_session() -> None:
    s = Session("id", "Ana", "labeler", "token-a", NOW)
    assert csrf_ok(s, "token-a")
    assert not csrf_ok(s, "token-b") and not csrf_ok(s, None) and not csrf_ok(s, "")
