"""The audit log is append-only in the database itself (trigger), not only by convention."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, update
from sqlalchemy.exc import DatabaseError

from helpdesk import audit
from helpdesk.accounts.models import AuditLog
from helpdesk.audit import Actor


def _row(db):
    row = audit.record(db.session, Actor.system("test"), "test.recorded", "thing", 1, {"a": 1})
    db.session.commit()
    return row.id


@pytest.mark.parametrize("statement", ["update", "delete"])
def test_audit_rows_cannot_be_changed_or_removed(db, statement):
    row_id = _row(db)
    stmt = (update(AuditLog).where(AuditLog.id == row_id).values(action="tampered") if statement == "update"
            else delete(AuditLog).where(AuditLog.id == row_id))
    with pytest.raises(DatabaseError) as info:
        db.session.execute(stmt)
        db.session.flush()
    assert "append-only" in str(info.value)
    db.session.rollback()
    assert db.session.get(AuditLog, row_id).action == "test.recorded"
