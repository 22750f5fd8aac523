"""The console's routes: each states the role it needs, reads its form, calls the product, answers.

Roles (the API key's): ``read`` sees the triggered activations, their activation tables, previews and
overviews (:mod:`.overview`);
``operator`` also creates, edits, copies, pauses, resumes, replays and deletes activations;
``admin`` also manages authentications; ``trigger`` cannot log in. A page shows only the
buttons its viewer's role allows, and a route refuses the rest with a 403 page naming the
role it needs (the guards in its signature: :mod:`.guards`).

The one rule: a route does what it does through :class:`~lineoa_export.operations.Operations`
(``console.ops``), which checks the product's rules and tells a running worker; a route only
reads its form and says what happened in a page.
"""

from __future__ import annotations

import hmac
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from ... import activation_table, activations, apikeys
from ...delivery.line_client import DEFAULT_API_URL
from ...delivery.outbox import Replay
from ...errors import AlreadyExists, ConfigurationError, CredentialsRejected, FieldProblem, InvalidInput, NotFound
from . import chat_preview, forms, live
from .forms import Form
from .guards import Admin, AdminPost, C, Operator, OperatorPost, Posted, Reader, ReaderPost, plain, q
from .pages import LOGIN_COOKIE, PREFIX, SECURITY_HEADERS, SESSION_COOKIE, Console, ConsoleRoute
from .sessions import CONSOLE_ROLES, Session, allows, role_of

PAGE_SIZE = 50

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)


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
    verified = apikeys.verify(console.db, presented) if presented else None
    key = console.sessions.active_key(verified.name) if verified else None
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
def logout(request: Request, console: C, post: ReaderPost) -> Response:
    console.sessions.end(request.cookies.get(SESSION_COOKIE))  # the cookie is worthless from now on
    console.drafts.end(post.session)  # and tested credentials waiting for a name are dropped
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
        auths=console.ops.list_authentications(),
        iso=activation_table.iso,
        form=form or {"name": "", "channel_id": "", "api_url": DEFAULT_API_URL, "skip_test": False},
        errors=errors or {},
    )


@router.get("/authentications")
def authentications_list(request: Request, console: C, session: Admin) -> Response:
    return _authentications_page(request, console, session)


@router.post("/authentications")
async def authentication_create(request: Request, console: C, post: AdminPost) -> Response:
    f = forms.AuthenticationForm.of(post.form, DEFAULT_API_URL)
    try:
        await console.ops.create_authentication(
            f.name,
            access_token=f.access_token or None,
            channel_id=f.channel_id or None,
            channel_secret=f.channel_secret or None,
            api_url=f.api_url,
            skip_test=f.skip_test,
        )
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
    try:
        bot = await console.ops.test_authentication(name)
    except (NotFound, CredentialsRejected, ConfigurationError) as exc:
        raise _Failed(f"Test of {name!r} failed: {exc}.") from None
    return f"LINE accepted {name!r}: {bot.display_name or bot.user_id or 'unknown bot'}."


class _Failed(Exception):
    """A sentence for the user: why an action did not happen."""


@router.post("/authentications/{name}/test")
async def authentication_test(request: Request, name: str, console: C, _: AdminPost) -> Response:
    try:
        said = await _test_authentication(console, plain(console, request, name))
    except _Failed as exc:
        return console.redirect(request, "/authentications", str(exc), "error")
    return console.redirect(request, "/authentications", said)


@router.post("/authentications/{name}/rotate")
async def authentication_rotate(request: Request, name: str, console: C, post: AdminPost) -> Response:
    """Replace the stored secret with the one posted (a token, or the channel's new secret)."""
    name = plain(console, request, name)
    secret = post.form.get("secret", "").strip() or None
    auth = await run_in_threadpool(console.ops.get_authentication, name)
    token, channel_secret = (secret, None) if auth.kind == "access_token" else (None, secret)
    try:
        await console.ops.rotate_authentication(
            name, access_token=token, channel_secret=channel_secret, skip_test=post.form.get("skip_test") == "on"
        )
    except (InvalidInput, CredentialsRejected) as exc:
        return console.redirect(request, "/authentications", f"Credentials of {name!r} not rotated: {exc}", "error")
    return console.redirect(request, "/authentications", f"Credentials of {name!r} rotated.")


@router.post("/authentications/{name}/webhook")
def authentication_webhook(request: Request, name: str, console: C, post: AdminPost) -> Response:
    """Where LINE's verified webhooks are re-sent (empty: nowhere), and the channel secret that checks them."""
    name = plain(console, request, name)
    url = post.form.get("forward_webhook", "").strip() or None  # empty: as it was
    secret = post.form.get("channel_secret", "").strip() or None
    stop = post.form.get("stop_forwarding") == "on"
    try:
        console.ops.update_authentication(
            name, forward_webhook=None if stop else url, no_forward_webhook=stop, channel_secret=secret
        )
    except (InvalidInput, ConfigurationError) as exc:
        return console.redirect(request, "/authentications", f"Webhook of {name!r} not saved: {exc}", "error")
    return console.redirect(request, "/authentications", f"Webhook of {name!r} saved.")


@router.post("/authentications/{name}/delete")
def authentication_delete(request: Request, name: str, console: C, post: AdminPost) -> Response:
    name = plain(console, request, name)
    if post.form.get("confirm") != "yes":
        return console.render(
            request,
            "confirm.html",
            post.session,
            section="authentications",
            message=f"Delete the authentication {name!r}? Its stored credentials are erased.",
            action=f"/authentications/{q(name)}/delete",
            back="/authentications",
        )
    try:
        console.ops.delete_authentication(name)
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
        styled=preview is not None,
        outside_images=preview is not None,  # the chat shows the messages' images
        auths=console.ops.list_authentications(),
        others=[a.name for a in console.ops.list_activations()],
    )


def _preview(console: Console, values: dict[str, Any]) -> dict[str, Any]:
    """What the form's (unsaved) activation would send for the sample event."""
    spec, problems = forms.spec_of({**values, "name": values["name"].strip() or "preview"})
    if spec is None:
        return {"error": "Fix the form first: " + "; ".join(str(p) for p in problems[:5])}
    event = forms.sample_event(values)
    if isinstance(event, str):
        return {"error": event}
    return _previewed(console, spec, event)


def _previewed(console: Console, spec: activations.ActivationSpec, event: dict[str, Any]) -> dict[str, Any]:
    """The exact request for ``event`` and the chat it would show; or why the event would fail."""
    try:
        preview = console.ops.preview_spec(spec, event)
    except InvalidInput as exc:
        return {"error": str(exc.problems[0].reason).capitalize() if exc.problems else str(exc)}
    try:
        bot = console.ops.get_authentication(spec.authentication).bot_name
    except NotFound:
        bot = None
    messages = preview.body.get("messages") if isinstance(preview.body, dict) else None
    chat = chat_preview.render_chat(messages, bot_name=bot)
    return {"recipient": preview.recipient, "url": preview.url, "body": forms.pretty(preview.body), "chat": chat}


def _rows(console: Console) -> list[dict[str, Any]]:
    out = []
    for a in console.ops.list_activations():
        counts = console.ops.counts(a.name)
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
def activation_new(
    request: Request, console: C, session: Operator, copy_from: str | None = None, authentication: str | None = None
) -> Response:
    if copy_from:
        source = console.activation(request, copy_from)
        # A copy's unit is its own (derived from its name) unless one is typed in.
        values = forms.copied_values(source.spec, {}) | {"copy_from": copy_from, "aggregation_unit": ""}
        return _activation_form(request, console, session, values, editing=None)
    values = forms.default_values()
    auths = console.ops.list_authentications()
    if authentication in {a.name for a in auths}:  # "create a triggered activation with it" (Catalog's Done)
        values["authentication"] = authentication
    elif len(auths) == 1:
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
    values = forms.copied_values(source.spec, post.form) | {"copy_from": source_name, "aggregation_unit": ""}
    return _activation_form(request, console, post.session, values, editing=None)


def _saved(console: Console, values: dict[str, Any], *, editing: str | None) -> list[FieldProblem]:
    """Create (or update ``editing``) from the form; the problems when it was not saved."""
    spec, problems = forms.spec_of(values)
    if spec is None:
        return problems
    fields = spec.model_dump(exclude={"name"})
    try:
        if editing is None:
            console.ops.create_activation(spec.name, fields)
        else:
            console.ops.update_activation(editing, fields)
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
    return console.redirect(request, f"/activations/{q(name)}", f"Triggered activation {name!r} created.")


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
    return console.redirect(request, f"/activations/{q(name)}", f"Triggered activation {name!r} updated.")


@router.post("/activations/{name}/pause")
async def activation_pause(request: Request, name: str, console: C, post: OperatorPost) -> Response:
    def pause() -> None:
        console.activation(request, name)
        console.ops.pause_activation(name, f"paused in the console by {post.session.key}")

    await run_in_threadpool(pause)
    return console.redirect(request, f"/activations/{q(name)}", f"{name!r} paused.")


@router.post("/activations/{name}/resume")
async def activation_resume(request: Request, name: str, console: C, _: OperatorPost) -> Response:
    def resume() -> None:
        console.activation(request, name)
        console.ops.resume_activation(name)

    await run_in_threadpool(resume)
    return console.redirect(request, f"/activations/{q(name)}", f"{name!r} resumed.")


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
            action=f"/activations/{q(name)}/delete",
            back=f"/activations/{q(name)}",
        )
    console.ops.delete_activation(name)
    return console.redirect(request, "/activations", f"Triggered activation {name!r} deleted.")


@router.post("/activations/{name}/validate")
async def activation_validate(request: Request, name: str, console: C, post: OperatorPost) -> Response:
    """Ask LINE whether the payload is valid, for the posted sample event; nothing is sent."""
    await run_in_threadpool(console.activation, request, name)
    back = f"/activations/{q(name)}"
    event = forms.sample_event({"sample_event": post.form.get("sample_event") or forms.SAMPLE_EVENT})
    if isinstance(event, str):
        return console.redirect(request, back, event, "error")
    try:
        await console.ops.validate_activation(name, event)
    except (InvalidInput, CredentialsRejected, ConfigurationError) as exc:
        return console.redirect(request, back, f"Not valid: {exc}", "error")
    return console.redirect(request, back, "Valid: checked here and by LINE (nothing was sent).")


@router.post("/activations/{name}/trigger")
def activation_trigger(request: Request, name: str, console: C, post: OperatorPost) -> Response:
    """Trigger one event by hand (what a journey engine does through the API)."""
    console.activation(request, name)
    back = f"/activations/{q(name)}"
    event = forms.sample_event({"sample_event": post.form.get("event") or ""})
    if isinstance(event, str):
        return console.redirect(request, back, event.replace("sample event", "event"), "error")
    [result] = console.ops.trigger(name, [event]).results
    said = f"Event {result.event_id!r}: {result.status}" + (f" ({result.error})" if result.error else ".")
    return console.redirect(request, back, said, "error" if result.status == "failed" else "ok")


@router.post("/activations/{name}/replay")
async def activation_replay(request: Request, name: str, console: C, post: OperatorPost) -> Response:
    event_id = post.form.get("event_id") or None

    def replay() -> Replay:
        console.activation(request, name)
        return console.ops.replay(name, [event_id] if event_id else None)

    result = await run_in_threadpool(replay)
    back = f"/activations/{q(name)}" + (f"/events/{q(event_id)}" if event_id else "")
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


def _table_values(request: Request, console: Console, name: str, *, refreshing: bool = False) -> dict[str, Any]:
    """What the activation page shows of its table: one page, filtered. ``refreshing``: its self-refreshing
    parts, which are always the newest page, with counts shared by every tab (see :mod:`.live`)."""
    activation = console.activation(request, name)
    table = forms.table_query(request.query_params)
    before = None if refreshing else table.before
    entries, next_before = console.ops.table_page(name, table.filters, limit=PAGE_SIZE, before=before)
    query = {k: v for k, v in table.shown.items() if v}
    return {
        "activation": activation,
        "entries": entries,
        "counts": console.counts.get(name, fresh=not refreshing),
        "unit": console.ops.unit_status(name),
        "filters": table.shown,
        "notes": table.notes,
        "states": forms.STATES,
        "paged": before is not None,
        "older": urlencode({**query, "before": next_before}) if next_before else None,
        "newest": urlencode(query),
        # only the newest page refreshes itself (an older one stays as it was loaded); filters are kept
        "live_query": None if before is not None else urlencode(query),
        "live_every": live.EVERY_MS,
    }


@router.get("/activations/{name}")
def activation_page(request: Request, name: str, console: C, session: Reader) -> Response:
    values = _table_values(request, console, name)
    return console.render(
        request,
        "activation_table.html",
        session,
        section="activations",
        csv_query=values["newest"],
        sample_event=forms.SAMPLE_EVENT,
        **values,
    )


def _preview_page(request: Request, console: Console, session: Session, name: str, raw_event: str | None) -> Response:
    """An activation's preview: the chat and the exact request for the posted event, else for a
    sample event built from the activation's placeholders."""
    activation = console.activation(request, name)
    if raw_event is None:
        raw_event = forms.pretty(forms.placeholder_event(activation.spec))
    event = forms.sample_event({"sample_event": raw_event})
    preview = {"error": event} if isinstance(event, str) else _previewed(console, activation.spec, event)
    return console.render(
        request,
        "activation_preview.html",
        session,
        styled=True,
        outside_images=True,  # the chat shows the messages' images
        section="activations",
        activation=activation,
        sample_event=raw_event,
        preview=preview,
    )


@router.get("/activations/{name}/preview")
def activation_preview(request: Request, name: str, console: C, session: Reader) -> Response:
    return _preview_page(request, console, session, name, None)


@router.post("/activations/{name}/preview")
def activation_preview_event(request: Request, name: str, console: C, post: ReaderPost) -> Response:
    """The preview for a typed event (posted: an event's attributes stay out of URLs and logs)."""
    return _preview_page(request, console, post.session, name, post.form.get("sample_event") or forms.SAMPLE_EVENT)


@router.get("/activations/{name}/live")
def activation_live(request: Request, name: str, console: C, _: Reader) -> Response:
    """The newest rows as they are now and the shared counts, for static/live.js (filters kept); and
    when to ask again: later when this answer was slow to make."""
    started = console.now()
    answer = console.fragment(request, "activation_live.html", **_table_values(request, console, name, refreshing=True))
    answer.headers[live.NEXT_HEADER] = str(live.next_every_ms(console.now() - started))
    return answer


@router.get("/activations/{name}/table.csv")
def activation_csv(request: Request, name: str, console: C, _: Reader) -> Response:
    console.activation(request, name)
    chunks = console.ops.export(name, forms.table_query(request.query_params).filters, "csv")
    return StreamingResponse(
        chunks,
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{q(name)}.csv"',
            "Cache-Control": "no-store",
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/activations/{name}/events/{event_id:path}")
def event_page(request: Request, name: str, event_id: str, console: C, session: Reader) -> Response:
    activation = console.activation(request, name)
    try:
        entry = console.ops.event(name, plain(console, request, event_id))
    except NotFound as exc:
        raise console.error(request, 404, "Not found", str(exc)) from None
    body = forms.pretty(entry["request_body"]) if entry.get("request_body") is not None else None
    return console.render(
        request, "event.html", session, section="activations", activation=activation, e=entry, body=body
    )


@router.api_route("/{path:path}", methods=["GET", "POST"])
def unknown(request: Request, console: C) -> Response:
    raise console.error(request, 404, "Not found", "There is no console page at this address.")
