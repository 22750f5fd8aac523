"""The console's routes: each states the role it needs, reads its form, calls the product, answers.

Roles (the API key's): ``read`` sees the triggered activations and their activation tables;
``operator`` also creates, edits, copies, pauses, resumes, replays and deletes activations;
``admin`` also manages authentications; ``trigger`` cannot log in. A page shows only the
buttons its viewer's role allows, and a route refuses the rest with a 403 page naming the
role it needs.

The one rule: a route touches a running worker only from the event loop's thread (the
database work runs on the thread pool first), because the worker's wake-up is an
``asyncio.Event``, which is not safe to set from another thread.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.staticfiles import StaticFiles

from ... import activation_table, activations, apikeys, authentications
from ...context import Context
from ...delivery import outbox
from ...delivery.line_client import DEFAULT_API_URL, PUSH_PATH
from ...errors import (
    AlreadyExists,
    ApiUrlNotAllowed,
    ConfigurationError,
    CredentialsRejected,
    FieldProblem,
    InvalidInput,
    NotFound,
)
from ...naming import check_name
from . import forms
from .forms import Form
from .pages import (
    HERE,
    LOGIN_COOKIE,
    PREFIX,
    SECURITY_HEADERS,
    SESSION_COOKIE,
    Console,
    ConsoleRoute,
    WorkerControl,
    console_of,
)
from .sessions import CONSOLE_ROLES, Role, Session, allows, role_of

PAGE_SIZE = 50

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)


@dataclass(frozen=True, slots=True)
class Posted:
    session: Session
    form: Form


def _viewer(need: Role) -> Callable[[Request], Session]:
    def dependency(request: Request) -> Session:
        return console_of(request).require(request, need)

    return dependency


def _poster(need: Role) -> Callable[[Request], Awaitable[Posted]]:
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
Reader = Annotated[Session, Depends(_viewer("read"))]
Operator = Annotated[Session, Depends(_viewer("operator"))]
Admin = Annotated[Session, Depends(_viewer("admin"))]
ReaderPost = Annotated[Posted, Depends(_poster("read"))]
OperatorPost = Annotated[Posted, Depends(_poster("operator"))]
AdminPost = Annotated[Posted, Depends(_poster("admin"))]


def _q(value: str) -> str:
    return quote(value, safe="")


def _plain(console: Console, request: Request, name: str) -> str:
    """A name from the URL; one with a NUL names nothing (and no store may see it)."""
    if "\0" in name:
        raise console.error(request, 404, "Not found", "No such name (it holds a NUL character).")
    return name


# -- login -------------------------------------------------------------------------------------


@router.get("")
@router.get("/")
def home(request: Request, console: C) -> Response:
    return RedirectResponse(console.base(request) + "/activations", status_code=303)


def _login_page(request: Request, console: Console, *, error: str | None = None, status: int = 200) -> Response:
    token, cookie = console.signer.login_token(request.cookies.get(LOGIN_COOKIE))
    response = console.render(
        request,
        "login.html",
        None,
        status=status,
        login_csrf=token,
        error=error,
        next=request.query_params.get("next", "")[:2000],
    )
    if cookie:
        response.set_cookie(
            LOGIN_COOKIE,
            cookie,
            max_age=3600,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


@router.get("/login")
def login_form(request: Request, console: C) -> Response:
    if console.sessions.current(request.cookies.get(SESSION_COOKIE)) is not None:
        target = forms.safe_next(request.query_params.get("next"), PREFIX + "/activations")
        return RedirectResponse(str(request.scope.get("root_path", "")) + target, status_code=303)
    return _login_page(request, console)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _check_login(console: Console, request: Request, form: Form) -> Response | str:
    """The key's name when the form logs in; else the login page saying why (and counting a failure)."""
    token, _ = console.signer.login_token(request.cookies.get(LOGIN_COOKIE))
    if LOGIN_COOKIE not in request.cookies or not hmac.compare_digest(form.get("csrf", ""), token):
        return _login_page(request, console, error="The login form expired: please try again.", status=403)
    wait = console.throttle.wait(_client(request))
    if wait:
        page = _login_page(
            request, console, status=429, error=f"Too many failed logins from your address: try again in {wait} s."
        )
        page.headers["Retry-After"] = str(wait)
        return page
    presented = form.get("api_key", "").strip()
    name = apikeys.verify(console.db, presented) if presented else None
    key = console.sessions.active_key(name) if name else None
    if key is None:
        console.throttle.failed(_client(request))
        return _login_page(request, console, error="That API key is not valid (or was revoked).", status=401)
    if not allows(role_of(key), "read"):
        return _login_page(
            request,
            console,
            status=403,
            error=(
                f"The key {key.name!r} has the role {role_of(key)!r}, which cannot use the console: "
                f"log in with a key of role {', '.join(CONSOLE_ROLES)}."
            ),
        )
    console.throttle.succeeded(_client(request))
    return key.name


@router.post("/login")
async def login(request: Request, console: C) -> Response:
    form = await forms.read_form(request)
    checked = await run_in_threadpool(_check_login, console, request, form)
    if isinstance(checked, Response):
        return checked
    cookie = await run_in_threadpool(console.sessions.start, checked)
    target = forms.safe_next(form.get("next"), PREFIX + "/activations")
    response = RedirectResponse(
        str(request.scope.get("root_path", "")) + target, status_code=303, headers=SECURITY_HEADERS
    )
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=int(console.sessions.seconds),
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(LOGIN_COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


@router.post("/logout")
def logout(request: Request, console: C, _: ReaderPost) -> Response:
    console.sessions.end(request.cookies.get(SESSION_COOKIE))  # the cookie is worthless from now on
    response = console.redirect(request, "/login", "Logged out.")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX, httponly=True, samesite="strict")
    return response


# -- authentications (admin) -------------------------------------------------------------------


def _authentications_page(
    request: Request,
    console: Console,
    session: Session,
    *,
    form: dict[str, Any] | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Response:
    return console.render(
        request,
        "authentications.html",
        session,
        status=status,
        section="authentications",
        auths=authentications.list_all(console.db),
        iso=activation_table.iso,
        form=form or {"name": "", "channel_id": "", "api_url": DEFAULT_API_URL, "skip_test": False},
        errors=errors or {},
    )


@router.get("/authentications")
def authentications_list(request: Request, console: C, session: Admin) -> Response:
    return _authentications_page(request, console, session)


async def _create_authentication(console: Console, f: forms.AuthenticationForm) -> None:
    db, ctx = console.db, console.ctx
    check_name(f.name)
    # Refused before LINE is asked: a test of credentials that cannot be stored is wasted.
    if await run_in_threadpool(lambda: any(a.name == f.name for a in authentications.list_all(db))):
        raise AlreadyExists(f"authentication {f.name!r} already exists")
    authentications.check_api_url(f.api_url, ctx.api_hosts)
    if any(c in value for value in (f.access_token, f.channel_id, f.channel_secret) for c in "\r\n"):
        raise InvalidInput.single("credentials", "a token, channel ID or secret is one line: no line breaks")
    creds = authentications.Credentials.from_options(
        f.access_token or None, f.channel_id or None, f.channel_secret or None
    )
    bot = None
    if not f.skip_test:
        bot = await authentications.test_credentials_at(f.api_url, creds, ctx.clock, ctx.timeouts, ctx.api_hosts)
    await run_in_threadpool(
        lambda: authentications.create(
            db, ctx.vault, name=f.name, credentials=creds, api_url=f.api_url, bot=bot, now=console.now()
        )
    )


@router.post("/authentications")
async def authentication_create(request: Request, console: C, post: AdminPost) -> Response:
    f = forms.AuthenticationForm.of(post.form, DEFAULT_API_URL)
    try:
        await _create_authentication(console, f)
    except InvalidInput as exc:
        errors = forms.group(exc.problems)
    except AlreadyExists as exc:
        errors = {"name": [str(exc)]}
    except CredentialsRejected as exc:
        errors = {"credentials": [str(exc)]}
    else:
        tested = "stored without a test" if f.skip_test else "LINE accepted the credentials"
        return console.redirect(request, "/authentications", f"Authentication {f.name!r} created ({tested}).")
    return await run_in_threadpool(
        lambda: _authentications_page(request, console, post.session, form=f.kept(), errors=errors, status=422)
    )


async def _test_authentication(console: Console, name: str) -> str:
    """What the Test button says: who LINE says the credentials belong to, or why the test failed."""
    ctx = console.ctx
    try:
        auth = await run_in_threadpool(authentications.get, console.db, name)
        creds = await run_in_threadpool(authentications.load_credentials, console.db, ctx.vault, auth)
        bot = await authentications.test_credentials_at(auth.api_url, creds, ctx.clock, ctx.timeouts, ctx.api_hosts)
    except (NotFound, CredentialsRejected, ApiUrlNotAllowed) as exc:
        raise _Failed(f"Test of {name!r} failed: {exc}") from None
    except ConfigurationError:
        raise _Failed(
            f"Test of {name!r} failed: its stored credentials cannot be decrypted with this "
            "server's secret key (LINEOA_EXPORT_SECRET_KEY or the key file changed since they were "
            "stored). Restore that key, or delete this authentication and create it again."
        ) from None
    except ValueError:  # aiohttp's guard against a line break in a header (never echo the value)
        raise _Failed(
            f"Test of {name!r} failed: the stored credentials cannot be sent as an HTTP header (a line break?)"
        ) from None
    return f"LINE accepted {name!r}: {bot.display_name or bot.user_id or 'unknown bot'}."


class _Failed(Exception):
    """A sentence for the user: why an action did not happen."""


@router.post("/authentications/{name}/test")
async def authentication_test(request: Request, name: str, console: C, _: AdminPost) -> Response:
    try:
        said = await _test_authentication(console, _plain(console, request, name))
    except _Failed as exc:
        return console.redirect(request, "/authentications", str(exc), "error")
    return console.redirect(request, "/authentications", said)


@router.post("/authentications/{name}/delete")
def authentication_delete(request: Request, name: str, console: C, post: AdminPost) -> Response:
    name = _plain(console, request, name)
    if post.form.get("confirm") != "yes":
        return console.render(
            request,
            "confirm.html",
            post.session,
            section="authentications",
            message=f"Delete the authentication {name!r}? Its stored credentials are erased.",
            action=f"/authentications/{_q(name)}/delete",
            back="/authentications",
        )
    try:
        authentications.delete(console.db, name)
    except (NotFound, InvalidInput) as exc:
        return console.redirect(request, "/authentications", str(exc), "error")
    return console.redirect(request, "/authentications", f"Authentication {name!r} deleted.")


# -- activations -------------------------------------------------------------------------------


def _activation_form(
    request: Request,
    console: Console,
    session: Session,
    values: dict[str, Any],
    *,
    editing: str | None,
    problems: list[FieldProblem] | None = None,
    preview: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    return console.render(
        request,
        "activation_form.html",
        session,
        status=status,
        section="activations",
        values=values,
        editing=editing,
        problems=[str(p) for p in problems or []],
        errors=forms.group(problems or []),
        preview=preview,
        auths=authentications.list_all(console.db),
        others=[a.name for a in activations.list_all(console.db)],
    )


def _preview(console: Console, values: dict[str, Any]) -> dict[str, Any]:
    """What the form's (unsaved) activation would send for the sample event."""
    spec, problems = forms.spec_of({**values, "name": values["name"].strip() or "preview"})
    if spec is None:
        return {"error": "Fix the form first: " + "; ".join(str(p) for p in problems[:5])}
    event = forms.sample_event(values)
    if isinstance(event, str):
        return {"error": event}
    try:
        recipient, body = activations.compile_spec(spec).render(event)
    except activations.RenderError as exc:
        return {"error": f"This event would be recorded as failed: {exc}"}
    try:
        api_url = authentications.get(console.db, spec.authentication).api_url
    except NotFound:
        api_url = DEFAULT_API_URL
    return {"recipient": recipient, "url": api_url + PUSH_PATH, "body": forms.pretty(orjson.loads(body))}


def _rows(console: Console) -> list[dict[str, Any]]:
    out = []
    for a in activations.list_all(console.db):
        counts = activations.counts(console.db, a.name)
        out.append(
            {
                "a": a,
                "queued": counts.get("queued", 0) + counts.get("retrying", 0),
                "paused_events": counts.get("paused", 0),
                "delivered": counts.get("delivered", 0),
                "failed": counts.get("failed", 0),
            }
        )
    return out


@router.get("/activations")
def activations_list(request: Request, console: C, session: Reader) -> Response:
    return console.render(request, "activations.html", session, section="activations", rows=_rows(console))


@router.get("/activations/new")
def activation_new(request: Request, console: C, session: Operator, copy_from: str | None = None) -> Response:
    if copy_from:
        source = console.activation(request, copy_from)
        values = forms.copied_values(source.spec, {}) | {"copy_from": copy_from}
        return _activation_form(request, console, session, values, editing=None)
    values = forms.default_values()
    auths = authentications.list_all(console.db)
    if len(auths) == 1:
        values["authentication"] = auths[0].name
    return _activation_form(request, console, session, values, editing=None)


def _copy(request: Request, console: Console, post: Posted) -> Response:
    source_name = post.form.get("copy_from", "")
    if not source_name:
        return _activation_form(
            request,
            console,
            post.session,
            forms.posted_values(post.form),
            editing=None,
            status=422,
            problems=[FieldProblem("copy_from", "choose an activation to copy")],
        )
    source = console.activation(request, source_name)
    values = forms.copied_values(source.spec, post.form) | {"copy_from": source_name}
    return _activation_form(request, console, post.session, values, editing=None)


def _saved(console: Console, values: dict[str, Any], *, editing: str | None) -> list[FieldProblem]:
    """Create (or update ``editing``) from the form; the problems when it was not saved."""
    spec, problems = forms.spec_of(values)
    if spec is None:
        return problems
    try:
        if editing is None:
            activations.create(console.db, spec, now=console.now())
        else:
            activations.update(console.db, spec, now=console.now())
    except AlreadyExists as exc:
        return [FieldProblem("name", str(exc))]
    except InvalidInput as exc:
        return list(exc.problems)
    return []


@router.post("/activations")
def activation_create(request: Request, console: C, post: OperatorPost) -> Response:
    action = post.form.get("action", "create")
    if action == "copy":
        return _copy(request, console, post)
    values = forms.posted_values(post.form) | {"copy_from": post.form.get("copy_from", "")}
    if action == "preview":
        return _activation_form(request, console, post.session, values, editing=None, preview=_preview(console, values))
    problems = _saved(console, values, editing=None)
    if problems:
        return _activation_form(request, console, post.session, values, editing=None, problems=problems, status=422)
    name = values["name"].strip()
    return console.redirect(request, f"/activations/{_q(name)}", f"Triggered activation {name!r} created.")


@router.get("/activations/{name}/edit")
def activation_edit(request: Request, name: str, console: C, session: Operator) -> Response:
    spec = console.activation(request, name).spec
    return _activation_form(request, console, session, forms.copied_values(spec, {"name": name}), editing=name)


@router.post("/activations/{name}/edit")
def activation_update(request: Request, name: str, console: C, post: OperatorPost) -> Response:
    console.activation(request, name)
    values = forms.posted_values(post.form) | {"name": name}
    if post.form.get("action") == "preview":
        return _activation_form(request, console, post.session, values, editing=name, preview=_preview(console, values))
    problems = _saved(console, values, editing=name)
    if problems:
        return _activation_form(request, console, post.session, values, editing=name, problems=problems, status=422)
    return console.redirect(request, f"/activations/{_q(name)}", f"Triggered activation {name!r} updated.")


@router.post("/activations/{name}/pause")
async def activation_pause(request: Request, name: str, console: C, post: OperatorPost) -> Response:
    def pause() -> None:
        console.activation(request, name)
        activations.pause(console.db, name, f"paused in the console by {post.session.key}", now=console.now())

    await run_in_threadpool(pause)
    if console.worker is not None:
        console.worker.hold_activation(name)  # on the loop's thread: see the module's rule
    return console.redirect(request, f"/activations/{_q(name)}", f"{name!r} paused.")


@router.post("/activations/{name}/resume")
async def activation_resume(request: Request, name: str, console: C, _: OperatorPost) -> Response:
    def resume() -> None:
        console.activation(request, name)
        activations.resume(console.db, name, now=console.now())

    await run_in_threadpool(resume)
    if console.worker is not None:
        console.worker.wake()
    return console.redirect(request, f"/activations/{_q(name)}", f"{name!r} resumed.")


@router.post("/activations/{name}/delete")
def activation_delete(request: Request, name: str, console: C, post: OperatorPost) -> Response:
    console.activation(request, name)
    if post.form.get("confirm") != "yes":
        return console.render(
            request,
            "confirm.html",
            post.session,
            section="activations",
            message=f"Delete the triggered activation {name!r} and its activation table?",
            action=f"/activations/{_q(name)}/delete",
            back=f"/activations/{_q(name)}",
        )
    activations.delete(console.db, name)
    return console.redirect(request, "/activations", f"Triggered activation {name!r} deleted.")


@router.post("/activations/{name}/replay")
async def activation_replay(request: Request, name: str, console: C, post: OperatorPost) -> Response:
    event_id = post.form.get("event_id") or None

    def replay() -> outbox.Replay:
        console.activation(request, name)
        return outbox.replay_failed(console.db, name, [event_id] if event_id else None, now=console.now())

    result = await run_in_threadpool(replay)
    if console.worker is not None:
        console.worker.wake()
    back = f"/activations/{_q(name)}" + (f"/events/{_q(event_id)}" if event_id else "")
    if result.not_replayable:
        return console.redirect(
            request,
            back,
            "Not replayed: the event is not failed, or its retry key is "
            "older than 24 hours (LINE has forgotten it, a resend could deliver twice).",
            "error",
        )
    return console.redirect(
        request, back, f"{len(result.replayed)} failed event(s) queued again with their retry keys."
    )


# -- the activation table (read) ---------------------------------------------------------------


@router.get("/activations/{name}")
def activation_page(request: Request, name: str, console: C, session: Reader) -> Response:
    activation = console.activation(request, name)
    table = forms.table_query(request.query_params)
    entries, next_before = activation_table.page(
        console.db, name, filters=table.filters, limit=PAGE_SIZE, before=table.before
    )
    query = {k: v for k, v in table.shown.items() if v}
    return console.render(
        request,
        "activation_table.html",
        session,
        section="activations",
        activation=activation,
        entries=entries,
        counts=activations.counts(console.db, name),
        filters=table.shown,
        notes=table.notes,
        states=forms.STATES,
        paged=table.before is not None,
        older=urlencode({**query, "before": next_before}) if next_before else None,
        newest=urlencode(query),
        csv_query=urlencode(query),
    )


@router.get("/activations/{name}/table.csv")
def activation_csv(request: Request, name: str, console: C, _: Reader) -> Response:
    console.activation(request, name)
    rows = activation_table.iterate(console.db, name, filters=forms.table_query(request.query_params).filters)
    return StreamingResponse(
        activation_table.csv_chunks(rows),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{_q(name)}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/activations/{name}/events/{event_id:path}")
def event_page(request: Request, name: str, event_id: str, console: C, session: Reader) -> Response:
    activation = console.activation(request, name)
    try:
        entry = activation_table.event(console.db, name, _plain(console, request, event_id))
    except NotFound as exc:
        raise console.error(request, 404, "Not found", str(exc)) from None
    body = forms.pretty(entry["request_body"]) if entry.get("request_body") is not None else None
    return console.render(
        request, "event.html", session, section="activations", activation=activation, e=entry, body=body
    )


@router.api_route("/{path:path}", methods=["GET", "POST"])
def unknown(request: Request, console: C) -> Response:
    raise console.error(request, 404, "Not found", "There is no console page at this address.")


def mount_console(app: FastAPI, ctx: Context, worker: WorkerControl | None = None) -> Console:
    """Add the console (``/console``: its pages and stylesheet) to ``app``; ``worker`` is woken by its actions."""
    console = Console(ctx, worker)
    app.state.console = console
    # The stylesheet first: the router's catch-all 404 page would otherwise answer for it.
    app.mount(PREFIX + "/static", StaticFiles(directory=HERE / "static"), name="console_static")
    app.include_router(router)
    return console
