"""Acceptance: ``lineoa-export activation ...`` (no LINE needed: the authentication is stored untested).

The tests of this module share one database holding the authentication ``main``; each test uses
its own activation names.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_support import TEXT_MESSAGES, Cli, describe


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    runner = Cli(tmp_path_factory.mktemp("activations"))
    runner.ok(
        "auth", "create", "main", "--access-token", "stored-untested", "--skip-test", "--api-url", "http://127.0.0.1:9"
    )
    return runner


def create(cli: Cli, name: str, *extra: str) -> None:
    cli.ok("activation", "create", name, "--auth", "main", "--recipient", "{{uid}}", *extra)


def field(output: str, key: str) -> str:
    """The value of one ``key  value`` row of ``activation show``."""
    match = re.search(rf"^\s*{re.escape(key)}\s{{2,}}(.*?)\s*$", output, re.MULTILINE)
    assert match, f"no {key!r} row in:\n{output}"
    return match.group(1)


def test_defaults_are_visible_in_show(cli: Cli) -> None:
    create(cli, "defaults", "--messages", TEXT_MESSAGES)
    shown = cli.ok("activation", "show", "defaults").stdout
    assert field(shown, "max retries") == "3"
    assert field(shown, "initial retry delay") == "2 s"
    assert field(shown, "retry delay multiple") == "2"
    assert field(shown, "retry waits") == "2 s, 4 s, 8 s"
    assert field(shown, "authentication") == "main"
    assert field(shown, "recipient") == "{{uid}}"
    assert field(shown, "status") == "active"
    assert "Hello {{ name }}" in shown


TOO_LONG = json.dumps([{"type": "text", "text": "x" * 5001}])
# 4,999 letters and one emoji: 5,001 UTF-16 code units though only 5,000 code points.
TOO_LONG_UTF16 = json.dumps([{"type": "text", "text": "x" * 4999 + "\U0001f600"}])
OK_MESSAGE = json.dumps([{"type": "text", "text": "hi"}])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["--auth", "main", "--recipient", "{{uid}}", "--messages", OK_MESSAGE, "--initial-retry-delay", "-2"],
            ["initial_retry_delay", "negative"],
            id="negative-initial-retry-delay",
        ),
        pytest.param(
            ["--auth", "main", "--recipient", "{{uid}}", "--messages", TOO_LONG],
            ["messages[0].text", "5000"],
            id="text-over-5000",
        ),
        pytest.param(
            ["--auth", "main", "--recipient", "{{uid}}", "--messages", TOO_LONG_UTF16],
            ["messages[0].text"],
            id="text-over-5000-utf16-units",
        ),
        pytest.param(
            ["--auth", "main", "--recipient", "{{uid}}", "--messages", '[{"type":"text","text":"Hi {{name"}]'],
            ["messages[0].text", "{{"],
            id="unbalanced-braces-in-messages",
        ),
        pytest.param(
            ["--auth", "main", "--recipient", "{{uid", "--messages", OK_MESSAGE],
            ["recipient", "{{"],
            id="unbalanced-braces-in-recipient",
        ),
        pytest.param(
            ["--auth", "nobody", "--recipient", "{{uid}}", "--messages", OK_MESSAGE],
            ["nobody"],
            id="unknown-auth",
        ),
        pytest.param(
            ["--auth", "main", "--recipient", "{{uid}}"],
            ["messages"],
            id="messages-missing",
        ),
    ],
)
def test_create_refuses_bad_input_and_says_why(cli: Cli, args: list[str], expected: list[str]) -> None:
    result = cli("activation", "create", "refused", *args)
    assert result.returncode != 0, describe(result)
    for text in expected:
        assert text in result.stderr, (text, result.stderr)
    assert "Traceback" not in result.stderr


def test_messages_from_a_file(cli: Cli, tmp_path: Path) -> None:
    payload = [
        {"type": "text", "text": "Points: {{points}}"},
        {"type": "sticker", "packageId": "446", "stickerId": "1988"},
    ]
    path = tmp_path / "messages.json"
    path.write_text(json.dumps(payload))
    create(cli, "from-file", "--messages", f"@{path}", "--description", "loaded from a file")
    shown = cli.ok("activation", "show", "from-file").stdout
    assert field(shown, "description") == "loaded from a file"
    assert "Points: {{points}}" in shown
    assert '"stickerId": "1988"' in shown

    missing = cli("activation", "create", "no-file", "--auth", "main", "--recipient", "{{uid}}",
                  "--messages", f"@{tmp_path / 'missing.json'}")  # fmt: skip
    assert missing.returncode != 0, describe(missing)
    assert "missing.json" in missing.stderr


def test_copy_from_takes_the_other_activations_settings(cli: Cli) -> None:
    create(
        cli, "original", "--messages", TEXT_MESSAGES, "--description", "the original",
        "--max-retries", "5", "--initial-retry-delay", "1.5", "--retry-delay-multiple", "3",
        "--notification-disabled",
    )  # fmt: skip
    cli.ok("activation", "create", "copy", "--copy-from", "original", "--max-retries", "2")
    shown = cli.ok("activation", "show", "copy").stdout
    assert field(shown, "name") == "copy"
    assert field(shown, "authentication") == "main"
    assert field(shown, "recipient") == "{{uid}}"
    assert field(shown, "description") == "the original"
    assert field(shown, "max retries") == "2"  # given on the command line: overrides the copy
    assert field(shown, "initial retry delay") == "1.5 s"
    assert field(shown, "retry delay multiple") == "3"
    assert field(shown, "retry waits") == "1.5 s, 4.5 s"
    assert field(shown, "notification disabled") == "True"
    assert "Hello {{ name }}" in shown

    unknown = cli("activation", "create", "copy2", "--copy-from", "no-such-activation")
    assert unknown.returncode != 0, describe(unknown)
    assert "no-such-activation" in unknown.stderr


def test_list_show_pause_resume_delete(cli: Cli) -> None:
    create(cli, "lifecycle", "--messages", TEXT_MESSAGES)
    assert (
        "paused activation lifecycle"
        in cli.ok("activation", "pause", "lifecycle", "--reason", "campaign on hold").stdout
    )

    shown = cli.ok("activation", "show", "lifecycle").stdout
    assert "PAUSED" in field(shown, "status")
    assert "campaign on hold" in field(shown, "status")
    listed = cli.ok("activation", "list").stdout
    row = next(line for line in listed.splitlines() if "lifecycle" in line)
    assert "paused" in row and "main" in row

    assert "resumed activation lifecycle" in cli.ok("activation", "resume", "lifecycle").stdout
    assert field(cli.ok("activation", "show", "lifecycle").stdout, "status") == "active"

    assert "deleted activation lifecycle" in cli.ok("activation", "delete", "lifecycle").stdout
    gone = cli("activation", "show", "lifecycle")
    assert gone.returncode != 0, describe(gone)
    assert "lifecycle" in gone.stderr
    again = cli("activation", "delete", "lifecycle")
    assert again.returncode != 0, describe(again)


def test_trigger_events_line_that_is_not_utf8_is_reported_and_good_lines_recorded(cli: Cli, tmp_path: Path) -> None:
    create(cli, "robust", "--messages", TEXT_MESSAGES)
    good = '{"event_id": "%s", "uid": "U0123456789abcdef0123456789abcdef", "name": "A", "points": 1}\n'
    path = tmp_path / "latin1.ndjson"
    path.write_bytes((good % "g1").encode() + b'{"name": "Jos\xe9"}\n' + (good % "g2").encode())
    result = cli("trigger", "robust", "--events", str(path))
    assert result.returncode != 0, describe(result)
    assert "Traceback" not in result.stderr, result.stderr
    assert "line 2" in result.stderr, result.stderr
    assert {e["event_id"] for e in cli.log_json("robust")} == {"g1", "g2"}


def test_trigger_events_ignores_a_byte_order_mark(cli: Cli, tmp_path: Path) -> None:
    create(cli, "bom", "--messages", TEXT_MESSAGES)
    path = tmp_path / "bom.ndjson"
    line = b'{"event_id": "b1", "uid": "U0123456789abcdef0123456789abcdef", "name": "A", "points": 1}\n'
    path.write_bytes(b"\xef\xbb\xbf" + line)
    ok = cli("trigger", "bom", "--events", str(path))
    assert ok.returncode == 0, describe(ok)
    assert "b1\taccepted" in ok.stdout
