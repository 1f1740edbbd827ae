"""gunicorn settings for `make serve`: one gevent-websocket worker, on HOST:PORT.

One worker per process, always: Flask-SocketIO keeps each reader's Engine.IO session in the
memory of the process that accepted it, and the long-polling transport sends every request
of a session to that same process. Several workers behind one port would receive a
session's requests at random and refuse most of them. To use more cores, run more
processes, each on its own port, behind nginx with sticky sessions (deploy/nginx.conf,
deploy/liveblog@.service), all sharing one PostgreSQL database and one Redis.
"""

import os
import sys

# Without PUBLIC_URL, pages build their links from the request's Host; a process facing the
# world answers only the host names it is given (ALLOWED_HOSTS), or a cache in front would
# hand the links of one forged Host to every reader. `make run` (development) needs neither.
if not (os.environ.get("PUBLIC_URL") or os.environ.get("ALLOWED_HOSTS", "").strip(", ")):
    sys.stderr.write(
        "liveblog: set PUBLIC_URL (the site's address) or ALLOWED_HOSTS (its host names) "
        "before `make serve`; see deploy/README\n"
    )
    sys.exit(78)  # EX_CONFIG: the systemd unit does not restart on it (RestartPreventExitStatus)

wsgi_app = "app:app"
# The worker class lives beside this file: importing it from the liveblog package would load
# the whole application (and ssl) in gunicorn's master, before gevent patches the worker.
pythonpath = os.path.dirname(os.path.abspath(__file__))
bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '5000')}"
workers = 1
worker_class = "liveblog_worker.Worker"  # gevent-websocket's, with timeouts (see there)
# Connections one process holds at once, WebSockets included: readers are idle greenlets, so
# this is bounded by memory and the file limit (LimitNOFILE in the systemd unit), not by CPU.
worker_connections = int(os.environ.get("WORKER_CONNECTIONS") or 10000)
# Connections the kernel holds while the process is busy: a crowd arriving at once waits
# there instead of being refused (the kernel caps it at net.core.somaxconn).
backlog = int(os.environ.get("LISTEN_BACKLOG") or 2048)
# Seconds a connection may wait for its next request before it is closed.
keepalive = int(os.environ.get("KEEPALIVE_TIMEOUT") or 5)
# On SIGTERM: readers' sockets are closed at once (liveblog_worker.py); requests in progress
# get this long to finish.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT") or 30)
# The worker's heartbeat: a worker whose event loop is stuck this long is restarted.
timeout = 60
# The application logs each request itself (liveblog.logs), in the configured format.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# gunicorn's runtime control socket: off, since one fixed path would be shared by every
# process on the machine; these processes are managed by signals (systemd, deploy/README).
control_socket_disable = True
proc_name = f"liveblog:{os.environ.get('PORT', '5000')}"

if os.environ.get("LOG_FORMAT") == "json":
    # gunicorn's own lines (start, stop, worker restarts) as JSON too, like the application's.
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "root": {"level": "WARNING", "handlers": []},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": ["json"], "propagate": False},
        },
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level"},
            },
        },
    }


def post_worker_init(worker) -> None:
    """Once the worker has loaded the app: full garbage collections made rare and short, as
    `python app.py` does, so that none lands in the middle of a broadcast to thousands."""
    from liveblog.transport import tune_garbage_collector

    tune_garbage_collector()
