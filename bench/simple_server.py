"""Serve liveblog on gevent with simple-websocket instead of gevent-websocket (for the benchmark).

`python -m bench.simple_server`, configured by the same environment variables as app.py.
app.py hands gevent's WSGIServer gevent-websocket's WebSocketHandler; this serves the same app
with gevent's plain handler, so engine.io must speak WebSocket itself, through simple-websocket.

engine.io chooses its gevent WebSocket class when its driver is imported: gevent-websocket's
wrapper whenever that package can be imported, and that wrapper only works behind the
WebSocketHandler (without it every upgrade fails and clients stay on long-polling). So the
import is blocked here before the app is built; engine.io then falls back to simple-websocket,
which is what a deployment without gevent-websocket installed would run.
"""

from gevent import monkey

monkey.patch_all()

import resource  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402

sys.modules["geventwebsocket"] = None  # type: ignore[assignment]  # makes its import fail

import gevent  # noqa: E402
from engineio.async_drivers import gevent as engineio_gevent  # noqa: E402
from gevent import pywsgi  # noqa: E402

from liveblog import create_app  # noqa: E402
from liveblog.extensions import socketio  # noqa: E402


class CountUpgrades:
    """Counts WebSocket upgrades and which code took them, to print when the server stops."""

    def __init__(self, app) -> None:
        self.app = app
        self.upgrades = 0
        self.by_gevent_websocket = 0

    def __call__(self, environ, start_response):
        if environ.get("HTTP_UPGRADE", "").lower() == "websocket":
            self.upgrades += 1
            self.by_gevent_websocket += "wsgi.websocket" in environ
        return self.app(environ, start_response)


def main() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # a socket (two here) per reader
    app = create_app()
    eio = socketio.server.eio
    websocket_class = eio._async["websocket"]
    uses_simple = engineio_gevent.SimpleWebSocketWSGI is not None and issubclass(
        websocket_class, engineio_gevent.SimpleWebSocketWSGI
    )
    print(
        f" * engine.io async_mode={eio.async_mode}, WebSocket class "
        f"{websocket_class.__module__}.{websocket_class.__qualname__} "
        f"(simple-websocket: {uses_simple}); open files limit {hard}",
        flush=True,
    )
    if eio.async_mode != "gevent" or not uses_simple:
        sys.exit("engine.io is not on gevent with simple-websocket; refusing to benchmark it")

    counter = CountUpgrades(app.wsgi_app)
    app.wsgi_app = counter
    host, port = app.config["HOST"], app.config["PORT"]
    server = pywsgi.WSGIServer((host, port), app, log=None)  # no handler_class: plain gevent
    gevent.signal_handler(signal.SIGTERM, server.stop)
    gevent.signal_handler(signal.SIGINT, server.stop)
    print(f" * liveblog (gevent + simple-websocket) on http://{host}:{port}", flush=True)
    server.serve_forever()
    print(
        f" * stopped: {counter.upgrades} WebSocket upgrades, "
        f"{counter.by_gevent_websocket} of them through gevent-websocket",
        flush=True,
    )


if __name__ == "__main__":
    main()
