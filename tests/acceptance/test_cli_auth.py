"""Acceptance: ``lineoa-export auth ...`` against a real simulator process."""

from __future__ import annotations

import re
import stat

from cli_support import DEMO_CHANNEL_ID, DEMO_CHANNEL_SECRET, DEMO_TOKEN, Cli, Simulator, describe


def test_help_lists_the_commands(cli: Cli) -> None:
    result = cli.ok("--help")
    for command in ("auth", "activation", "trigger", "worker", "log", "simulator", "demo"):
        assert command in result.stdout, command


def test_auth_create_with_a_bad_token_is_refused_with_lines_reason(cli: Cli, sim: Simulator) -> None:
    bad_token = "not-the-right-token-7f3a9c"
    result = cli("auth", "create", "bad", "--access-token", bad_token, "--api-url", sim.url)
    assert result.returncode != 0, describe(result)
    assert "Authentication failed" in result.stderr
    assert bad_token not in result.stdout + result.stderr
    # Nothing was stored.
    assert "bad" not in cli.ok("auth", "list").stdout


def test_auth_create_with_channel_id_and_secret_mints_a_token(cli: Cli, sim: Simulator) -> None:
    result = cli.ok(
        "auth", "create", "minted",
        "--channel-id", DEMO_CHANNEL_ID, "--channel-secret", DEMO_CHANNEL_SECRET,
        "--api-url", sim.url,
    )  # fmt: skip
    assert "created authentication minted" in result.stdout
    stats = sim.stats()
    assert stats["requests_by_endpoint"]["token"] == {"200": 1}
    assert stats["requests_by_endpoint"]["bot_info"] == {"200": 1}
    shown = cli.ok("auth", "show", "minted").stdout
    assert DEMO_CHANNEL_ID in shown
    assert DEMO_CHANNEL_SECRET not in shown

    wrong = cli(
        "auth", "create", "wrong",
        "--channel-id", DEMO_CHANNEL_ID, "--channel-secret", "wrong-secret-00000000000000",
        "--api-url", sim.url,
    )  # fmt: skip
    assert wrong.returncode != 0, describe(wrong)
    assert "wrong-secret-00000000000000" not in wrong.stdout + wrong.stderr
    assert cli("auth", "show", "wrong").returncode != 0


def test_auth_create_skip_test_stores_without_asking_line(cli: Cli, sim: Simulator) -> None:
    result = cli.ok("auth", "create", "unchecked", "--access-token", "wrong-token", "--api-url", sim.url, "--skip-test")
    assert "created authentication unchecked" in result.stdout
    assert "not tested" in result.stdout
    assert sim.stats()["requests_by_endpoint"] == {}, "--skip-test must not contact LINE"
    # `auth test` does ask LINE, and reports the bad token without echoing it.
    tested = cli("auth", "test", "unchecked")
    assert tested.returncode != 0, describe(tested)
    assert "Authentication failed" in tested.stderr
    assert "wrong-token" not in tested.stdout + tested.stderr


def test_auth_create_good_token_then_list_show_test_delete(cli: Cli, sim: Simulator) -> None:
    created = cli.ok("auth", "create", "first", "--access-token", DEMO_TOKEN, "--api-url", sim.url)
    assert "created authentication first" in created.stdout
    assert "tested" in created.stdout and "not tested" not in created.stdout
    assert "Demo Official Account" in created.stdout
    assert sim.stats()["requests_by_endpoint"]["bot_info"] == {"200": 1}

    listed = cli.ok("auth", "list").stdout
    row = next(line for line in listed.splitlines() if "first" in line)
    assert sim.url in row and "active" in row

    shown = cli.ok("auth", "show", "first").stdout
    assert re.search(r"^\s*name\s+first\s*$", shown, re.MULTILINE), shown
    assert sim.url in shown
    assert "Demo Official Account" in shown

    tested = cli.ok("auth", "test", "first")
    assert "ok" in tested.stdout and "first" in tested.stdout
    assert sim.stats()["requests_by_endpoint"]["bot_info"] == {"200": 2}

    assert "deleted authentication first" in cli.ok("auth", "delete", "first").stdout
    gone = cli("auth", "show", "first")
    assert gone.returncode != 0, describe(gone)
    assert "first" in gone.stderr
    assert "first" not in cli.ok("auth", "list").stdout


def test_secrets_never_shown_and_never_stored_in_plaintext(cli: Cli, sim: Simulator) -> None:
    canary = "plaintext-canary-token-5b1e0f2d"
    cli.ok("auth", "create", "token", "--access-token", DEMO_TOKEN, "--api-url", sim.url)
    cli.ok(
        "auth", "create", "minted",
        "--channel-id", DEMO_CHANNEL_ID, "--channel-secret", DEMO_CHANNEL_SECRET,
        "--api-url", sim.url,
    )  # fmt: skip
    cli.ok("auth", "create", "canary", "--access-token", canary, "--api-url", sim.url, "--skip-test")
    secrets = (DEMO_TOKEN, DEMO_CHANNEL_SECRET, canary)

    outputs = [cli.ok("auth", "list")]
    outputs += [cli.ok("auth", "show", name) for name in ("minted", "canary")]
    outputs.append(cli("auth", "test", "canary"))  # refused by LINE: the error must not echo it
    assert outputs[-1].returncode != 0
    for result in outputs:
        for secret in secrets:
            assert secret not in result.stdout + result.stderr, (secret, result.args)

    # The key file lives beside the database, readable by its owner only.
    key_file = cli.db_path.with_name(cli.db_path.name + ".key")
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600

    # The database (and its WAL/journal, if any) holds no secret in plaintext.
    db_files = [p for p in cli.directory.iterdir() if p.name.startswith(cli.db_path.name) and p != key_file]
    assert cli.db_path in db_files
    for path in db_files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret.encode() not in data, (secret, path.name)
