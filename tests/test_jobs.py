"""The job queue: after-commit enqueueing, in-process mode, and a real RQ worker on Redis."""
import os

import pytest

from helpdesk import jobs

CALLS: list = []


def record_call(value):
    CALLS.append(value)


@pytest.fixture(autouse=True)
def _reset():
    CALLS.clear()


def test_in_process_job_runs_only_after_commit(app, db):
    jobs.enqueue_after_commit(db.session, "tests.test_jobs.record_call", 1)
    assert CALLS == []
    db.session.commit()
    assert CALLS == [1]


def test_rolled_back_transaction_enqueues_nothing(app, db):
    from helpdesk import audit

    audit.record(db.session, audit.Actor.system(), "test", "thing", 1)
    db.session.flush()
    jobs.enqueue_after_commit(db.session, record_call, 2)
    db.session.rollback()
    db.session.commit()
    assert CALLS == []


def _redis_connection():
    url = os.environ.get("HELPDESK_TEST_REDIS_URL")
    if url:
        from redis import Redis

        return Redis.from_url(url)
    import fakeredis

    return fakeredis.FakeStrictRedis()


@pytest.fixture
def rq_redis(app, monkeypatch):
    """Jobs go to RQ on the run's Redis (fakeredis in the plain `make test` run), emptied first."""
    connection = _redis_connection()
    connection.flushdb()
    monkeypatch.setitem(app.config, "RQ_ASYNC", True)
    monkeypatch.setitem(app.config, "REDIS_URL", app.config.get("REDIS_URL") or "redis://fake")
    monkeypatch.setattr(jobs, "redis_connection", lambda url=None: connection)
    return connection


def test_rq_path_and_worker_run_the_job(app, db, rq_redis):
    """With REDIS_URL set, jobs go to RQ; a worker inside the app context runs them."""
    from rq import Queue, SimpleWorker

    jobs.enqueue_after_commit(db.session, "tests.test_jobs.record_call", 3, queue="default")
    db.session.commit()
    assert CALLS == []  # queued, not run
    queue = Queue("default", connection=rq_redis)
    assert queue.count == 1
    SimpleWorker([queue], connection=rq_redis).work(burst=True)
    assert CALLS == [3]


def test_enqueue_with_redis_down_does_not_raise(app, db, monkeypatch):
    monkeypatch.setitem(app.config, "RQ_ASYNC", True)
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/0")
    assert jobs.enqueue("tests.test_jobs.record_call", 4) is False
    assert CALLS == []


def record_batch(values):
    CALLS.append(list(values))


def test_batches_in_process_run_once_per_commit_with_all_items(app, db):
    jobs.batch_after_commit(db.session, "tests.test_jobs.record_batch", 1)
    jobs.batch_after_commit(db.session, "tests.test_jobs.record_batch", 2)
    assert CALLS == []
    db.session.commit()
    assert CALLS == [[1, 2]]
    from helpdesk import audit

    audit.record(db.session, audit.Actor.system(), "test", "thing", 3)
    db.session.flush()
    jobs.batch_after_commit(db.session, "tests.test_jobs.record_batch", 3)
    db.session.rollback()
    db.session.commit()
    assert CALLS == [[1, 2]]  # a rolled-back item is never handed over


def test_batches_on_redis_coalesce_into_one_drain_job(app, db, rq_redis):
    """Many commits, one RQ job: later items ride on the pending drain; after it ran, the next kicks again."""
    from rq import Queue, SimpleWorker

    for item in (10, 11, 12):
        jobs.batch_after_commit(db.session, "tests.test_jobs.record_batch", item, queue="default")
        db.session.commit()
    queue = Queue("default", connection=rq_redis)
    assert queue.count == 1 and CALLS == []
    SimpleWorker([queue], connection=rq_redis).work(burst=True)
    assert CALLS == [[10, 11, 12]]
    jobs.batch_after_commit(db.session, "tests.test_jobs.record_batch", 13, queue="default")
    db.session.commit()
    assert queue.count == 1
    SimpleWorker([queue], connection=rq_redis).work(burst=True)
    assert CALLS == [[10, 11, 12], [13]]


def test_batch_lanes_get_one_drain_job_each(app, db, rq_redis):
    """Mail uses lanes so several workers send at once: ids spread over the lanes, one job per lane."""
    from rq import Queue, SimpleWorker

    for item in range(20, 28):
        jobs.batch_after_commit(db.session, "tests.test_jobs.record_batch", item, queue="default", lanes=4)
    db.session.commit()
    queue = Queue("default", connection=rq_redis)
    assert queue.count == 4
    SimpleWorker([queue], connection=rq_redis).work(burst=True)
    assert sorted(map(sorted, CALLS)) == [[20, 24], [21, 25], [22, 26], [23, 27]]
