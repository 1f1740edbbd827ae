"""Serve liveblog: `python app.py`. `flask --app app ...` finds the application here too."""

if __name__ == "__main__":
    # Before anything else is imported, so sockets, locks and the database driver all
    # cooperate with gevent's event loop: one process then holds thousands of readers.
    from gevent import monkey

    monkey.patch_all()

import gc

from liveblog import create_app

app = create_app()


def tune_garbage_collector() -> None:
    """Keep full collections rare and short: with thousands of readers one took 0.2-1.2 s,
    and every reader waited for an update that was being sent while it ran.

    What start-up loaded lives as long as the process, so it is frozen out of the
    collector's sight; the young generation is collected less often (readers' connections
    are long-lived and cycle-free in the common case), and a full collection needs ten
    times as many young ones before it is due.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


def serve() -> None:
    """gevent's WSGI server with gevent-websocket's handler, as Flask-SocketIO's run() starts
    it, but with a listen backlog for crowds and the handler's smaller read buffer."""
    from gevent.pywsgi import WSGIServer

    from liveblog.transport import ReaderHandler

    server = WSGIServer(
        (app.config["HOST"], app.config["PORT"]),
        app,
        handler_class=ReaderHandler,
        log=None,
        backlog=app.config["LISTEN_BACKLOG"],
    )
    tune_garbage_collector()
    print(f" * liveblog on http://{app.config['HOST']}:{app.config['PORT']}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve()
