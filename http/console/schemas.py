"""The console's Custom attributes pages: the extension schemas the organization declares
(ledger.schemas), so that the attributes its identity provider maps are kept. Admins declare,
change and remove them; reviewers see them. Each step is the same ledger command as
`scimledger schemas` and the admin API's."""

from __future__ import annotations

import json
from typing import Any

from litestar import Request, get, post
from litestar.datastructures import FormMultiDict
from litestar.params import FromQuery
from litestar.response import Redirect, Template

from scimledger.http.auth import request_info
from scimledger.http.console.pages import page
from scimledger.http.console.sessions import Person, person, submitted
from scimledger.http.services import Injected, Services
from scimledger.ledger.errors import LedgerError
from scimledger.ledger.schemas import MAX_DOCUMENT_BYTES, RESOURCE_TYPES, declaration_view
from scimledger.projections.scim import extension_holders, extension_values_counter

EXAMPLE = {
    "id": "urn:ietf:params:scim:schemas:extension:acme:2.0:User",
    "name": "AcmeUser",
    "attributes": [{"name": "costCenter", "type": "string"}],
}


def _declarations(services: Services, who: Person) -> list[dict[str, Any]]:
    declared = services.ledger.organization(who.org).extensions.values()
    return [declaration_view(declaration) for declaration in declared]


def _declared(services: Services, who: Person, urn: str) -> dict[str, Any]:
    return declaration_view(services.ledger.organization(who.org).declaration(urn))


@get("/schemas", sync_to_thread=True)
def schemas(request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
    who = person(request, services)
    return page("schemas", "Custom attributes", who, schemas=_declarations(services, who))


def _form(
    who: Person, form: dict[str, Any], problem: str | None = None, status: int = 200
) -> Template:
    title = "Change extension" if form.get("changing") else "Declare extension"
    return page("schema_new", title, who, status, form=form, types=RESOURCE_TYPES, problem=problem)


@get("/schemas/new", sync_to_thread=True)
def new_schema(
    request: Request[Any, Any, Any],
    services: Injected[Services],
    urn: FromQuery[str | None] = None,
) -> Template:
    """The declaration form: empty (an example in it), or the current declaration of `urn`,
    to change it."""
    who = person(request, services)
    who.must_be_admin()
    if urn is None:
        form = {"document": json.dumps(EXAMPLE, indent=2), "resource_type": "", "required": False}
        return _form(who, form)
    shown = _declared(services, who, urn)
    document = {k: v for k, v in shown.items() if k not in ("resourceType", "required")}
    form = {
        "document": json.dumps(document, indent=2, ensure_ascii=False),
        "resource_type": shown["resourceType"],
        "required": shown["required"],
        "changing": shown["id"],
    }
    return _form(who, form)


@post("/schemas")
async def declare_schema(
    request: Request[Any, Any, Any], services: Injected[Services]
) -> Template | Redirect:
    def declare(who: Person, form: FormMultiDict) -> Template | Redirect:
        text = form.get("document") or ""
        kind = form.get("resource_type") or None
        required = bool(form.get("required"))
        kept = {"document": text, "resource_type": kind or "", "required": required}
        try:
            if len(text.encode()) > 4 * MAX_DOCUMENT_BYTES:
                raise LedgerError("The schema document is too large (at most 64 KiB of JSON).")
            try:
                document = json.loads(text)
            except ValueError as exc:
                raise LedgerError(f"The schema document is not JSON: {exc}") from None
            if kind is not None and kind not in RESOURCE_TYPES:
                raise LedgerError(f"The resource type is one of {', '.join(RESOURCE_TYPES)}.")
            services.ledger.declare_schema(
                who.org,
                document,
                who.signed_in.actor,
                request_info(request),
                extension_holders(services.sql),
                resource_type=kind,
                required=required,
            )
        except LedgerError as exc:
            return _form(who, kept, str(exc), status=400)
        return Redirect("/console/schemas", status_code=303)

    return await submitted(request, services, declare)


@get("/schemas/remove", sync_to_thread=True)
def confirm_remove(
    request: Request[Any, Any, Any], services: Injected[Services], urn: FromQuery[str]
) -> Template:
    who = person(request, services)
    who.must_be_admin()
    shown = _declared(services, who, urn)
    org_id = who.signed_in.org_id
    held = extension_values_counter(services.sql)(org_id, shown["id"])
    return page("schema_remove", f"Remove {shown['id']}?", who, schema=shown, held=held)


@post("/schemas/remove")
async def remove_schema(request: Request[Any, Any, Any], services: Injected[Services]) -> Any:
    def remove(who: Person, form: FormMultiDict) -> Any:
        shown = _declared(services, who, form.get("urn") or "")
        services.ledger.remove_schema(
            who.org,
            shown["id"],
            extension_values_counter(services.sql),
            who.signed_in.actor,
            request_info(request),
            force=form.get("force") == "on",
        )
        return Redirect("/console/schemas", status_code=303)

    return await submitted(request, services, remove)


ROUTES = [schemas, new_schema, declare_schema, confirm_remove, remove_schema]
