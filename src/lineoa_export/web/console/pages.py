"""How the console answers: rendered pages, redirects with a flash message, and error pages.

Every answer carries the security headers (a strict CSP, no framing, no caching). The route
class :class:`ConsoleRoute` turns whatever a console route raises on purpose into an HTML page,
so a browser never sees the API's JSON errors.

The one rule: no secret is ever rendered. Authentications show name, kind, bot and status; a
form shown again after an error keeps its non-secret fields and blanks the others.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.requests import Request

from ... import activations, apikeys
from ...errors import AlreadyExists, ConfigurationError, InvalidInput, LineoaExportError, NotFound
from ...operations import Operations
from .drafts import Drafts
from .forms import FormTooLarge
from .live import SharedCounts
from .sessions import Role, Session, Sessions, Signer
from .throttle import LoginThrottle

PREFIX = "/console"
SESSION_COOKIE = "lineoa_console"
LOGIN_COOKIE = "lineoa_console_login"
FLASH_COOKIE = "lineoa_console_flash"
HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        # Scripts and fetches only from the console itself (the activation table refreshes itself);
        # images only from the console too, unless a page's answer adds https hosts (see security_headers).
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; "
        "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def security_headers(*, style_nonce: str = "", outside_images: bool = False) -> dict[str, str]:
    """The security headers for one answer, widened only as far as its page needs.

    ``style_nonce``: the page's one ``<style nonce>`` holds validated per-page rules (the chat
    preview's colours: see chat_preview.py); style attributes stay refused. ``outside_images``:
    the page shows pictures from https hosts (a message's images in a chat preview, the tested
    bot's picture on LINE's CDN), which the browser loads and the server never calls.
    """
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    if style_nonce:
        csp = re.sub(r"style-src ([^;]*)", rf"style-src \1 'nonce-{style_nonce}'", csp)
    if outside_images:
        csp = csp.replace("img-src 'self'", "img-src 'self' https:")
    return {**SECURITY_HEADERS, "Content-Security-Policy": csp}


class Bail(Exception):
    """Stop handling a console request and answer with ``response`` (login redirect, 403, 404)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class Console:
    """What every console route needs: the operations, sessions, and the page renderer."""

    def __init__(self, ops: Operations) -> None:
        self.ops = ops
        self.ctx = ops.ctx
        self.db = ops.db
        ctx = ops.ctx
        self.signer = Signer(ctx.vault.derived_key("console signer"))  # every node accepts the others' forms
        self.sessions = Sessions(ctx.db, ctx.clock)
        self.throttle = LoginThrottle(ctx.clock)
        self.drafts = Drafts(ctx.db, ctx.vault, ctx.clock)  # the Catalog flow's tested credentials
        self.counts = SharedCounts(ops.counts, ctx.clock)  # what every open activation table shows
        self.env = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["q"] = lambda v: quote(str(v), safe="")

    def now(self) -> float:
        return self.ctx.clock.now()

    # -- answers -----------------------------------------------------------------------------

    def base(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")) + PREFIX

    def render(
        self,
        request: Request,
        template: str,
        session: Session | None,
        *,
        status: int = 200,
        styled: bool = False,
        outside_images: bool = False,
        **values: Any,
    ) -> HTMLResponse:
        """``template`` as a page; ``styled``: the page may hold one ``<style nonce="{{ style_nonce }}">``;
        ``outside_images``: it may show images from https hosts (see :func:`security_headers`)."""
        flash = self.signer.unsign("flash", request.cookies.get(FLASH_COOKIE))
        nonce = secrets.token_urlsafe(18) if styled else ""
        html = self.env.get_template(template).render(
            base=self.base(request),
            session=session,
            csrf=session.csrf if session else "",
            flash=flash,
            style_nonce=nonce,
            **values,
        )
        headers = security_headers(style_nonce=nonce, outside_images=outside_images)
        response = HTMLResponse(html, status_code=status, headers=headers)
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    def fragment(self, request: Request, template: str, **values: Any) -> HTMLResponse:
        """Parts of a page, no layout: what static/live.js fetches to refresh a page in place."""
        html = self.env.get_template(template).render(base=self.base(request), **values)
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    def redirect(self, request: Request, path: str, flash: str | None = None, kind: str = "ok") -> Response:
        response = RedirectResponse(self.base(request) + path, status_code=303, headers=SECURITY_HEADERS)
        if flash is not None:
            response.set_cookie(
                FLASH_COOKIE,
                self.signer.sign("flash", {"message": flash[:500], "kind": kind}),
                max_age=60,
                path=PREFIX,
                httponly=True,
                samesite="strict",
                secure=request.url.scheme == "https",
            )
        return response

    def error(self, request: Request, status: int, title: str, message: str) -> Bail:
        session = getattr(request.state, "console_session", None)
        return Bail(self.render(request, "error.html", session, status=status, title=title, message=message))

    def to_login(self, request: Request) -> Bail:
        path = request.url.path.removeprefix(str(request.scope.get("root_path", "")))
        target = path + (f"?{request.url.query}" if request.url.query else "")
        login = self.base(request) + "/login?" + urlencode({"next": target[:2000]})
        return Bail(RedirectResponse(login, status_code=303, headers=SECURITY_HEADERS))

    # -- who may ----------------------------------------------------------------------------

    def require(self, request: Request, need: Role) -> Session:
        """The request's session when its key's role allows ``need``; else the login page or a 403."""
        session = self.sessions.current(request.cookies.get(SESSION_COOKIE))
        if session is None:
            raise self.to_login(request)
        request.state.console_session = session
        if not session.can(need):
            raise self.error(
                request,
                403,
                "Not allowed",
                f"This needs a key with the role {apikeys.who_may(need)}; "
                f"the key {session.key!r} has the role {session.role!r}.",
            )
        return session

    # -- lookups -----------------------------------------------------------------------------

    def activation(self, request: Request, name: str) -> activations.Activation:
        try:
            return self.ops.get_activation(name)
        except NotFound as exc:
            raise self.error(request, 404, "Not found", str(exc)) from None


def console_of(request: Request) -> Console:
    console = request.app.state.console
    assert isinstance(console, Console)
    return console


_STATUS = (
    (InvalidInput, 422, "Invalid input"),
    (NotFound, 404, "Not found"),
    (AlreadyExists, 409, "Already exists"),
    (ConfigurationError, 503, "Server configuration"),
    (LineoaExportError, 400, "Not possible"),
)


def _error_page(request: Request, exc: Exception) -> Response:
    if isinstance(exc, Bail):
        return exc.response
    console = console_of(request)
    if isinstance(exc, FormTooLarge):
        return console.error(request, 413, "Form too large", "The form is over 2 MB: shorten it and retry.").response
    status, title = next((s, t) for kind, s, t in _STATUS if isinstance(exc, kind))
    return console.error(request, status, title, str(exc)).response


class ConsoleRoute(APIRoute):
    """A console route: what it raises on purpose becomes an HTML page, never the API's JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except (Bail, FormTooLarge, LineoaExportError) as exc:
                return _error_page(request, exc)

        return handle
