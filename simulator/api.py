"""The BILLmanager API (`/billmgr?func=...`): read a request, dispatch it, render the reply.

`call` knows no Flask: it finds the declared function (`simulator.functions`), logs the caller
in, checks the access level, meets the queued faults and runs it. The blueprint at the bottom
is the thin HTTP edge: it answers every request under `/billmgr` (wrong methods, paths and raw
bytes included) with a document in the asked format, never a traceback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from urllib.parse import unquote_to_bytes

from flask import Blueprint, Response, current_app, request
from werkzeug.http import HTTP_STATUS_CODES, dump_cookie, parse_cookie
from werkzeug.utils import get_content_type

from simulator import formats
from simulator.formats import Document, el
from simulator.functions import ADMIN, LOGIN, PUBLIC, Call, resolve
from simulator.functions.common import date, stamp
from simulator.model import ADMIN_LEVEL, Account, Seller, SellerError

__all__ = ["DirectAPI", "bp", "call", "date", "direct_reply", "dispatch", "stamp"]

SESSION_COOKIE = "billmgrses5"
BODY_LIMIT = 1024 * 1024  # bytes of request body the API reads; a larger body is refused
log = logging.getLogger(__name__)


@dataclass
class Reply:
    """What a call produced: a document, or a fault that replaces it, and a session to set."""

    document: Document | None
    fault: str | None = None
    session: str | None = None
    account: str | None = None
    result: str = "ok"


def error_document(error: SellerError) -> Document:
    return formats.error(error.type, error.object, error.msg, error.params)


def login(seller: Seller, params: dict, cookie: str | None) -> Account | None:
    """The caller's account from `authinfo`, `auth` or the session cookie, if any was given."""
    if params.get("authinfo"):
        user, _, password = str(params["authinfo"]).partition(":")
        return seller.authenticate(user, password)
    session = params.get("auth") or cookie
    if session:
        return seller.session_account(str(session))
    return None


def acting_as(seller: Seller, account: Account, params: dict) -> Account:
    """The account a call runs as: an administrator's `su=<login>` names another."""
    target = params.get("su")
    if not target or target == account.login:
        return account
    if account.level != ADMIN_LEVEL:
        raise SellerError("access", "su", "only an administrator may act as another user")
    return seller.account_by_id(target)


def claimed_login(seller: Seller, params: dict, cookie: str | None) -> str | None:
    """The login a call speaks for, checked or not, which faults aimed at an account match."""
    if params.get("authinfo"):
        return str(params["authinfo"]).partition(":")[0]
    if params.get("func") == "auth" and params.get("username"):
        return str(params["username"])
    session = params.get("auth") or cookie
    return seller.sessions.get(str(session), (None, None))[0] if session else None


def call(
    seller: Seller, params: dict, cookie: str | None = None, refusal: SellerError | None = None
) -> Reply:
    """Run one BILLmanager API call on `seller`, faults included, and return its reply.

    `refusal` is what the edge found wrong with the request itself: it is the answer, once the
    faults a call meets have had their turn.
    """
    func = str(params.get("func", "")).strip()
    # down, error and slow count any call, even one that would be refused (faults are looked
    # for, and the login a call claims for them to match, only while any is queued)
    if seller.faults.queued:
        claimed = claimed_login(seller, params, cookie)
        fault = seller.faults.take_for_call(func, claimed)
        if fault is not None:
            return Reply(None, fault=fault, account=claimed, result=fault)
    account = None
    try:
        if refusal is not None:
            raise refusal
        if not func:
            raise SellerError("missed", "func", "the parameter 'func' is required")
        fn = resolve(func)
        if fn.access == LOGIN:
            running = Call(seller, None, params, fn)
            document = fn.build(running)
            return Reply(document, session=running.session, account=running.account.login)
        account = login(seller, params, cookie)
        if account is None and fn.access != PUBLIC:
            raise SellerError("auth", "", "authentication required: send authinfo or auth")
        if fn.access == ADMIN and account.level != ADMIN_LEVEL:
            raise SellerError("access", func, f"'{func}' needs an administrator")
        if account is not None:
            account = acting_as(seller, account, params)
        document = fn.build(Call(seller, account, params, fn))
    except SellerError as error:
        return Reply(error_document(error), account=account and account.login, result=error.type)
    # lose_reply counts calls that changed the seller's state: the work is done, the reply lost
    login_name = account and account.login
    faults = seller.faults
    if faults.queued and faults.take_lost_reply(func, login_name, fn.changes_state(params)):
        return Reply(None, fault="lose_reply", account=login_name, result="lose_reply")
    if params.get("sok") and not document.has("ok"):
        document = document.changeable()
        document.root.insert(0, el("ok"))  # every successful sok=ok reply says so
    return Reply(document, account=login_name)


# -- reading a request ------------------------------------------------------------------------


class BadRequest(Exception):
    """A request the API cannot read: answered with its `SellerError`."""

    def __init__(self, error: SellerError):
        super().__init__(error.msg)
        self.error = error


def byte_pairs(raw: bytes) -> list[tuple[bytes, bytes]]:
    """`a=1&b=2` split and unquoted, still bytes (`parse_qsl` takes no raw non-ASCII bytes)."""
    pairs = []
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.partition(b"=")
        pairs.append(
            (
                unquote_to_bytes(name.replace(b"+", b" ")),
                unquote_to_bytes(value.replace(b"+", b" ")),
            )
        )
    return pairs


def decoded_pairs(raw: bytes, where: str) -> tuple[list[tuple[str, str]], SellerError | None]:
    """`a=1&b=2` as text pairs, and a refusal of the first name or value that is not UTF-8.

    The pairs that are UTF-8 are kept, so the refusal is in the format the request asks for.
    """
    if b"%" not in raw and b"+" not in raw:
        # Nothing to unquote, as in most calls: where the whole is UTF-8, so is each name and
        # value (cut at ASCII `&` and `=`), and splitting the text gives what decoding each
        # piece of `byte_pairs` would, with no call per piece.
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            pass  # each piece decoded below, to name the first that is not UTF-8
        else:
            return [part.partition("=")[::2] for part in text.split("&") if part], None
    pairs, problem = [], None
    for name, value in byte_pairs(raw):
        try:
            text_name = name.decode("utf-8")
        except UnicodeDecodeError:
            shown = name.decode("utf-8", "replace")
            problem = problem or SellerError(
                "value", shown, f"a parameter name in the {where} is not UTF-8"
            )
            continue
        try:
            pairs.append((text_name, value.decode("utf-8")))
        except UnicodeDecodeError:
            problem = problem or SellerError(
                "value", text_name, f"'{text_name}' in the {where} is not UTF-8"
            )
    return pairs, problem


def json_pairs(raw: bytes) -> list[tuple[str, str]]:
    """A JSON object body as parameters: strings as they are, numbers and booleans as text."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest(SellerError("value", "body", "the body is not valid JSON")) from None
    if not isinstance(body, dict):
        raise BadRequest(SellerError("value", "body", "a JSON body must be an object"))
    pairs = []
    for name, value in body.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "on" if value else "off"
        elif isinstance(value, int | float):
            value = str(value)
        elif not isinstance(value, str):
            raise BadRequest(SellerError("value", name, f"'{name}' must be a string or a number"))
        pairs.append((name, value))
    return pairs


def unpaired_surrogates(pairs: list[tuple[str, str]]) -> None:
    """BadRequest for a name or value with a lone surrogate (a JSON `\\ud800`): not UTF-8."""
    for name, value in pairs:
        for text in (name, value):
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest(
                    SellerError("value", name.encode("utf-8", "replace").decode(), "not UTF-8")
                ) from None


def read_body(environ: dict) -> bytes:
    """The request body; BadRequest if it is over BODY_LIMIT.

    Read straight from the WSGI input: werkzeug's stream costs more than most calls' own work.
    """
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH")
    if length:
        if not length.isdigit():
            raise BadRequest(SellerError("value", "Content-Length", f"'{length[:20]}' is bad"))
        if int(length) > BODY_LIMIT:
            raise BadRequest(too_large())
        return stream.read(int(length)) if stream is not None else b""
    if stream is None or not environ.get("wsgi.input_terminated"):
        return b""
    body = stream.read(BODY_LIMIT + 1)
    if len(body) > BODY_LIMIT:
        raise BadRequest(too_large())
    return body


def too_large() -> SellerError:
    return SellerError("value", "body", f"the request body is over the limit of {BODY_LIMIT} bytes")


def request_params() -> tuple[dict, SellerError | None]:
    """The Flask request's parameters, and what is wrong with the request (`parsed_params`)."""
    environ = request.environ

    def multipart() -> list[tuple[str, str]]:
        if (request.content_length or 0) > BODY_LIMIT:
            raise BadRequest(too_large())
        return list(request.form.items(multi=True))

    return parsed_params(
        request.query_string,
        environ.get("REQUEST_METHOD", ""),
        environ.get("CONTENT_TYPE", ""),
        lambda: read_body(environ),
        multipart,
    )


def parsed_params(
    query: bytes,
    method: str,
    content_type: str,
    body: Callable[[], bytes],
    multipart: Callable[[], list[tuple[str, str]]] | None = None,
) -> tuple[dict, SellerError | None]:
    """A request's parameters, and what is wrong with the request, if anything.

    The query's come first, then the body's: a form, a JSON object, or a form sent with no
    content type. The first value of a name wins. `body()` reads the body; `multipart()` the
    fields of a multipart form (the WSGI edge's only; the direct one hands those to it).
    """
    params: dict = {}
    try:
        pairs, problem = decoded_pairs(query, "query")
        for name, value in pairs:
            params.setdefault(name, value)
        if problem is not None:
            return params, problem
        if method != "POST":
            return params, None
        mimetype = content_type.partition(";")[0].strip().lower()
        if mimetype == "multipart/form-data" and multipart is not None:
            pairs = multipart()
            unpaired_surrogates(pairs)
        else:
            raw = body()
            if not raw.strip():
                return params, None
            if mimetype == "application/json" or raw.lstrip()[:1] == b"{":
                pairs = json_pairs(raw)
                unpaired_surrogates(pairs)
            else:  # decoded from UTF-8, which has no lone surrogates
                pairs, problem = decoded_pairs(raw, "body")
        for name, value in pairs:
            params.setdefault(name, value)
        if problem is not None:
            return params, problem
    except BadRequest as refused:
        return params, refused.error
    except Exception:  # werkzeug refusing a body it cannot parse, say: the request is bad
        log.warning("unreadable request body", exc_info=True)
        return params, SellerError("value", "body", "the request body cannot be read")
    return params, None


# -- the HTTP edge ----------------------------------------------------------------------------

bp = Blueprint("billmgr", __name__)
FAULT_STATUS = {"down": 503, "error": 500, "slow": 504, "lose_reply": 503}
API_PATHS = ("/billmgr", "/manager/billmgr")


def reply_for(
    holder, params: dict, cookie: str | None, refusal: SellerError | None
) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
    """Run the call under the seller's lock and log it: its status, headers, body and fault.

    The headers are the reply's every header, in order, so both edges send the same bytes.
    """
    seller: Seller = holder.seller
    name, unknown_out = formats.format_of(params)
    if unknown_out is not None and refusal is None:
        refusal = SellerError(
            "value", "out", f"'{unknown_out}' is not an output format the simulator speaks"
        )
    context = {"func": str(params.get("func", "")), "elids": elids_of(params)}
    with seller.lock:
        try:
            reply = call(seller, params, cookie, refusal)
            if reply.fault:
                body, mimetype, status = b"", formats.XML_TYPE, FAULT_STATUS[reply.fault]
            else:
                body, mimetype = formats.render(reply.document, name, context)
                status = 200
        except Exception:  # a bug, not bad input: logged here, a plain doc.error to the client
            log.exception("the simulator failed on func=%r", context["func"])
            failure = SellerError("internal", "", "the simulator failed on this call; see its log")
            reply = Reply(error_document(failure), result="internal")
            body, mimetype = formats.render(reply.document, name, context)
            status = 200
        seller.calls.append(
            {
                "at": logged_at(seller.now),
                "func": params.get("func", ""),
                "params": params,  # the call log masks and cuts what it keeps
                "account": reply.account,
                "status": status,
                "result": reply.result,
                "reply": body[:2000].decode("utf-8", "replace"),
            },
            hide=(reply.session,),  # a new session id, in the auth reply
        )
    headers = [("Content-Type", content_type_header(mimetype)), ("Content-Length", str(len(body)))]
    if reply.fault:
        headers.append(("X-Simulator-Fault", reply.fault))
    if reply.session:
        cookie_header = dump_cookie(SESSION_COOKIE, reply.session, httponly=True, samesite="Lax")
        headers.append(("Set-Cookie", cookie_header))
    return status, headers, body, reply.fault


@lru_cache(maxsize=1)  # the simulated clock stands still over most calls
def logged_at(now: datetime) -> str:
    """A call's moment as the call log shows it."""
    return stamp(now)


@lru_cache(maxsize=8)  # the few types of FORMATS
def content_type_header(mimetype: str) -> str:
    """A reply's Content-Type as Flask's `Response` writes it for this type."""
    return get_content_type(mimetype, "utf-8")


def direct_reply(
    holder, method: str, query: bytes, content_type: str, body: bytes, cookies: str | None
) -> tuple[int, list[tuple[str, str]], bytes]:
    """A GET or POST to `/billmgr` answered in-process without the WSGI stack.

    The same status, headers and bytes as the view below gives the same request; a multipart
    form is the WSGI edge's alone. `cookies` is the request's Cookie header.
    """

    def read() -> bytes:
        if len(body) > BODY_LIMIT:
            raise BadRequest(too_large())
        return body

    status, headers, content, _ = dispatch(holder, method, query, content_type, read, cookies)
    return status, headers, content


def dispatch(
    holder,
    method: str,
    query: bytes,
    content_type: str,
    body: Callable[[], bytes],
    cookies: str | None,
) -> tuple[int, list[tuple[str, str]], bytes, str | None]:
    """An API request from its raw parts, as the view below answers it, with its fault."""
    if holder.clock.running:  # as the app's `before_request` does
        holder.clock.catch_up(holder.seller)
    params, refusal = parsed_params(query, method, content_type, body)
    credentials = params.get("authinfo") or params.get("auth")
    cookie = None if credentials or not cookies else parse_cookie(cookies).get(SESSION_COOKIE)
    return reply_for(holder, params, cookie, refusal)


class DirectAPI:
    """WSGI middleware: GET and POST to the API answered by `dispatch`, the rest by Flask.

    What a server such as waitress hands the app; the reply is the view's, byte for byte,
    without Flask's request cycle. Installed as `app.wsgi_app`; `flask` is Flask's own.
    """

    def __init__(self, app):
        self.flask = app.wsgi_app
        self.holder = app.extensions["simulator"]

    def __call__(self, environ: dict, start_response):
        method = environ.get("REQUEST_METHOD", "")
        content_type = environ.get("CONTENT_TYPE", "")
        if (
            environ.get("PATH_INFO") not in API_PATHS
            or method not in ("GET", "POST")
            or content_type.lower().lstrip().startswith("multipart/")
        ):
            return self.flask(environ, start_response)
        try:
            query = environ.get("QUERY_STRING", "").encode("latin-1")
        except UnicodeEncodeError:
            return self.flask(environ, start_response)
        status, headers, body, fault = dispatch(
            self.holder,
            method,
            query,
            content_type,
            lambda: read_body(environ),
            environ.get("HTTP_COOKIE"),
        )
        if fault == "slow" and not environ.get("simulator.in_process"):
            time.sleep(self.holder.seller.slow_seconds)
        start_response(status_line(status), headers)
        return [body]


@lru_cache(maxsize=64)
def status_line(status: int) -> str:
    """A status as a WSGI server is given it (`200 OK`), from its code."""
    return f"{status} {HTTP_STATUS_CODES.get(status, 'unknown').upper()}"


def answer(params: dict, cookie: str | None, refusal: SellerError | None) -> Response:
    """The reply as Flask sends it; a `slow` fault over a socket keeps the client waiting."""
    holder = current_app.extensions["simulator"]
    status, headers, body, fault = reply_for(holder, params, cookie, refusal)
    if fault == "slow" and not request.environ.get("simulator.in_process"):
        time.sleep(holder.seller.slow_seconds)
    return Response(body, status=status, headers=headers)


def elids_of(params: dict) -> list[str]:
    raw = str(params.get("elid") or "")
    return [part.strip() for part in raw.split(",") if part.strip()]


@bp.route("/billmgr", methods=["GET", "POST"], provide_automatic_options=False)
@bp.route("/manager/billmgr", methods=["GET", "POST"], provide_automatic_options=False)
def billmgr() -> Response:
    params, refusal = request_params()
    # The cookie is read only when no credentials were sent: parsing it costs a call's work.
    credentials = params.get("authinfo") or params.get("auth")
    cookie = None if credentials else request.cookies.get(SESSION_COOKIE)
    return answer(params, cookie, refusal)


def under_api(path: str) -> bool:
    """Whether a path is the API's: `/billmgr` and anything that begins with it."""
    return path.startswith(API_PATHS)


def not_the_api(error):
    """A wrong path or method under `/billmgr` gets a `doc.error` (see `app.http_error`)."""
    params = dict(decoded_pairs(request.query_string, "query")[0])
    if error.code == 405:
        problem = SellerError(
            "value", "method", f"the API takes GET and POST, not {request.method[:20]}"
        )
    else:
        problem = SellerError(
            "value", "path", "no such page under /billmgr; the API is /billmgr itself"
        )
    return answer(params, None, problem)
