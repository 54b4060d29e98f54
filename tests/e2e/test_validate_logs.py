"""Loki's and Promtail's own checks on a real engine: `monctl validate` runs them in
one-off containers of the images (as their entrypoint: no shell), also on a fresh
checkout without .env (the pull-request check), and `monctl reload` refuses a broken
configuration before it restarts Loki or reloads Promtail.

Loki and Promtail are STAND-INS here (tests/images/standin: they print what the pinned
releases print, UPSTREAM.md); the Loki image, like upstream's, has no shell. These
tests show monctl's handling of the documented tools, not the real programs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from support.data import explain, inspect
from support.engine import Stack

from monctl.services.answers import metric_value

pytestmark = pytest.mark.docker

LOKI = "config/loki/loki-config.yml"
PROMTAIL = "config/promtail/promtail-config.yml"
BROKEN = {LOKI: "ingestor:\n  lifecycler: {}\n", PROMTAIL: "not_a_promtail_key: 1\n"}


@contextmanager
def broken(stack: Stack, relative: str) -> Iterator[int]:
    """The file with a key its program refuses appended; the line number of that key.
    Always restored (the running stack is shared)."""
    path = stack.root / relative
    original = path.read_text(encoding="utf-8")
    path.write_text(original + BROKEN[relative], encoding="utf-8")
    try:
        yield len(original.splitlines()) + 1
    finally:
        path.write_text(original, encoding="utf-8")


def test_validate_on_a_fresh_checkout_without_env_passes(stack_dir: Stack) -> None:
    """No .env exists before `monctl up` writes one: validation must not need it
    (required variables get placeholders in the one-off containers)."""
    (stack_dir.root / ".env").unlink()
    images = {k: v for k, v in stack_dir.overrides.items() if k.endswith("_IMAGE")}
    result = stack_dir.monctl("validate", "--json", env=images, timeout=400)
    assert result.code == 0, explain(result)
    assert "required variable" not in result.out + result.err
    assert not (stack_dir.root / ".env").exists()  # validate wrote none
    checks = {(c["service"], c["check"]): c["status"] for c in json.loads(result.out)["checks"]}
    assert checks[("loki", "config")] == "valid"
    assert checks[("promtail", "config")] == "valid"
    assert checks[("prometheus", "config")] == "valid"
    assert checks[("alertmanager", "config")] == "valid"


def test_validate_names_file_and_line_of_a_broken_loki_and_promtail(stack_dir: Stack) -> None:
    with broken(stack_dir, LOKI) as loki_line, broken(stack_dir, PROMTAIL) as promtail_line:
        result = stack_dir.monctl("validate", "loki", "promtail", "--json", timeout=300)
    assert result.code == 6, explain(result)
    found = {
        (c["service"], p["file"], p["line"])
        for c in json.loads(result.out)["checks"]
        for p in c["problems"]
    }
    assert ("loki", LOKI, loki_line) in found
    assert ("promtail", PROMTAIL, promtail_line) in found


def started_at(stack: Stack, service: str) -> str:
    return inspect(stack, service, "{{.State.StartedAt}}")


def test_reload_loki_refuses_a_broken_config_and_does_not_restart(running_stack: Stack) -> None:
    before = started_at(running_stack, "loki")
    with broken(running_stack, LOKI):
        result = running_stack.monctl("reload", "loki", "--json")
    assert result.code == 6, explain(result)
    (outcome,) = json.loads(result.out)["services"]
    assert outcome["result"] == "refused"
    assert "Loki was not touched" in outcome["summary"]
    assert any("ingestor" in line for line in outcome["details"])  # Loki's own words
    assert started_at(running_stack, "loki") == before  # not restarted
    assert httpx.get(f"{running_stack.url('loki')}/ready", timeout=5).status_code == 200


def reloads(stack: Stack) -> tuple[float | None, float | None]:
    text = httpx.get(f"{stack.url('promtail')}/metrics", timeout=5).text
    ok = metric_value(text, "promtail_config_reload_success_total")
    failed = metric_value(text, "promtail_config_reload_fail_total")
    return ok, failed


def test_reload_promtail_refuses_a_broken_config_and_does_not_reload(
    running_stack: Stack,
) -> None:
    before, counted = started_at(running_stack, "promtail"), reloads(running_stack)
    with broken(running_stack, PROMTAIL):
        result = running_stack.monctl("reload", "promtail", "--json")
    assert result.code == 6, explain(result)
    (outcome,) = json.loads(result.out)["services"]
    assert outcome["result"] == "refused"
    assert started_at(running_stack, "promtail") == before
    assert reloads(running_stack) == counted  # no POST /reload reached it


def test_the_check_runs_in_the_shell_less_loki_image(running_stack: Stack) -> None:
    """What makes the check possible at all: the image has no shell, but its entrypoint
    binary runs (`docker exec` with an argument list), as `reload` does it."""
    from support.data import container
    from support.engine import docker

    cid = container(running_stack, "loki")
    assert docker("exec", cid, "sh", "-c", "true").code != 0  # no shell in the image
    ran = docker("exec", cid, "/usr/bin/loki", "-verify-config", f"-config.file=/etc/{LOKI[7:]}")
    assert ran.code == 0 and "config is valid" in ran.err, ran
