"""Serve liveblog: `python app.py`. `flask --app app ...` finds the application here too."""

if __name__ == "__main__":
    # Before anything else is imported, so sockets, locks and the database driver all
    # cooperate with gevent's event loop: one process then holds thousands of readers.
    from gevent import monkey

    monkey.patch_all()

from liveblog import create_app

app = create_app()


def serve() -> None:
    """gevent's WSGI server with gevent-websocket's handler, as Flask-SocketIO's run() starts
    it, but with a listen backlog for crowds and the handler's smaller read buffer."""
    from gevent.pywsgi import WSGIServer

    from liveblog.transport import ReaderHandler, tune_garbage_collector

    server = WSGIServer(
        (app.config["HOST"], app.config["PORT"]),
        app,
        handler_class=ReaderHandler,
        log=None,
        backlog=app.config["LISTEN_BACKLOG"],
    )
    tune_garbage_collector()
    print(f" * liveblog on http://{app.config['HOST']}:{app.config['PORT']}", flush=True)
    if not (app.config["PUBLIC_URL"] or app.config["ALLOWED_HOSTS"]):
        # Fine on one's own machine; behind a shared cache, a forged Host would reach readers.
        print(
            " * links follow each request's Host: set PUBLIC_URL or ALLOWED_HOSTS before a "
            "cache or proxy serves this to others (make serve requires one)",
            flush=True,
        )
    server.serve_forever()


if __name__ == "__main__":
    serve()
