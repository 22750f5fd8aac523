"""The web console (``/console``): authentications, triggered activations and their tables.

Server-rendered (Jinja2, autoescaped), plain HTML forms that POST and redirect: it works
without JavaScript. It calls the package's functions directly, never the JSON API over HTTP.

- :mod:`.sessions`: server-side sessions (logout ends them), CSRF tokens, roles.
- :mod:`.throttle`: failed logins per client address.
- :mod:`.forms`: posted forms read safely and turned into values, problems named by field.
- :mod:`.pages`: rendering, redirects, error pages (never the API's JSON).
- :mod:`.guards`: the role each route needs (``Reader``, ``AdminPost``…), CSRF on every POST.
- :mod:`.routes`: the activations, their tables, authentications and login, each with its role.
- :mod:`.mount`: :func:`mount_console`, which puts the routers on the app in their order.
- :mod:`.catalog`: the Integrations Hub's Catalog and its Create Authentication flow (admin).
- :mod:`.drafts`: that flow's tested credentials, kept in the database until they are named.
- :mod:`.overview`: the overview pages (per activation, per channel); :mod:`.charts`: their SVG.
- ``static/live.js``: the one script: refreshes the parts of a page marked ``data-live`` (optional);
  :mod:`.live`: what keeps those refreshes cheap (shared counts, the next interval).

The one rule: the console is mounted with :func:`mount_console` and nothing else of it is
imported by other front ends.
"""

from .mount import mount_console

__all__ = ["mount_console"]
