"""One place that turns errors into pages or JSON: a clear 400 for bad input, 404, never a bare 500.

A malformed query is a 400 carrying the parser's message and the character position (the search
page itself shows it with a caret under the query); a bad parameter is a 400 naming it.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, InternalServerError

from discovery.engine import IndexUnusableError
from discovery.query import QueryError
from discovery.web.params import BadParam
from discovery.web.render import wants_json


def _wants_json() -> bool:
    return request.path.endswith(".json") or wants_json()


def error_response(status: int, title: str, message: str, **extra: Any) -> Any:
    if _wants_json():
        response = jsonify({"error": message, **extra})
        response.status_code = status
        return response
    return render_template("errors/error.html", status=status, title=title, message=message, extra=extra), status


def install(app: Flask) -> None:
    @app.errorhandler(QueryError)
    def query_error(error: QueryError) -> Any:
        return error_response(400, "The query could not be read", str(error), position=error.position)

    @app.errorhandler(BadParam)
    def bad_param(error: BadParam) -> Any:
        return error_response(400, "A parameter is not right", error.description or str(error), param=error.param)

    @app.errorhandler(IndexUnusableError)
    def index_unusable(error: IndexUnusableError) -> Any:  # an operator's job: say which command fixes it
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:  # being rebuilt right now (`discovery reindex`): it will be back
            response = error_response(503, "The search index is being rebuilt",
                                      "The search index is being rebuilt; try again in a moment.")
            response = app.make_response(response)
            response.headers["Retry-After"] = str(retry_after)
            return response
        return error_response(503, "The search index must be rebuilt", str(error))

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        status = error.code or 500
        if status >= 500:
            return error_response(status, "Something went wrong", "The server could not answer this request.")
        return error_response(status, error.name, error.description or error.name)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Any:  # a bug: logged with its traceback, shown without it
        app.logger.exception("unhandled error on %s", request.path)
        return http_error(InternalServerError())
