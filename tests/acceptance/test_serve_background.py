"""``serve`` asks LINE by itself only where the worker runs: a recent unit's statistics are
fetched with no one asking; ``serve --no-worker`` (an API node) says it never calls LINE."""

from __future__ import annotations

from cli_support import Setup, new_user
from test_serve_e2e import Serve

from lineoa_export.testing import wait_until

WAIT = 15.0


def statistics_requests(setup: Setup) -> int:
    return sum(setup.sim.stats()["requests_by_endpoint"].get("unit_statistics", {}).values())


def test_serve_refreshes_a_recent_units_statistics_by_itself(setup: Setup) -> None:
    cli = setup.cli
    setup.activation("spring")
    cli.ok("trigger", "spring", "--event", setup.event(new_user()))
    cli.ok("worker", "--until-idle")
    assert statistics_requests(setup) == 0
    server = Serve(cli)
    try:
        wait_until(lambda: statistics_requests(setup) > 0, "serve asks LINE for the unit's statistics", WAIT)
        assert statistics_requests(setup) == 1, server.output()
        shown = server.ok("GET", "/v1/activations/spring/stats")
        assert shown["source"] == "stored" and shown["fetched_at"] is not None  # no second request
        assert statistics_requests(setup) == 1
        assert "refreshes recent units' statistics" in server.output()
    finally:
        assert server.terminate(timeout=10) == 0
        server.stop()


def test_an_api_only_node_says_it_never_calls_line_by_itself(setup: Setup) -> None:
    server = Serve(setup.cli, "--no-worker")
    try:
        assert "never calls LINE by itself" in server.output()
    finally:
        assert server.terminate(timeout=10) == 0
        server.stop()
