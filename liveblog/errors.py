"""Errors answered as JSON for the API and API-minded clients, as a page for people."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from .security import clip
from .services import ServiceError

# A refusal quotes what was asked for; a client must not get back (or make us log) a
# megabyte of its own input in it.
MAX_MESSAGE = 300

MESSAGES = {
    400: "The request could not be understood.",
    401: "You need to sign in (or send an API token) to do that.",
    403: "You are not allowed to do that.",
    404: "There is nothing at this address.",
    405: "This address does not accept that method.",
    409: "That conflicts with something that already exists.",
    413: "That request is too large.",
    422: "That could not be saved as given.",
    429: "Too many requests; wait a moment and try again.",
}


def wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    accepted = request.accept_mimetypes
    return accepted.accept_json and not accepted.accept_html


def error_response(status: int, message: str):
    message = clip(message, MAX_MESSAGE)
    if wants_json():
        return jsonify(error=message), status
    return render_template("error.html", status=status, message=message), status


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def _csrf(error: CSRFError):
        return error_response(
            400,
            "This form was sent without a valid security token. Reload the page and send it again.",
        )

    @app.errorhandler(RequestEntityTooLarge)
    def _too_large(error: RequestEntityTooLarge):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return error_response(413, f"The request is larger than the {limit:,}-byte limit.")

    @app.errorhandler(UnicodeDecodeError)
    def _not_utf8(error: UnicodeDecodeError):
        # Werkzeug decodes the query string when a view first reads it, and a raw byte that
        # is not UTF-8 fails there: the client's mistake, not ours.
        return error_response(400, "The address is not valid UTF-8.")

    @app.errorhandler(ServiceError)
    def _service(error: ServiceError):
        return error_response(error.status, error.message)

    @app.errorhandler(HTTPException)
    def _http(error: HTTPException):
        status = error.code or 500
        description = error.description if error.description != type(error).description else None
        return error_response(status, description or MESSAGES.get(status, error.name))

    @app.errorhandler(500)
    def _internal(error: Exception):
        return error_response(500, "Something went wrong on our side; nothing was saved.")
