"""What a console route states in its signature before it runs: the console, the role its viewer
needs, and for a POST the form with its CSRF token checked; and two helpers for names in URLs.

Every router of the console (:mod:`.routes`, :mod:`.catalog`, :mod:`.overview`) takes these from
here, so each route's guard reads the same everywhere: ``session: Reader`` on a page,
``post: AdminPost`` on an action.

The one rule: a route that shows or changes anything names one of these role dependencies; FastAPI
resolves it (login redirect, 403 page, CSRF refusal) before the route's body runs.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool

from . import forms
from .forms import Form
from .pages import Console, console_of
from .sessions import Role, Session


@dataclass(frozen=True, slots=True)
class Posted:
    """A POST a role may make: its session, and its form (the CSRF token already checked)."""

    session: Session
    form: Form


def viewer(need: Role) -> Callable[[Request], Session]:
    """The dependency of a page that needs the role ``need``: the viewer's session."""

    def dependency(request: Request) -> Session:
        return console_of(request).require(request, need)

    return dependency


def poster(need: Role) -> Callable[[Request], Awaitable[Posted]]:
    """The dependency of an action that needs the role ``need``: the session and its checked form."""

    async def dependency(request: Request) -> Posted:
        console = console_of(request)
        session = await run_in_threadpool(console.require, request, need)
        form = await forms.read_form(request)
        if not hmac.compare_digest(form.get("csrf", ""), session.csrf):
            raise console.error(
                request, 403, "Forbidden", "The form's CSRF token is missing or stale: reload the page and retry."
            )
        return Posted(session, form)

    return dependency


C = Annotated[Console, Depends(console_of)]
Reader = Annotated[Session, Depends(viewer("read"))]
Operator = Annotated[Session, Depends(viewer("operator"))]
Admin = Annotated[Session, Depends(viewer("admin"))]
ReaderPost = Annotated[Posted, Depends(poster("read"))]
OperatorPost = Annotated[Posted, Depends(poster("operator"))]
AdminPost = Annotated[Posted, Depends(poster("admin"))]


def q(value: str) -> str:
    """``value`` as one path segment of a console URL."""
    return quote(value, safe="")


def plain(console: Console, request: Request, name: str) -> str:
    """A name from the URL; one with a NUL names nothing (and no store may see it)."""
    if "\0" in name:
        raise console.error(request, 404, "Not found", "No such name (it holds a NUL character).")
    return name
