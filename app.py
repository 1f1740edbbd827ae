"""Serve liveblog: `python app.py`. `flask --app app ...` finds the application here too."""

if __name__ == "__main__":
    # Before anything else is imported, so sockets, locks and the database driver all
    # cooperate with gevent's event loop: one process then holds thousands of readers.
    from gevent import monkey

    monkey.patch_all()

from liveblog import create_app

app = create_app()

if __name__ == "__main__":
    from liveblog.extensions import socketio

    print(f" * liveblog on http://{app.config['HOST']}:{app.config['PORT']}", flush=True)
    socketio.run(app, host=app.config["HOST"], port=app.config["PORT"], log_output=False)
