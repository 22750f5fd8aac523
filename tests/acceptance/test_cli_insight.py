"""Acceptance: aggregation units on the command line (issue 10)."""

from __future__ import annotations

import json

from cli_support import Setup, describe, new_user


def test_pushes_carry_the_unit_and_activation_show_says_how_it_stands(setup: Setup) -> None:
    cli, sim = setup.cli, setup.sim
    setup.activation("spring")
    setup.activation("promo", "--aggregation-unit", "Promo_A")
    setup.activation("quiet", "--no-aggregation-unit")
    assert "no push yet" in cli.ok("activation", "show", "spring").stdout
    for name in ("spring", "promo", "quiet"):
        cli.ok("trigger", name, "--event", setup.event(new_user()))
    cli.ok("worker", "--until-idle")
    units = sorted(str(a["body"].get("customAggregationUnits")) for a in sim.accepted(bodies=True))
    assert units == ["None", "['Promo_A']", "['spring']"]
    shown = cli.ok("activation", "show", "spring").stdout
    assert "aggregation unit" in shown and "spring (in use in" in shown
    assert "none: pushes carry no aggregation unit" in cli.ok("activation", "show", "quiet").stdout


def test_a_bad_unit_is_refused_naming_the_field(setup: Setup) -> None:
    result = setup.cli("activation", "create", "bad", "--auth", "line", "--recipient", "{{uid}}",
                       "--messages", '[{"type":"text","text":"hi"}]', "--aggregation-unit", "no spaces")  # fmt: skip
    assert result.returncode != 0, describe(result)
    assert "aggregation_unit" in result.stderr
    assert "Traceback" not in result.stderr


def test_stats_prints_lines_figures_with_fewer_than_20_for_nulls(setup: Setup) -> None:
    cli = setup.cli
    setup.activation("spring")
    for _ in range(3):
        cli.ok("trigger", "spring", "--event", setup.event(new_user()))
    cli.ok("worker", "--until-idle")
    shown = cli.ok("stats", "spring").stdout
    assert "fetched from LINE just now" in shown
    assert "unique impressions" in shown and "fewer than 20" in shown
    as_json = json.loads(cli.ok("stats", "spring", "--format", "json").stdout)
    assert as_json["source"] == "stored"  # a few seconds old: LINE is not asked again
    assert as_json["figures"]["overview"]["uniqueImpression"] is None


def test_stats_refuses_a_bad_day_naming_the_field(setup: Setup) -> None:
    setup.activation("spring")
    result = setup.cli("stats", "spring", "--from", "2027-02-30")
    assert result.returncode == 1, describe(result)
    assert "from" in result.stderr and "YYYY-MM-DD" in result.stderr


def test_reconcile_says_lines_count_is_not_ready_for_today_and_refuses_a_bad_date(setup: Setup) -> None:
    from datetime import datetime, timedelta, timezone

    cli = setup.cli
    setup.activation("spring")
    cli.ok("trigger", "spring", "--event", setup.event(new_user()))
    cli.ok("worker", "--until-idle")
    today = datetime.now(timezone(timedelta(hours=9))).date().isoformat()
    shown = cli.ok("reconcile", "line", "--date", today).stdout
    assert "not_ready" in shown and "we recorded" in shown and "1 accepted" in shown
    as_json = json.loads(cli.ok("reconcile", "line", "--format", "json").stdout)  # yesterday: nothing sent
    assert as_json["our_count"] == 0 and as_json["verdict"] == "unavailable"
    bad = cli("reconcile", "line", "--date", "tomorrow")
    assert bad.returncode == 1 and "date" in bad.stderr, describe(bad)


def test_overview_prints_the_last_hour_of_an_activation_and_of_its_channel(setup: Setup) -> None:
    cli, sim = setup.cli, setup.sim
    setup.activation("spring")
    refused, flaky = new_user(), new_user()
    sim.patch({"script": {refused: [400], flaky: [503]}})
    for uid in (new_user(), new_user(), refused, flaky):
        cli.ok("trigger", "spring", "--event", setup.event(uid))
    cli.ok("worker", "--until-idle")

    shown = cli.ok("overview", "spring").stdout
    assert "3 delivered" in shown and "1 retried" in shown and "1 failed" in shown
    assert "5 pushes" in shown  # 3 delivered + the 503 + the 400
    assert "delivering" in shown and "monthly quota" in shown
    as_json = json.loads(cli.ok("overview", "spring", "--format", "json").stdout)
    assert as_json["outcomes"]["delivered"] == 3 and as_json["outcomes"]["failed"] == 1
    assert as_json["retry_reasons"] == {"400": 1, "503": 1}
    channel = json.loads(cli.ok("overview", "line", "--channel", "--format", "json").stdout)
    assert channel["scope"] == "channel" and channel["activations"] == ["spring"]

    missing = setup.cli("overview", "nope")
    assert missing.returncode != 0 and "nope" in missing.stderr and "Traceback" not in missing.stderr
