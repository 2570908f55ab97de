"""A test whose prerequisite (../shared data, /dev/shm, Chromium) is missing skips, except
under CI (CI=true), which provides them all: there it fails, so nothing turns off unseen."""

from __future__ import annotations

import re
import shutil
from collections import namedtuple

import conftest
import pytest
from conftest import REPO, missing_prerequisite, pytest_runtest_setup

SKIP, FAIL = pytest.skip.Exception, pytest.fail.Exception


def outcome(call, *args) -> tuple[type | None, str]:
    """What ``call(*args)`` raised, caught here: a skip escaping a ``pytest.raises(FAIL)``
    would skip this test instead of failing it."""
    try:
        call(*args)
    except (SKIP, FAIL) as raised:
        return type(raised), str(raised)
    return None, ""


@pytest.mark.parametrize("value", ["", "false", "0"])
def test_outside_ci_a_missing_prerequisite_skips(value, monkeypatch):
    monkeypatch.setenv("CI", value)
    assert outcome(missing_prerequisite, "no masks here") == (SKIP, "no masks here")


@pytest.mark.parametrize("value", ["true", "True"])
def test_in_ci_a_missing_prerequisite_fails(value, monkeypatch):
    monkeypatch.setenv("CI", value)
    kind, message = outcome(missing_prerequisite, "no masks here")
    assert kind is FAIL and message.startswith("no masks here (CI=true")


def test_the_prerequisite_marker_skips_or_fails_and_lets_a_present_one_run(request, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    request.node.add_marker(pytest.mark.prerequisite(True, reason="present"))
    assert outcome(pytest_runtest_setup, request.node) == (None, "")
    request.node.add_marker(pytest.mark.prerequisite(False, reason="no /dev/shm"))
    assert outcome(pytest_runtest_setup, request.node) == (SKIP, "no /dev/shm")
    monkeypatch.setenv("CI", "true")
    kind, message = outcome(pytest_runtest_setup, request.node)
    assert kind is FAIL and message.startswith("no /dev/shm (CI=true")


def test_prerequisite_skips_go_through_the_helper():
    """Every skip in the suite goes through the helper (today all are for ../shared data,
    /dev/shm or Chromium), so CI sees it; a skip for something CI cannot provide would be a
    deliberate exception listed here."""
    offenders = []
    for path in sorted((REPO / "tests").glob("*.py")):
        if path.name == "conftest.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"pytest\.skip\(|skipif\(|importorskip\(", line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert not offenders, "use the prerequisite marker or missing_prerequisite():\n" + "\n".join(
        offenders
    )


def test_a_temporary_folder_too_full_for_the_suite_is_named_with_what_it_has(monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(100 * 2**30, 0, 2**30 // 2))
    assert conftest.temp_space_problem("/scratch", needed=5 * 2**30) == (
        "only 0.5 GiB free in /scratch, the temporary folder; the suite needs about 5 GiB "
        "there: free some, or set TMPDIR to a larger disk"
    )
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: usage(100 * 2**30, 0, 5 * 2**30))
    assert conftest.temp_space_problem("/scratch", needed=5 * 2**30) is None
