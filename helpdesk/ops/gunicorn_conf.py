"""gunicorn settings for metrics in multiprocess mode: `gunicorn -c python:helpdesk.ops.gunicorn_conf wsgi:app`.

Set PROMETHEUS_MULTIPROC_DIR to an empty folder writable by the workers (e.g. a tmpfs such as
/run/helpdesk-metrics) before gunicorn starts; it is emptied at start so a restart begins at zero.
Other settings come from the command line or GUNICORN_CMD_ARGS as usual.
"""
import os
import shutil


def on_starting(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(folder, exist_ok=True)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
