"""The web UI (SPEC §9): server-rendered pages and the same data as JSON under /api/.

Starlette routes, Jinja2 templates with autoescape (HTML in a description, a data value
or a log line is shown as text), no build step and nothing loaded from outside: the one
script, for live updates, is ours and served here. Materializing is a POST with a CSRF
token (a double-submit token bound to this server's secret), refused with --read-only.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vibepiper.reporting import templating
from vibepiper.ui import data
from vibepiper.ui.judged import Judged

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from vibepiper.project import Project

Launch = Callable[[list[str]], str]  # starts a run of a selection; its run id


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return str(value)


def build_app(
    project: Callable[[], Project],
    *,
    judging: Callable[[], Project] | None = None,
    schedules: Callable[[], list[dict[str, Any]]] = list,
    launch: Launch | None = None,
    read_only: bool = False,
    hosts: tuple[str, ...] = ("*",),
) -> Starlette:
    """The ASGI app. `project()` gives the project as it is now (serve reloads it after
    edits), `judging()` the same in another object, for judging freshness in the
    background (default: `project`); `launch(select)` starts a run, unless `read_only` or
    no launcher is given; `hosts` are the host names a request may be addressed to."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    env = templating.environment()
    secret = secrets.token_bytes(32)
    guard = threading.Lock()  # one request at a time reads the project (it is not shared)
    judged = Judged(judging or project)
    started: set[str] = set()  # the runs started from this UI

    def token() -> str:
        nonce = secrets.token_hex(16)
        return nonce + "." + hmac.new(secret, nonce.encode(), "sha256").hexdigest()

    def token_ok(given: str) -> bool:
        if not given.isascii():
            return False
        nonce, _, mac = given.partition(".")
        want = hmac.new(secret, nonce.encode(), "sha256").hexdigest()
        return bool(nonce) and hmac.compare_digest(mac, want)

    def answer(request: Request, template: str, fetch: Callable[[], dict[str, Any]]) -> Response:
        try:
            with guard:
                found = fetch()
        except data.NotFound as exc:
            raise HTTPException(404, str(exc)) from None
        except data.BadRequest as exc:
            raise HTTPException(400, str(exc)) from None
        if request.url.path.startswith("/api/"):
            body = json.dumps(found, default=_json_default)
            return Response(body, media_type="application/json")
        page = env.get_template(template).render(
            **found, request=request, read_only=read_only or launch is None, csrf=token()
        )
        return HTMLResponse(page)

    def number(request: Request, key: str, default: int) -> int:
        text = request.query_params.get(key)
        if text is None:
            return default
        if not (text.isascii() and text.isdigit()) or len(text) > 9:
            raise HTTPException(400, f"{key}={text[:40]!r} is not a number")
        return int(text)

    def overview(request: Request) -> Response:
        return answer(
            request, "ui/overview.html", lambda: data.overview(project(), judged.get(), schedules())
        )

    def runs(request: Request) -> Response:
        page, per_page = number(request, "page", 1), number(request, "per_page", data.PER_PAGE)
        return answer(request, "ui/runs.html", lambda: data.runs(project(), page, per_page))

    def run(request: Request) -> Response:
        run_id, page = request.path_params["run_id"], number(request, "page", 1)

        def fetch() -> dict[str, Any]:
            try:
                return data.run(project(), run_id, page)
            except data.NotFound:
                if run_id not in started:
                    raise
                return data.starting(run_id)  # started here, not recorded yet

        return answer(request, "ui/run.html", fetch)

    def assets(request: Request) -> Response:
        select, page = request.query_params.get("select", ""), number(request, "page", 1)
        return answer(
            request, "ui/assets.html", lambda: data.assets(project(), judged.get(), select, page)
        )

    def asset(request: Request) -> Response:
        name = request.path_params["name"]
        return answer(request, "ui/asset.html", lambda: data.asset(project(), judged.get(), name))

    def lineage(request: Request) -> Response:
        select = request.query_params.get("select", "")
        return answer(
            request, "ui/lineage.html", lambda: data.lineage(project(), judged.get(), select)
        )

    def checks(request: Request) -> Response:
        return answer(request, "ui/checks.html", lambda: data.checks(judged.get()))

    async def materialize(request: Request) -> Response:
        from starlette.concurrency import run_in_threadpool

        if read_only or launch is None:
            raise HTTPException(403, "this UI is read-only (vibepiper serve --read-only)")
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
            raise HTTPException(403, f"a form from another site ({origin[:80]}) is refused")
        form = await request.form()
        given = form.get("csrf")
        if not isinstance(given, str) or not token_ok(given):
            raise HTTPException(403, "the form's CSRF token is missing or wrong: reload the page")
        select = form.get("select")
        words = select.split() if isinstance(select, str) else []

        def check() -> None:
            with guard:
                if words:
                    project().select(words)

        try:
            await run_in_threadpool(check)  # (the guard is not taken on the event loop)
        except Exception as exc:
            raise HTTPException(400, str(exc)) from None
        run_id = launch(words)
        started.add(run_id)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"run_id": run_id}, status_code=202)
        from starlette.responses import RedirectResponse

        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    async def error(request: Request, exc: Exception) -> Response:
        code = getattr(exc, "status_code", 500)
        detail = getattr(exc, "detail", "internal error")
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": detail}, status_code=code)
        page = env.get_template("ui/error.html").render(
            code=code, detail=detail, request=request, read_only=True, csrf=""
        )
        return HTMLResponse(page, status_code=code)

    routes: list[Route | Mount] = []
    for prefix in ("", "/api"):
        routes += [
            Route(f"{prefix}/" if not prefix else f"{prefix}/overview", overview),
            Route(f"{prefix}/runs", runs),
            Route(f"{prefix}/runs/{{run_id}}", run),
            Route(f"{prefix}/assets", assets),
            Route(f"{prefix}/assets/{{name}}", asset),
            Route(f"{prefix}/lineage", lineage),
            Route(f"{prefix}/checks", checks),
            Route(f"{prefix}/materialize", materialize, methods=["POST"]),
        ]
    routes.append(Mount("/static", StaticFiles(directory=templating.STATIC), name="static"))
    routes.append(Route("/healthz", lambda request: PlainTextResponse("ok")))
    from starlette.middleware import Middleware
    from starlette.middleware.gzip import GZipMiddleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    return Starlette(
        routes=routes,
        exception_handlers={HTTPException: error, 500: error},
        middleware=[
            # on loopback, only requests naming this machine (no DNS rebinding)
            Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts)),
            Middleware(GZipMiddleware, minimum_size=2048),  # a graph: ~10x smaller
        ],
    )
