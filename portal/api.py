"""The REST API's edge (`/api/v1`): bearer keys, scopes, rate limits, problem answers, and
the OpenAPI document built from the same pydantic models that validate requests and shape
responses.

Every view is declared with `operation(...)`, which records it for the document, checks the
key's scope, validates the query and body with the view's models and serialises its answer
with the response model: there is no second, hand-written description to drift. Every query
a view makes is scoped to `api_key().business_id`; another business's ids answer 404 like
ids that do not exist.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, g, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import models_json_schema
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from portal.runtime import db, now
from threads.api_keys import authenticate_api_key
from threads.idempotency import KeyReused, Replay, StillRunning, claim, record_answer, release
from threads.models import ApiKey
from threads.rate_limits import allow

logger = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# Problem types are stable URIs, relative to the API (RFC 9457 §3.1.1): integrators may
# switch on them; the titles may be reworded.
PROBLEM_BASE = "/api/v1/problems/"
DEFAULT_REQUESTS_PER_MINUTE = 600
PUBLIC_ENDPOINTS = {"api.openapi_json"}
# The GET operations (`operation`): each commits its key's bookkeeping with its answer (`_read`).
READ_ENDPOINTS: set[str] = set()
# What a path id may be: no id anyone stored has a control character or more than 100
# characters, and PostgreSQL refuses NUL in a query, so such a value is "not found" up front.
PATH_VALUE = re.compile(r"[^\x00-\x1f\x7f]{1,100}")


class ApiProblem(Exception):
    """An answer in RFC 9457 problem+json: `kind` becomes the stable `type`."""

    def __init__(self, status: int, kind: str, title: str, detail: str = "", *, errors: list[dict[str, str]] | None = None, headers: dict[str, str] | None = None):
        super().__init__(f"{status} {kind}: {detail}")
        self.status, self.kind, self.title, self.detail = status, kind, title, detail
        self.errors = errors
        self.headers = headers or {}

    def response(self) -> Response:
        body: dict[str, Any] = {"type": PROBLEM_BASE + self.kind, "title": self.title, "status": self.status}
        if self.detail:
            body["detail"] = self.detail
        if self.errors is not None:
            body["errors"] = self.errors
        answer = current_app.response_class(json.dumps(body), status=self.status, mimetype="application/problem+json")
        answer.headers.update(self.headers)
        return answer


class Problem(BaseModel):
    """RFC 9457 problem details; `errors` names each refused field (`pointer`: where in the body
    or which query parameter)."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[dict[str, str]] | None = None


HTTP_KINDS = {400: "bad-request", 404: "not-found", 405: "method-not-allowed", 413: "too-large", 415: "unsupported-media-type"}

# Every stable problem `type` an answer may carry, with its status and when it happens: the
# document lists them (`x-problem-types`) for integrators and the reference page;
# tests/portal/test_api_reference.py checks that each kind raised in portal/ is here.
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    "bad-request": (400, "the request could not be read"),
    "malformed-json": (400, "the body is not valid JSON"),
    "idempotency-key-required": (400, "a write came without an Idempotency-Key header; nothing was done"),
    "invalid-idempotency-key": (400, "the Idempotency-Key header is empty or longer than 255 characters"),
    "unauthorized": (401, "no key, or an unknown or revoked one"),
    "insufficient-scope": (403, "the key lacks the scope the operation needs"),
    "not-found": (404, "no such route or id, or it belongs to another business"),
    "method-not-allowed": (405, "the route does not take this method"),
    "idempotency-in-progress": (409, "the first request with this Idempotency-Key is still running; retry shortly"),
    "endpoint-disabled": (409, "the webhook endpoint is disabled"),
    "too-large": (413, "the body is larger than the limit"),
    "unsupported-media-type": (415, "the body must be JSON (or multipart where the operation says so)"),
    "invalid-request": (422, "a field or parameter was refused: `errors` names each one"),
    "invalid-directory": (422, "the directory document was refused whole: `errors` lists each problem with its JSON path"),
    "invalid-family": (422, "the family was refused: `errors` names each field"),
    "invalid-staff": (422, "the staff member was refused: `errors` names each field"),
    "invalid-appointment": (422, "the appointment was refused: `errors` names each field"),
    "idempotency-key-reused": (422, "the Idempotency-Key was used for another request"),
    "rate-limited": (429, "too many requests for this key; see Retry-After"),
}


def problem_for_http(error: HTTPException) -> Response:
    """Werkzeug's errors (unknown route, wrong method, too large) as problems too."""
    code = error.code or 500
    kind = HTTP_KINDS.get(code, f"http-{code}")
    return ApiProblem(code, kind, error.name, error.description or "").response()


def api_key() -> ApiKey:
    """The key this request authenticated with (set before every non-public view)."""
    key: ApiKey = g.api_key
    return key


@bp.before_request
def authenticate() -> None:
    """Bearer key → g.api_key; 401 unknown or revoked, 429 over the key's rate. The last use
    and the rate count hold even when the view fails: committed at once before a write (its
    idempotency claim may refuse it), and with the answer for a read (`_read`: one
    transaction a read instead of two)."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    key = _admit()
    if request.endpoint not in READ_ENDPOINTS or request.method not in ("GET", "HEAD"):  # OPTIONS runs no view
        db().commit()
    g.api_key = key


def _admit() -> ApiKey:
    """The request's key, its use noted and a hit counted in its rate limit (not committed)."""
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    key = authenticate_api_key(db(), secret.strip(), now()) if scheme.lower() == "bearer" else None
    if key is None:
        db().rollback()
        raise ApiProblem(401, "unauthorized", "Unknown or revoked API key", "send Authorization: Bearer <key>", headers={"WWW-Authenticate": 'Bearer realm="pawpost"'})
    limit = int(current_app.config.get("PAWPOST_API_REQUESTS_PER_MINUTE", DEFAULT_REQUESTS_PER_MINUTE))
    if not allow(db(), {f"api-key:{key.id}": limit}, timedelta(minutes=1), now()):
        db().commit()
        raise ApiProblem(429, "rate-limited", "Too many requests", f"at most {limit} requests a minute per key", headers={"Retry-After": "60"})
    return key


def _read(answer: Callable[[], Response]) -> Response:
    """A read's answer, committed together with its key's use and rate-limit hit. A refused
    read (a problem answer) commits them too; a failed one (its transaction may be broken)
    rolls back and counts again, alone."""
    try:
        result = answer()
    except ApiProblem:
        db().commit()
        raise
    except Exception:
        db().rollback()
        try:
            _admit()
            db().commit()
        except ApiProblem:
            pass  # over the limit by now (nothing to record), or the key revoked meanwhile
        except Exception:  # never hide the view's own error
            db().rollback()
            logger.exception("API %s %s: the failed read's rate-limit hit was not recorded", request.method, request.path)
        raise
    db().commit()
    return result


@bp.errorhandler(ApiProblem)
def problem_answer(error: ApiProblem) -> Response:
    db().rollback()
    if error.status >= 500:
        logger.error("API %s %s: %s", request.method, request.path, error)
    return error.response()


def field_errors(error: ValidationError, where: str) -> list[dict[str, str]]:
    """pydantic's errors as `{"pointer", "detail"}`: a JSON pointer into the body, or the query
    parameter's name."""
    found = []
    for item in error.errors(include_url=False):
        parts = [str(part) for part in item["loc"]]
        pointer = "/" + "/".join(parts) if where == "body" else ".".join(parts)
        found.append({"pointer": pointer if where == "body" else pointer or "query", "in": where, "detail": item["msg"]})
    return found


def _validated(model: type[BaseModel] | None, data: Any, where: str) -> BaseModel | None:
    if model is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ApiProblem(422, "invalid-request", "Invalid request", f"the {where} was refused", errors=field_errors(error, where)) from None


# -- the operations, recorded for the OpenAPI document -------------------------------------


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    name: str
    summary: str
    scope: str
    response: type[BaseModel] | None
    status: int
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    path_params: tuple[str, ...] = ()
    problems: tuple[int, ...] = field(default=())
    multipart: bool = False


OPERATIONS: list[Operation] = []


def operation(
    method: str,
    path: str,
    *,
    scope: str,
    summary: str,
    response: type[BaseModel] | None,
    status: int = 200,
    query: type[BaseModel] | None = None,
    body: type[BaseModel] | None = None,
    problems: tuple[int, ...] = (),
    multipart: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a view: routed, recorded for the document, scope-checked, validated, shaped.

    The view gets path parameters as keywords, plus `query` and/or `body` (validated models),
    and returns what `response` validates (a model, a dict, or an ORM-shaped object)."""
    params = tuple(part[1:-1] for part in path.split("/") if part.startswith("{"))

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        OPERATIONS.append(Operation(method, path, view.__name__, summary, scope, response, status, query, body, params, problems, multipart))

        @functools.wraps(view)
        def run(**kwargs: Any) -> Response:
            def allowed() -> None:
                if scope not in api_key().scope_list:
                    raise ApiProblem(403, "insufficient-scope", "This key lacks a scope", f"this call needs the {scope} scope")
                if any(not PATH_VALUE.fullmatch(str(kwargs[name])) for name in params):
                    raise ApiProblem(404, "not-found", "Not found", "no such id")

            def answer() -> Response:
                if query is not None:
                    kwargs["query"] = _validated(query, request.args.to_dict(), "query")
                if body is not None:
                    kwargs["body"] = _validated(body, request.form.to_dict() if multipart and request.mimetype == "multipart/form-data" else _json_body(), "body")
                result = view(**kwargs)
                if response is None:
                    return current_app.response_class(status=status)
                shaped = response.model_validate(result, from_attributes=True)
                return current_app.response_class(shaped.model_dump_json(), status=status, mimetype="application/json")

            def read() -> Response:
                allowed()
                return answer()

            if method == "GET":
                return _read(read)
            allowed()
            return _write(answer)

        rule = path.replace("{", "<").replace("}", ">")
        bp.add_url_rule(rule, endpoint=view.__name__, view_func=run, methods=[method])
        if method == "GET":
            READ_ENDPOINTS.add(f"{bp.name}.{view.__name__}")
        return run

    return decorate


def _write(answer: Callable[[], Response]) -> Response:
    """Run a write once per `Idempotency-Key` (required: a write without one is refused before
    it acts, so no integrator's retry can act twice): its work and its stored answer commit
    together; a retry with the same request gets that answer back, marked `Idempotent-Replayed`."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        raise ApiProblem(400, "idempotency-key-required", "Idempotency-Key required", "every write takes an Idempotency-Key header (a new UUID per change; the same one for its retries)")
    if not 1 <= len(key) <= 255:
        raise ApiProblem(400, "invalid-idempotency-key", "Invalid Idempotency-Key", "use 1 to 255 characters (a UUID is a good choice)")
    try:
        found = claim(db(), api_key().id, key, _fingerprint(), now())
    except KeyReused:
        raise ApiProblem(422, "idempotency-key-reused", "Idempotency-Key reused", "this key was used for another request; use a new key") from None
    except StillRunning:
        raise ApiProblem(409, "idempotency-in-progress", "Request in progress", "the first request with this key is still running; retry shortly", headers={"Retry-After": "1"}) from None
    if isinstance(found, Replay):
        db().rollback()
        replayed = current_app.response_class(found.body, status=found.status, content_type=found.content_type)
        replayed.headers["Idempotent-Replayed"] = "true"
        return replayed
    claimed = found
    db().commit()
    try:
        result = answer()
    except ApiProblem as problem:
        db().rollback()
        result = problem.response()
    except Exception:
        db().rollback()
        release(db(), claimed)
        db().commit()
        raise
    record_answer(db(), claimed, result.status_code, result.content_type or "application/json", result.get_data(as_text=True))
    db().commit()
    for hook in g.pop("api_after_commit", []):
        hook()
    return result


def _fingerprint() -> str:
    """What makes two requests "the same": method, path, query and body; a multipart body by
    its fields and files' contents (a retry draws a new boundary)."""
    digest = hashlib.sha256(f"{request.method} {request.full_path}\n".encode())
    if request.mimetype == "multipart/form-data":
        digest.update(json.dumps(sorted(request.form.items(multi=True))).encode())
        for name, upload in sorted(request.files.items(multi=True), key=lambda item: (item[0], item[1].filename or "")):
            digest.update(f"\n{name}:{upload.filename}:".encode() + hashlib.sha256(upload.read()).digest())
            upload.seek(0)
    else:
        digest.update(request.get_data())
    return digest.hexdigest()


def after_commit(hook: Callable[[], None]) -> None:
    """Run `hook` once the write's transaction committed (enqueue work, never inside it)."""
    g.setdefault("api_after_commit", []).append(hook)


def _json_body() -> Any:
    if not request.is_json:
        raise ApiProblem(415, "unsupported-media-type", "Send JSON", "the body must be application/json")
    data = request.get_json(silent=True)
    if data is None:
        raise ApiProblem(400, "malformed-json", "Malformed JSON", "the body is not valid JSON")
    return data


# -- cursors ---------------------------------------------------------------------------------


class ListQuery(BaseModel):
    """Cursor pagination: pass the previous page's `next_cursor` to get the next one."""

    model_config = ConfigDict(extra="forbid")
    cursor: str | None = Field(default=None, pattern=r"^[0-9]{1,9}$", description="`next_cursor` of the previous page")
    limit: int = Field(default=50, ge=1, le=200)


def encode_cursor(last_id: int) -> str:
    """The last row's position; integrators pass it back as it is and read nothing into it."""
    return str(last_id)


def decode_cursor(cursor: str | None) -> int:
    """The position after which the page starts (0: from the start); the query model already
    refused anything but digits."""
    return int(cursor) if cursor else 0


# -- the document --------------------------------------------------------------------------


PROBLEM_TITLES = {
    400: "Malformed request, or no Idempotency-Key on a write",
    401: "Unknown or revoked key",
    403: "The key lacks the scope",
    404: "Not found (or another business's)",
    409: "The first request with this Idempotency-Key is still running",
    415: "Not JSON",
    422: "Invalid request: `errors` names each field",
    429: "Rate limited: see Retry-After",
}


def openapi_document() -> dict[str, Any]:
    """OpenAPI 3.1 built from OPERATIONS and their pydantic models (the same objects that
    validate and shape the calls)."""
    models = {Problem}
    for op in OPERATIONS:
        models.update(m for m in (op.response, op.body) if m is not None)
    keyed = [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)]
    refs, top = models_json_schema(keyed, ref_template="#/components/schemas/{model}")
    schemas = dict(top.get("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        parameters = [{"name": name, "in": "path", "required": True, "schema": {"type": "string", "pattern": f"^{PATH_VALUE.pattern}$", "maxLength": 100}} for name in op.path_params]
        if op.query is not None:
            query_schema = op.query.model_json_schema()
            required = set(query_schema.get("required", []))
            for name, schema in query_schema.get("properties", {}).items():
                described = {"description": schema["description"]} if schema.get("description") else {}
                schema = {k: v for k, v in schema.items() if k not in ("title", "description")}
                parameters.append({"name": name, "in": "query", "required": name in required, "schema": schema, **described})
        if op.method != "GET":
            parameters.append({
                "name": "Idempotency-Key", "in": "header", "required": True, "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "Required on every write (without it: 400). Retries with the same key and body act once and get the first answer; another body is a 422.",
            })
        responses: dict[str, Any] = {}
        if op.response is not None:
            responses[str(op.status)] = {"description": "OK", "content": {"application/json": {"schema": refs[(op.response, "validation")]}}}
        else:
            responses[str(op.status)] = {"description": "Done"}
        problem_ref = {"application/problem+json": {"schema": refs[(Problem, "validation")]}}
        for code in sorted({401, 403, 422, 429, *op.problems, *((400, 409) if op.method != "GET" else ())}):
            responses[str(code)] = {"description": PROBLEM_TITLES.get(code, "Problem"), "content": problem_ref}
        entry: dict[str, Any] = {
            "operationId": op.name,
            "summary": op.summary,
            "parameters": parameters,
            "responses": responses,
            "security": [{"bearer": [op.scope]}],
            "x-pawpost-scope": op.scope,
        }
        if op.body is not None:
            content: dict[str, Any] = {"application/json": {"schema": refs[(op.body, "validation")]}}
            if op.multipart:
                content["multipart/form-data"] = {"schema": {"allOf": [refs[(op.body, "validation")], {
                    "type": "object", "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}]}}
            entry["requestBody"] = {"required": True, "content": content}
        paths.setdefault("/api/v1" + op.path, {})[op.method.lower()] = entry
    return {
        "openapi": "3.1.0",
        "info": {"title": "Pawpost API", "version": "1"},
        "paths": paths,
        "x-problem-types": {PROBLEM_BASE + kind: {"status": status, "when": when} for kind, (status, when) in PROBLEM_TYPES.items()},
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "An API key from the portal's API keys page or `pawpost apikeys create`."}},
        },
    }


@bp.get("/openapi.json")
def openapi_json() -> Response:
    return current_app.response_class(json.dumps(openapi_document()), mimetype="application/json")


