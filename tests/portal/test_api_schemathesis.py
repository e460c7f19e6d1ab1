"""schemathesis over every operation of /api/v1/openapi.json, on SQLite and PostgreSQL: no
5xx, and every answer (status, content type, body) matches the document. Bounded examples
per operation, so it runs in `make test`.

The schema is loaded inside the test (from the app built on the parametrised database), and
each operation's strategy runs under hypothesis there: schemathesis' own pytest fixture
loader does not combine with the parametrised `database_url` fixture. Every check runs but
"schema-valid data is accepted": the directory's rules (a known family id, a real time zone,
this key's business) are the import's, richer than a schema, and refused with a documented 422.
Writes carry a new Idempotency-Key each, so they act instead of replaying.
"""

from __future__ import annotations

import uuid

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.orm import Session

from tests.portal.conftest import World
from tests.portal.test_api import ALL_SCOPES, key_for

EXAMPLES_PER_OPERATION = 15


def test_every_operation_matches_the_document(app: Flask, world: World, db: Session) -> None:
    app.config["PAWPOST_API_REQUESTS_PER_MINUTE"] = 100_000
    secret = key_for(db, world.business.id, *ALL_SCOPES)
    db.rollback()
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 16
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            headers = {"Authorization": f"Bearer {secret}"}
            if case.method.upper() != "GET":
                headers["Idempotency-Key"] = str(uuid.uuid4())  # every write takes one; a new one acts
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        check()
