"""Where a bearer token may go: LINE's API hosts, plus only what the operator allows."""

from __future__ import annotations

import pytest

from lineoa_export.api_hosts import ApiHosts, parse_allowed_hosts
from lineoa_export.errors import ApiUrlNotAllowed, ConfigurationError, InvalidInput
from lineoa_export.settings import Settings

LINE_ONLY = ApiHosts()
WITH_SIMULATOR = ApiHosts(frozenset({"127.0.0.1", "sim.internal"}))


@pytest.mark.parametrize("url", ["https://api.line.me", "https://api-data.line.me/", "https://API.LINE.ME"])
def test_lines_own_hosts_are_allowed_by_default(url: str) -> None:
    assert LINE_ONLY.check(url) == url.rstrip("/")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:19999",  # the simulator, when not allowed
        "https://attacker.example",
        "https://api.line.me.attacker.example",
        "http://169.254.169.254/latest/meta-data",
        "http://localhost:6379",
    ],
)
def test_any_other_host_is_refused_by_default_naming_the_setting(url: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        LINE_ONLY.check(url)
    assert caught.value.problems[0].path == "api_url"
    assert "LINEOA_EXPORT_ALLOWED_API_HOSTS" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:19999", "https://127.0.0.1", "http://sim.internal:8080/base", "http://SIM.internal"]
)
def test_an_allowed_host_is_allowed_on_any_port_and_scheme(url: str) -> None:
    assert WITH_SIMULATOR.check(url) == url.rstrip("/")


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://user:pw@127.0.0.1:19999", "user name or password"),  # was a ValueError in aiohttp: 500
        ("http://127.0.0.1:19999@attacker.example", "user name or password"),
        ("http://a..b", "not a valid host name"),  # was a UnicodeError: 500
        ("http://-a.b", "not a valid host name"),
        ("http://127.0.0.1:19999/x?y=1", "query"),
        ("http://127.0.0.1:19999/#", "fragment"),  # a '#' cut our request path off
        ("http://127.0.0.1:99999", "port"),
        ("http://127.0.0.1:port", "port"),
        ("http://[::1", "IPv6"),
        ("ftp://127.0.0.1", "http:// or https://"),
        ("127.0.0.1:8080", "http:// or https://"),
        ("http://127.0.0.1/a/../b", "path"),
        ("http://127.0.0.1/a b", "printable ASCII"),
        ("http://127.0.0.1/\x00", "printable ASCII"),
        ("http://bücher.example", "printable ASCII"),
        ("http://" + "a" * 2000 + ".b", "at most 2000"),
        ("http://api.line.me", "HTTPS"),
        ("https://api.line.me:8443", "HTTPS, no port"),
        ("https://api.line.me/v2", "no port or path"),
    ],
)
def test_unusable_urls_are_refused_with_a_reason_naming_api_url(url: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        WITH_SIMULATOR.check(url)
    assert caught.value.problems[0].path == "api_url"
    assert says in caught.value.problems[0].reason


def test_a_stored_url_no_longer_allowed_is_a_configuration_error_without_its_password() -> None:
    with pytest.raises(ApiUrlNotAllowed) as caught:
        LINE_ONLY.check_stored("http://admin:S3cret@127.0.0.1:19999/x")
    assert isinstance(caught.value, ConfigurationError)
    assert "S3cret" not in str(caught.value)
    assert "api_url http://127.0.0.1:19999/x" in str(caught.value)


def test_the_setting_takes_comma_separated_hosts_and_ips() -> None:
    settings = Settings.from_env({"LINEOA_EXPORT_ALLOWED_API_HOSTS": " 127.0.0.1, Sim.Internal ,[::1],"})
    assert settings.api_hosts.extra == {"127.0.0.1", "sim.internal", "::1"}
    assert settings.api_hosts.check("http://[::1]:8080") == "http://[::1]:8080"


@pytest.mark.parametrize("entry", ["127.0.0.1:8080", "http://sim", "a..b", "*.example.com", "sim/x"])
def test_an_entry_that_is_not_a_host_is_refused_naming_the_variable(entry: str) -> None:
    with pytest.raises(ConfigurationError, match="LINEOA_EXPORT_ALLOWED_API_HOSTS"):
        Settings.from_env({"LINEOA_EXPORT_ALLOWED_API_HOSTS": entry})


def test_no_setting_means_lines_hosts_only() -> None:
    assert Settings.from_env({}).api_hosts == LINE_ONLY
    assert parse_allowed_hosts([""]) == frozenset()
