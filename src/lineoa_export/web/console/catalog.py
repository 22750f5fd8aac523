"""The Integrations Hub's Catalog, and its flow for creating an authentication (admin only).

The product page's own steps: Integrations Hub → Catalog (tiles, a search by name that is a
plain GET form) → Create Authentication → 1 Credentials (a channel access token, or a channel
ID and secret; the optional Channel Secret Key that verifies LINE's webhooks; the API URL under
"advanced") → Continue: LINE is asked who the credentials belong to, and the page shows the
bot's name and picture, or LINE's own reason for refusing them → 2 a name → 3 Done (what was
created, the webhook URL to give LINE, a link to create a triggered activation with it).

The one rule: between Continue and Done the tested credentials live only in
:class:`~.drafts.Drafts` (in the database, sealed, bound to the session, 15 minutes); a page never
carries a secret, not even in a hidden field, and a form shown again blanks every secret field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from ...delivery.line_client import DEFAULT_API_URL
from ...errors import AlreadyExists, CredentialsRejected, FieldProblem, InvalidInput
from ...naming import check_name
from . import forms
from .drafts import Draft
from .forms import Form
from .guards import Admin, AdminPost, C, plain, q
from .pages import PREFIX, Console, ConsoleRoute
from .sessions import Session

router = APIRouter(prefix=PREFIX, include_in_schema=False, route_class=ConsoleRoute)

FLOW = "/integrations/line-oa"
MAX_QUERY = 100


@dataclass(frozen=True, slots=True)
class Integration:
    """A tile of the Catalog."""

    key: str
    name: str
    vendor: str
    category: str
    summary: str
    aliases: tuple[str, ...]  # other names people search it by
    logo: str  # a file in static/

    def matches(self, query: str) -> bool:
        """Every word of ``query`` is in the tile's name (or another name of it)."""
        names = " ".join((self.name, self.vendor, *self.aliases)).lower()
        return all(word in names for word in query.lower().split())


CATALOG = (
    Integration(
        key="line-oa",
        name="LINE OA Streaming Export",
        vendor="LINE",
        category="Messaging · real-time activations",
        summary="Send LINE messages to users the moment a real-time journey triggers them.",
        aliases=("LINE Official Account", "Messaging API", "push"),
        logo="line-oa.svg",
    ),
)
LINE_OA = CATALOG[0]


# -- the Catalog ---------------------------------------------------------------------------------


@router.get("/integrations")
def hub(request: Request, console: C, _: Admin) -> Response:
    return console.redirect(request, "/integrations/catalog")


@router.get("/integrations/catalog")
def catalog(request: Request, console: C, session: Admin, q: str = "") -> Response:
    query = " ".join(q.split())[:MAX_QUERY]
    tiles = [t for t in CATALOG if t.matches(query)]
    return console.render(
        request,
        "catalog.html",
        session,
        section="integrations",
        q=query,
        tiles=tiles,
        auth_count=len(console.ops.list_authentications()),
    )


# -- 1 credentials -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CredentialsForm:
    kind: str  # "access_token" or "channel_credentials"
    access_token: str
    channel_id: str
    channel_secret: str
    api_url: str

    @classmethod
    def of(cls, form: Form) -> CredentialsForm:
        kind = "channel_credentials" if form.get("kind") == "channel_credentials" else "access_token"
        token, channel_id, secret, api_url = (
            form.get(f, "").strip() for f in ("access_token", "channel_id", "channel_secret", "api_url")
        )
        return cls(kind, token, channel_id, secret, api_url or DEFAULT_API_URL)

    def missing(self) -> list[FieldProblem]:
        """What the chosen kind needs and the form lacks, named by field."""
        if self.kind == "access_token":
            if not self.access_token:
                return [FieldProblem("access_token", "required: the channel's long-lived access token")]
            return []
        problems = []
        if not self.channel_id:
            problems.append(FieldProblem("channel_id", "required: the channel's numeric ID"))
        if not self.channel_secret:
            problems.append(FieldProblem("channel_secret", "required with a channel ID: it mints the tokens"))
        return problems

    def used(self) -> tuple[str | None, str | None, str | None]:
        """The access token, channel ID and channel secret the chosen kind uses (the other field is ignored)."""
        if self.kind == "access_token":
            return self.access_token or None, None, self.channel_secret or None
        return None, self.channel_id or None, self.channel_secret or None

    def kept(self) -> dict[str, Any]:
        """What the form shows again: never a secret."""
        return {"kind": self.kind, "channel_id": self.channel_id, "api_url": self.api_url}


def _credentials_page(
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
        "catalog_credentials.html",
        session,
        status=status,
        section="integrations",
        integration=LINE_OA,
        form=form or {"kind": "access_token", "channel_id": "", "api_url": DEFAULT_API_URL},
        default_api_url=DEFAULT_API_URL,
        errors=errors or {},
        draft_minutes=int(console.drafts.seconds // 60),
    )


@router.get(FLOW + "/new")
def credentials_form(request: Request, console: C, session: Admin) -> Response:
    return _credentials_page(request, console, session)


@router.post(FLOW + "/new")
async def credentials_continue(request: Request, console: C, post: AdminPost) -> Response:
    """Continue: test the credentials with LINE; kept server-side as a draft when LINE accepts them."""
    f = CredentialsForm.of(post.form)
    errors: dict[str, list[str]]
    try:
        missing = f.missing()
        if missing:
            raise InvalidInput(missing)
        token, channel_id, secret = f.used()
        credentials, api_url, bot = await console.ops.try_credentials(
            access_token=token, channel_id=channel_id, channel_secret=secret, api_url=f.api_url
        )
    except InvalidInput as exc:
        errors = forms.group(exc.problems)
    except CredentialsRejected as exc:
        errors = {"line": [str(exc)]}  # LINE's own words, or "timeout" / "the connection failed"
    else:
        draft = await run_in_threadpool(console.drafts.put, post.session, credentials, api_url=api_url, bot=bot)
        if draft is None:  # logged out (in another tab) while LINE was asked
            raise console.to_login(request)
        return console.redirect(request, f"{FLOW}/new/{draft.id}")
    return _credentials_page(request, console, post.session, form=f.kept(), errors=errors, status=422)


# -- 2 a name ------------------------------------------------------------------------------------


def _suggested_name(console: Console, draft: Draft) -> str:
    """A free, valid name from the bot's display name (or basic ID); empty when none fits."""
    taken = {a.name for a in console.ops.list_authentications()}
    for source in (draft.bot.display_name, draft.bot.basic_id):
        slug = re.sub(r"[^a-z0-9]+", "-", (source or "").lower()).strip("-")[:64].rstrip("-")
        if slug and slug not in taken:
            try:
                return check_name(slug)
            except InvalidInput:
                continue
    return ""


def _name_page(
    request: Request,
    console: Console,
    session: Session,
    draft: Draft,
    *,
    name: str,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> Response:
    return console.render(
        request,
        "catalog_name.html",
        session,
        status=status,
        outside_images=True,  # the tested bot's picture, on LINE's CDN
        section="integrations",
        integration=LINE_OA,
        draft=draft,
        name=name,
        errors=errors or {},
        minutes_left=max(1, int((draft.expires_at - console.now() + 59) // 60)),
    )


def _gone(request: Request, console: Console) -> Response:
    minutes = int(console.drafts.seconds // 60)
    return console.redirect(
        request,
        FLOW + "/new",
        f"The tested credentials are no longer kept (at most {minutes} minutes, and logging out drops them): "
        "enter them again.",
        "error",
    )


@router.get(FLOW + "/new/{draft_id}")
def name_form(request: Request, draft_id: str, console: C, session: Admin) -> Response:
    draft = console.drafts.get(session, draft_id)
    if draft is None:
        return _gone(request, console)
    return _name_page(request, console, session, draft, name=_suggested_name(console, draft))


@router.post(FLOW + "/new/{draft_id}")
def name_done(request: Request, draft_id: str, console: C, post: AdminPost) -> Response:
    """Done: store the tested credentials under the name (a taken name is refused; LINE is not asked again)."""
    draft = console.drafts.get(post.session, draft_id)
    credentials = console.drafts.credentials(post.session, draft_id)
    if draft is None or credentials is None:
        return _gone(request, console)
    name = post.form.get("name", "").strip()
    try:
        console.ops.create_tested_authentication(name, credentials, api_url=draft.api_url, bot=draft.bot)
    except InvalidInput as exc:
        errors = forms.group(exc.problems)
    except AlreadyExists as exc:
        errors = {"name": [f"{exc}: choose another name"]}
    else:
        console.drafts.drop(post.session, draft_id)
        return console.redirect(request, f"{FLOW}/done/{q(name)}")
    return _name_page(request, console, post.session, draft, name=name[:200], errors=errors, status=422)


@router.post(FLOW + "/new/{draft_id}/discard")
def name_discard(request: Request, draft_id: str, console: C, post: AdminPost) -> Response:
    """Back: forget the tested credentials and start again."""
    console.drafts.drop(post.session, draft_id)
    return console.redirect(request, FLOW + "/new")


# -- 3 done --------------------------------------------------------------------------------------


@router.get(FLOW + "/done/{name}")
async def done(request: Request, name: str, console: C, session: Admin) -> Response:
    auth = await run_in_threadpool(console.ops.get_authentication, plain(console, request, name))
    # LINE calls only https URLs: the address of the TLS proxy in front of `serve` (see README Security).
    host = request.url.netloc + str(request.scope.get("root_path", ""))
    return console.render(
        request,
        "catalog_done.html",
        session,
        section="integrations",
        integration=LINE_OA,
        auth=auth,
        webhook_url=f"https://{host}{auth.webhook_path}",
        plain_http=request.url.scheme != "https",
    )
