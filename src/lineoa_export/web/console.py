"""The web console (``/console``): authentications, triggered activations and their tables.

Server-rendered (Jinja2, autoescaped), plain HTML forms that POST and redirect: it works
without JavaScript. It calls the package's functions directly, never the JSON API over HTTP.

Sessions: the console asks for an API key (the API's keys, :func:`apikeys.verify`) and keeps
an HttpOnly, ``SameSite=Strict`` cookie holding the key's *name* (never the key) signed with
HMAC under a secret drawn when the console is mounted; a restart logs everyone out, and
every process has its own secret (run one process, or put the console behind sticky
sessions). Revoking the key ends its sessions. Every POST also carries a per-session CSRF
token in a hidden field; the login form carries one bound to a pre-login cookie.

No secret is ever rendered: authentications show name, kind, bot and status only, and a
form that is shown again after an error keeps the non-secret fields and blanks the others.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from starlette.staticfiles import StaticFiles

from .. import activation_table, activations, apikeys, authentications
from ..context import Context
from ..delivery import outbox
from ..delivery.line_client import DEFAULT_API_URL, PUSH_PATH
from ..delivery.worker import Worker
from ..errors import AlreadyExists, CredentialsRejected, FieldProblem, InvalidInput, NotFound
from ..naming import check_name

PREFIX = "/console"
SESSION_COOKIE = "lineoa_console"
LOGIN_COOKIE = "lineoa_console_login"
FLASH_COOKIE = "lineoa_console_flash"
SESSION_SECONDS = 12 * 3600
MAX_FORM_BYTES = 2 * 1024 * 1024
PAGE_SIZE = 50
STATES = ("queued", "retrying", "paused", "delivered", "failed")
HERE = Path(__file__).parent
SAMPLE_EVENT = '{"line_user_id": "U0123456789abcdef0123456789abcdef", "name": "Ann"}'
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
ACTIVATION_FIELDS = (
    "name", "description", "authentication", "recipient", "messages",
    "max_retries", "initial_retry_delay", "retry_delay_multiple",
)

Form = dict[str, str]


class _Bail(Exception):
    """Stop handling a console request and answer with ``response`` (login redirect, 403, 404)."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


@dataclass(frozen=True, slots=True)
class Session:
    key: str          # the API key's name
    key_created: float
    nonce: str
    csrf: str


class _Signer:
    """HMAC-SHA256 signatures under a secret that lives as long as the process."""

    def __init__(self) -> None:
        self._secret = secrets.token_bytes(32)

    def mac(self, purpose: str, value: str) -> str:
        return hmac.new(self._secret, f"{purpose}|{value}".encode(), hashlib.sha256).hexdigest()

    def sign(self, purpose: str, payload: dict[str, Any]) -> str:
        data = base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")
        return f"{data}.{self.mac(purpose, data)}"

    def unsign(self, purpose: str, value: str | None) -> dict[str, Any] | None:
        if not value or value.count(".") != 1:
            return None
        data, mac = value.split(".")
        if not hmac.compare_digest(mac, self.mac(purpose, data)):
            return None
        try:
            payload = orjson.loads(base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)))
        except (ValueError, orjson.JSONDecodeError):
            return None
        return payload if isinstance(payload, dict) else None


def _group(problems: list[FieldProblem] | tuple[FieldProblem, ...]) -> dict[str, list[str]]:
    """Problems by the form field they belong to (the first word of their path)."""
    grouped: dict[str, list[str]] = {}
    for p in problems:
        match = re.match(r"[A-Za-z_]+", p.path or "")
        grouped.setdefault(match.group() if match else "form", []).append(str(p))
    return grouped


def _number(value: float) -> str:
    return f"{value:g}"


def _pretty(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


def _safe_next(target: str | None) -> str:
    if target and re.fullmatch(r"/console(/[A-Za-z0-9_.~%/?&=+-]*)?", target) and "//" not in target:
        return target
    return PREFIX + "/activations"


# -- forms -------------------------------------------------------------------------------------


def _form_values(form: Form, *, copy_of: activations.ActivationSpec | None = None) -> dict[str, Any]:
    """The activation form's values: what was posted, or a copy, or the product's defaults."""
    if copy_of is not None:
        return {
            "name": form.get("name", ""),
            "description": copy_of.description,
            "authentication": copy_of.authentication,
            "recipient": copy_of.recipient,
            "messages": _pretty(copy_of.messages),
            "max_retries": str(copy_of.max_retries),
            "initial_retry_delay": _number(copy_of.initial_retry_delay),
            "retry_delay_multiple": _number(copy_of.retry_delay_multiple),
            "notification_disabled": copy_of.notification_disabled,
            "sample_event": form.get("sample_event") or SAMPLE_EVENT,
        }
    values: dict[str, Any] = {f: form.get(f, "") for f in ACTIVATION_FIELDS}
    values["notification_disabled"] = form.get("notification_disabled") == "on"
    values["sample_event"] = form.get("sample_event") or SAMPLE_EVENT
    return values


def _defaults() -> dict[str, Any]:
    fields = activations.ActivationSpec.model_fields
    return {
        "name": "", "description": "", "authentication": "", "recipient": "", "messages": "",
        "max_retries": str(fields["max_retries"].default),
        "initial_retry_delay": _number(fields["initial_retry_delay"].default),
        "retry_delay_multiple": _number(fields["retry_delay_multiple"].default),
        "notification_disabled": False,
        "sample_event": SAMPLE_EVENT,
    }


def _spec_of(values: dict[str, Any]) -> tuple[activations.ActivationSpec | None, list[FieldProblem]]:
    """Parse the form into a spec, or list every problem with its path."""
    problems: list[FieldProblem] = []
    data: dict[str, Any] = {
        "name": values["name"].strip(),
        "description": values["description"],
        "authentication": values["authentication"],
        "recipient": values["recipient"].strip(),
        "notification_disabled": bool(values["notification_disabled"]),
    }
    text = values["messages"].strip()
    if not text:
        problems.append(FieldProblem("messages", "required: a JSON array of 1-5 LINE message objects"))
    else:
        try:
            data["messages"] = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            problems.append(FieldProblem("messages", f"not valid JSON: {exc}"))
    for field, kind in (("max_retries", int), ("initial_retry_delay", float), ("retry_delay_multiple", float)):
        raw = str(values[field]).strip()
        if not raw:
            continue  # the default applies
        try:
            number = kind(raw)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            problems.append(FieldProblem(field, f"must be {what} (got {raw[:40]!r})"))
            continue
        if not math.isfinite(number):
            problems.append(FieldProblem(field, "must be a finite number"))
            continue
        data[field] = number
    try:
        spec = activations.parse_spec(data)
    except InvalidInput as exc:
        already = {p.path for p in problems}
        problems += [p for p in exc.problems if not (p.path in already or (p.path == "messages" and not text))]
        return None, problems
    if problems:
        return None, problems
    return spec, []


# -- the console -------------------------------------------------------------------------------


class Console:
    def __init__(self, ctx: Context, worker: Worker | None) -> None:
        self.ctx = ctx
        self.db = ctx.db
        self.worker = worker
        self.signer = _Signer()
        self.env = Environment(
            loader=FileSystemLoader(HERE / "console_templates"),
            autoescape=True,
            undefined=StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.filters["q"] = lambda v: quote(str(v), safe="")

    def now(self) -> float:
        return self.ctx.clock.now()

    def wake(self) -> None:
        if self.worker is not None:
            self.worker.wake()

    # -- responses -----------------------------------------------------------------------

    def base(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")) + PREFIX

    def render(
        self, request: Request, template: str, session: Session | None, *, status: int = 200, **values: Any
    ) -> HTMLResponse:
        flash = self.signer.unsign("flash", request.cookies.get(FLASH_COOKIE))
        html = self.env.get_template(template).render(
            base=self.base(request), session=session, csrf=session.csrf if session else "",
            flash=flash, **values,
        )
        response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
        if flash is not None:
            response.delete_cookie(FLASH_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    def redirect(self, request: Request, path: str, flash: str | None = None, kind: str = "ok") -> Response:
        response = RedirectResponse(self.base(request) + path, status_code=303, headers=SECURITY_HEADERS)
        if flash is not None:
            response.set_cookie(
                FLASH_COOKIE, self.signer.sign("flash", {"message": flash[:500], "kind": kind}),
                max_age=60, path=PREFIX, httponly=True, samesite="strict", secure=request.url.scheme == "https",
            )
        return response

    def not_found(self, request: Request, session: Session | None, message: str) -> _Bail:
        return _Bail(self.render(request, "error.html", session, status=404, title="Not found", message=message))

    # -- sessions ------------------------------------------------------------------------

    def session(self, request: Request) -> Session | None:
        payload = self.signer.unsign("session", request.cookies.get(SESSION_COOKIE))
        if payload is None:
            return None
        key, created, nonce, issued = (payload.get(k) for k in ("key", "created", "nonce", "issued"))
        if not (isinstance(key, str) and isinstance(nonce, str) and isinstance(created, int | float)
                and isinstance(issued, int | float)):
            return None
        if not 0 <= time.time() - issued < SESSION_SECONDS:
            return None
        if not any(k.name == key and k.revoked_at is None and k.created_at == created
                   for k in apikeys.list_all(self.db)):
            return None  # the key was revoked since
        return Session(key, float(created), nonce, self.signer.mac("csrf", nonce))

    def login_token(self, request: Request) -> tuple[str, str | None]:
        """The login form's CSRF token, and a new pre-login cookie value when there was none."""
        payload = self.signer.unsign("login", request.cookies.get(LOGIN_COOKIE))
        if payload and isinstance(payload.get("nonce"), str):
            return self.signer.mac("login", payload["nonce"]), None
        nonce = secrets.token_urlsafe(16)
        return self.signer.mac("login", nonce), self.signer.sign("login", {"nonce": nonce})

    def start_session(self, request: Request, key_name: str, target: str | None) -> Response:
        created = next(k.created_at for k in apikeys.list_all(self.db) if k.name == key_name and k.revoked_at is None)
        cookie = self.signer.sign("session", {
            "key": key_name, "created": created, "nonce": secrets.token_urlsafe(16), "issued": time.time(),
        })
        response = RedirectResponse(str(request.scope.get("root_path", "")) + _safe_next(target),
                                    status_code=303, headers=SECURITY_HEADERS)
        response.set_cookie(SESSION_COOKIE, cookie, max_age=SESSION_SECONDS, path=PREFIX, httponly=True,
                            samesite="strict", secure=request.url.scheme == "https")
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    # -- dependencies --------------------------------------------------------------------

    def require_session(self, request: Request) -> Session:
        session = self.session(request)
        if session is None:
            path = request.url.path.removeprefix(str(request.scope.get("root_path", "")))
            target = path + (f"?{request.url.query}" if request.url.query else "")
            login = self.base(request) + "/login?" + urlencode({"next": target})
            raise _Bail(RedirectResponse(login, status_code=303, headers=SECURITY_HEADERS))
        return session

    async def read_form(self, request: Request) -> Form:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/x-www-form-urlencoded":
            return {}
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            raise _Bail(HTMLResponse("form too large", status_code=413, headers=SECURITY_HEADERS))
        parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {k: v[0] for k, v in parsed.items()}

    async def require_post(self, request: Request) -> tuple[Session, Form]:
        session = await run_in_threadpool(self.require_session, request)
        form = await self.read_form(request)
        if not hmac.compare_digest(form.get("csrf", ""), session.csrf):
            raise _Bail(self.render(request, "error.html", session, status=403, title="Forbidden",
                                    message="The form's CSRF token is missing or stale: reload the page and retry."))
        return session, form

    # -- lookups -------------------------------------------------------------------------

    def activation(self, request: Request, session: Session, name: str) -> activations.Activation:
        try:
            return activations.get(self.db, name)
        except NotFound as exc:
            raise self.not_found(request, session, str(exc)) from None


def _console(request: Request) -> Console:
    console = request.app.state.console
    assert isinstance(console, Console)
    return console


def _require_session(request: Request) -> Session:
    """Dependency: the console session, or a redirect to the login page."""
    return _console(request).require_session(request)


async def _require_post(request: Request) -> tuple[Session, Form]:
    """Dependency: the session and the posted form, whose CSRF token must match (else 403)."""
    return await _console(request).require_post(request)


Auth = Annotated[Session, Depends(_require_session)]
Post = Annotated[tuple[Session, Form], Depends(_require_post)]


def mount_console(app: FastAPI, ctx: Context, worker: Worker | None = None) -> Console:
    """Add the console's routes (``/console``) and its stylesheet to ``app``."""
    console = Console(ctx, worker)
    app.state.console = console
    router = APIRouter(prefix=PREFIX, include_in_schema=False)
    db = ctx.db

    async def bail(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Bail)
        return exc.response

    app.add_exception_handler(_Bail, bail)

    # -- login -----------------------------------------------------------------------------

    @router.get("")
    @router.get("/")
    def home(request: Request) -> Response:
        return RedirectResponse(console.base(request) + "/activations", status_code=303)

    def login_page(request: Request, *, error: str | None = None, status: int = 200) -> Response:
        token, cookie = console.login_token(request)
        response = console.render(request, "login.html", None, status=status, login_csrf=token, error=error,
                                  next=request.query_params.get("next", ""))
        if cookie:
            response.set_cookie(LOGIN_COOKIE, cookie, max_age=3600, path=PREFIX, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https")
        return response

    @router.get("/login")
    def login_form(request: Request) -> Response:
        if console.session(request) is not None:
            target = _safe_next(request.query_params.get("next"))
            return RedirectResponse(str(request.scope.get("root_path", "")) + target, status_code=303)
        return login_page(request)

    @router.post("/login")
    async def login(request: Request) -> Response:
        form = await console.read_form(request)
        token, _ = console.login_token(request)
        if LOGIN_COOKIE not in request.cookies or not hmac.compare_digest(form.get("csrf", ""), token):
            return login_page(request, error="The login form expired: please try again.", status=403)
        key = form.get("api_key", "").strip()
        name = await run_in_threadpool(apikeys.verify, db, key) if key else None
        if name is None:
            return login_page(request, error="That API key is not valid (or was revoked).", status=401)
        return await run_in_threadpool(console.start_session, request, name, form.get("next"))

    @router.post("/logout")
    def logout(request: Request, _: Post) -> Response:
        response = console.redirect(request, "/login", "Logged out.")
        response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict")
        return response

    # -- authentications -------------------------------------------------------------------

    def authentications_page(request: Request, session: Session, *, form: dict[str, Any] | None = None,
                             errors: dict[str, list[str]] | None = None, status: int = 200) -> Response:
        auths = authentications.list_all(db)
        return console.render(
            request, "authentications.html", session, status=status, section="authentications",
            auths=auths, iso=activation_table.iso,
            form=form or {"name": "", "channel_id": "", "api_url": DEFAULT_API_URL, "skip_test": False},
            errors=errors or {},
        )

    @router.get("/authentications")
    def authentications_list(request: Request, session: Auth) -> Response:
        return authentications_page(request, session)

    @router.post("/authentications")
    async def authentication_create(request: Request, post: Post) -> Response:
        session, form = post
        name = form.get("name", "").strip()
        token = form.get("access_token", "").strip()
        channel_id = form.get("channel_id", "").strip()
        channel_secret = form.get("channel_secret", "").strip()
        api_url = form.get("api_url", "").strip() or DEFAULT_API_URL
        skip_test = form.get("skip_test") == "on"
        kept = {"name": name, "channel_id": channel_id, "api_url": api_url, "skip_test": skip_test}
        errors: dict[str, list[str]] = {}
        try:
            check_name(name)
            if await run_in_threadpool(lambda: any(a.name == name for a in authentications.list_all(db))):
                raise AlreadyExists(f"authentication {name!r} already exists")
            authentications.check_api_url(api_url)
            if any(c in value for value in (token, channel_id, channel_secret) for c in "\r\n"):
                # aiohttp refuses a header with a line break with a bare ValueError (a 500 otherwise)
                raise InvalidInput.single("credentials", "a token, channel ID or secret is one line: no line breaks")
            creds = authentications.Credentials.from_options(token or None, channel_id or None,
                                                             channel_secret or None)
            bot = None
            if not skip_test:
                bot = await authentications.test_credentials_at(api_url, creds, ctx.clock, ctx.timeouts)
            await run_in_threadpool(lambda: authentications.create(
                db, ctx.vault, name=name, credentials=creds, api_url=api_url, bot=bot, now=console.now()))
        except InvalidInput as exc:
            errors = _group(exc.problems)
        except AlreadyExists as exc:
            errors = {"name": [str(exc)]}
        except CredentialsRejected as exc:
            errors = {"credentials": [str(exc)]}
        if errors:
            return await run_in_threadpool(
                lambda: authentications_page(request, session, form=kept, errors=errors, status=422))
        tested = "stored without a test" if skip_test else "LINE accepted the credentials"
        return console.redirect(request, "/authentications", f"Authentication {name!r} created ({tested}).")

    @router.post("/authentications/{name}/test")
    async def authentication_test(request: Request, name: str, _: Post) -> Response:
        try:
            auth = await run_in_threadpool(authentications.get, db, name)
            creds = await run_in_threadpool(authentications.load_credentials, db, ctx.vault, auth)
            bot = await authentications.test_credentials_at(auth.api_url, creds, ctx.clock, ctx.timeouts)
        except (NotFound, CredentialsRejected) as exc:
            return console.redirect(request, "/authentications", f"Test of {name!r} failed: {exc}", "error")
        except ValueError:  # aiohttp's guard against a line break in a header (never echo the value)
            return console.redirect(request, "/authentications", f"Test of {name!r} failed: the stored "
                                    "credentials cannot be sent as an HTTP header (a line break?)", "error")
        who = bot.display_name or bot.user_id or "unknown bot"
        return console.redirect(request, "/authentications", f"LINE accepted {name!r}: {who}.")

    @router.post("/authentications/{name}/delete")
    def authentication_delete(request: Request, name: str, post: Post) -> Response:
        session, form = post
        if form.get("confirm") != "yes":
            return console.render(request, "confirm.html", session, section="authentications",
                                  message=f"Delete the authentication {name!r}? Its stored credentials are erased.",
                                  action=f"/authentications/{quote(name, safe='')}/delete",
                                  back="/authentications")
        try:
            authentications.delete(db, name)
        except (NotFound, InvalidInput) as exc:
            return console.redirect(request, "/authentications", str(exc), "error")
        return console.redirect(request, "/authentications", f"Authentication {name!r} deleted.")

    # -- activations -----------------------------------------------------------------------

    def activation_form(request: Request, session: Session, values: dict[str, Any], *, editing: str | None,
                        problems: list[FieldProblem] | None = None, preview: dict[str, Any] | None = None,
                        status: int = 200) -> Response:
        return console.render(
            request, "activation_form.html", session, status=status, section="activations",
            values=values, editing=editing, problems=[str(p) for p in problems or []],
            errors=_group(problems or []), preview=preview,
            auths=authentications.list_all(db), others=[a.name for a in activations.list_all(db)],
        )

    def preview_of(values: dict[str, Any]) -> dict[str, Any]:
        """What the form's (unsaved) activation would send for the sample event."""
        spec, problems = _spec_of({**values, "name": values["name"].strip() or "preview"})
        if spec is None:
            return {"error": "Fix the form first: " + "; ".join(str(p) for p in problems[:5])}
        try:
            event = orjson.loads(values["sample_event"])
        except orjson.JSONDecodeError as exc:
            return {"error": f"The sample event is not valid JSON: {exc}"}
        if not isinstance(event, dict):
            return {"error": "The sample event must be a JSON object of profile attributes."}
        try:
            recipient, body = activations.compile_spec(spec).render(event)
        except activations.RenderError as exc:
            return {"error": f"This event would be recorded as failed: {exc}"}
        try:
            api_url = authentications.get(db, spec.authentication).api_url
        except NotFound:
            api_url = DEFAULT_API_URL
        return {"recipient": recipient, "url": api_url + PUSH_PATH, "body": _pretty(orjson.loads(body))}

    def rows() -> list[dict[str, Any]]:
        out = []
        for a in activations.list_all(db):
            counts = activations.counts(db, a.name)
            out.append({"a": a, "queued": counts.get("queued", 0) + counts.get("retrying", 0),
                        "paused_events": counts.get("paused", 0), "delivered": counts.get("delivered", 0),
                        "failed": counts.get("failed", 0)})
        return out

    @router.get("/activations")
    def activations_list(request: Request, session: Auth) -> Response:
        return console.render(request, "activations.html", session, section="activations", rows=rows())

    @router.get("/activations/new")
    def activation_new(request: Request, session: Auth, copy_from: str | None = None) -> Response:
        if copy_from:
            source = console.activation(request, session, copy_from)
            return activation_form(request, session, _form_values({}, copy_of=source.spec) | {"copy_from": copy_from},
                                   editing=None)
        values = _defaults()
        auths = authentications.list_all(db)
        if len(auths) == 1:
            values["authentication"] = auths[0].name
        return activation_form(request, session, values, editing=None)

    @router.post("/activations")
    def activation_create(request: Request, post: Post) -> Response:
        session, form = post
        action = form.get("action", "create")
        if action == "copy":
            source_name = form.get("copy_from", "")
            if not source_name:
                values = _form_values(form)
                return activation_form(request, session, values, editing=None, status=422,
                                       problems=[FieldProblem("copy_from", "choose an activation to copy")])
            source = console.activation(request, session, source_name)
            values = _form_values(form, copy_of=source.spec) | {"copy_from": source_name}
            return activation_form(request, session, values, editing=None)
        values = _form_values(form) | {"copy_from": form.get("copy_from", "")}
        if action == "preview":
            return activation_form(request, session, values, editing=None, preview=preview_of(values))
        spec, problems = _spec_of(values)
        if spec is not None:
            try:
                activations.create(db, spec, now=console.now())
            except AlreadyExists as exc:
                problems = [FieldProblem("name", str(exc))]
            except InvalidInput as exc:
                problems = list(exc.problems)
        if spec is None or problems:
            return activation_form(request, session, values, editing=None, problems=problems, status=422)
        return console.redirect(request, f"/activations/{quote(spec.name, safe='')}",
                                f"Triggered activation {spec.name!r} created.")

    @router.get("/activations/{name}/edit")
    def activation_edit(request: Request, name: str, session: Auth) -> Response:
        spec = console.activation(request, session, name).spec
        values = _form_values({"name": name}, copy_of=spec)
        return activation_form(request, session, values, editing=name)

    @router.post("/activations/{name}/edit")
    def activation_update(request: Request, name: str, post: Post) -> Response:
        session, form = post
        console.activation(request, session, name)
        values = _form_values(form) | {"name": name}
        if form.get("action") == "preview":
            return activation_form(request, session, values, editing=name, preview=preview_of(values))
        spec, problems = _spec_of(values)
        if spec is not None:
            try:
                activations.update(db, spec, now=console.now())
            except InvalidInput as exc:
                problems = list(exc.problems)
            except NotFound as exc:
                raise console.not_found(request, session, str(exc)) from None
        if spec is None or problems:
            return activation_form(request, session, values, editing=name, problems=problems, status=422)
        return console.redirect(request, f"/activations/{quote(name, safe='')}",
                                f"Triggered activation {name!r} updated.")

    @router.post("/activations/{name}/pause")
    def activation_pause(request: Request, name: str, post: Post) -> Response:
        session, _ = post
        console.activation(request, session, name)
        activations.pause(db, name, f"paused in the console by {session.key}", now=console.now())
        if console.worker is not None:
            console.worker.hold_activation(name)
        return console.redirect(request, f"/activations/{quote(name, safe='')}", f"{name!r} paused.")

    @router.post("/activations/{name}/resume")
    def activation_resume(request: Request, name: str, post: Post) -> Response:
        session, _ = post
        console.activation(request, session, name)
        activations.resume(db, name, now=console.now())
        console.wake()
        return console.redirect(request, f"/activations/{quote(name, safe='')}", f"{name!r} resumed.")

    @router.post("/activations/{name}/delete")
    def activation_delete(request: Request, name: str, post: Post) -> Response:
        session, form = post
        console.activation(request, session, name)
        if form.get("confirm") != "yes":
            return console.render(request, "confirm.html", session, section="activations",
                                  message=f"Delete the triggered activation {name!r} and its activation table?",
                                  action=f"/activations/{quote(name, safe='')}/delete",
                                  back=f"/activations/{quote(name, safe='')}")
        activations.delete(db, name)
        return console.redirect(request, "/activations", f"Triggered activation {name!r} deleted.")

    @router.post("/activations/{name}/replay")
    def activation_replay(request: Request, name: str, post: Post) -> Response:
        session, form = post
        console.activation(request, session, name)
        event_id = form.get("event_id") or None
        result = outbox.replay_failed(db, name, [event_id] if event_id else None, now=console.now())
        console.wake()
        back = f"/activations/{quote(name, safe='')}"
        if event_id:
            back += f"/events/{quote(event_id, safe='')}"
        if result.not_replayable:
            return console.redirect(request, back, "Not replayed: the event is not failed, or its retry key is "
                                    "older than 24 hours (LINE has forgotten it, a resend could deliver twice).",
                                    "error")
        return console.redirect(request, back, f"{len(result.replayed)} failed event(s) queued again "
                                "with their retry keys.")

    # -- activation table -----------------------------------------------------------------

    def filters_of(request: Request) -> tuple[activation_table.Filters, dict[str, str], list[str]]:
        q = request.query_params
        notes: list[str] = []
        state = q.get("state") or None
        if state not in (None, *STATES):
            notes.append(f"unknown state {state!r} ignored")
            state = None
        delivered = {"yes": True, "no": False}.get(q.get("delivered", ""))
        status_code = None
        raw_code = q.get("status_code", "").strip()
        if raw_code:
            if raw_code.isascii() and raw_code.isdigit() and 100 <= int(raw_code) <= 599:
                status_code = int(raw_code)
            else:
                notes.append(f"status code {raw_code[:20]!r} ignored: give 100-599")
        shown = {"state": state or "", "delivered": q.get("delivered", "") if delivered is not None else "",
                 "status_code": str(status_code) if status_code else ""}
        return activation_table.Filters(state=state, delivered=delivered, status_code=status_code), shown, notes

    @router.get("/activations/{name}")
    def activation_page(request: Request, name: str, session: Auth) -> Response:
        activation = console.activation(request, session, name)
        filters, shown, notes = filters_of(request)
        before_raw = request.query_params.get("before", "")
        before = int(before_raw) if before_raw.isascii() and before_raw.isdigit() and len(before_raw) <= 18 else None
        entries, next_before = activation_table.page(db, name, filters=filters, limit=PAGE_SIZE, before=before)
        query = {k: v for k, v in shown.items() if v}
        counts = activations.counts(db, name)
        return console.render(
            request, "activation_table.html", session, section="activations", activation=activation,
            entries=entries, counts=counts, filters=shown, notes=notes, states=STATES, paged=before is not None,
            older=urlencode({**query, "before": next_before}) if next_before else None,
            newest=urlencode(query), csv_query=urlencode(query),
        )

    @router.get("/activations/{name}/table.csv")
    def activation_csv(request: Request, name: str, session: Auth) -> Response:
        console.activation(request, session, name)
        filters, _, _ = filters_of(request)
        rows = activation_table.iterate(db, name, filters=filters)
        return StreamingResponse(activation_table.csv_chunks(rows), media_type="text/csv",
                                 headers={"Content-Disposition": f'attachment; filename="{name}.csv"',
                                          "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"})

    @router.get("/activations/{name}/events/{event_id:path}")
    def event_page(request: Request, name: str, event_id: str, session: Auth) -> Response:
        activation = console.activation(request, session, name)
        try:
            entry = activation_table.event(db, name, event_id)
        except NotFound as exc:
            raise console.not_found(request, session, str(exc)) from None
        body = _pretty(entry["request_body"]) if entry.get("request_body") is not None else None
        return console.render(request, "event.html", session, section="activations", activation=activation,
                              e=entry, body=body)

    app.include_router(router)
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "console_static"), name="console_static")
    return console
