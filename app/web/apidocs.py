"""The API's own documents (issue 16): `/openapi.json` and the `/docs` page, behind a staff
login, off in production unless API_DOCS says otherwise (app.config.Settings.docs_enabled).

Swagger UI is served from this host, from the `swagger-ui-bundle` package's files: nothing is
fetched from an outside CDN, and our pages' Content-Security-Policy (`'self'` only, no inline
script) holds on this page too. ReDoc is not offered (it would need another outside bundle).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from app.api.deps import CurrentStaff, SessionDep
from app.auth import policy
from app.auth.policy import Capability
from app.web.routes import PAGE_HEADERS, _error_page, _page, _to_login, _viewer

ASSETS = "/docs/assets"

router = APIRouter(include_in_schema=False)


@router.get("/openapi.json")
async def openapi_document(request: Request, _staff: CurrentStaff) -> JSONResponse:
    """The OpenAPI document, for staff (bearer token or session cookie)."""
    return JSONResponse(request.app.openapi())


@router.get("/docs", response_model=None)
async def docs_page(request: Request, session: SessionDep) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_login(request)
    if not policy.allows(viewer, Capability.staff_routes):
        return _error_page(request, viewer, 403, "Forbidden", "The API reference is for staff.")
    response = _page(request, "apidocs.html", viewer, assets=ASSETS)
    # Swagger UI sets styles from its script: allow inline styles, still no inline script.
    response.headers["Content-Security-Policy"] = PAGE_HEADERS["Content-Security-Policy"].replace(
        "default-src 'self';", "default-src 'self'; style-src 'self' 'unsafe-inline';"
    )
    return response


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
