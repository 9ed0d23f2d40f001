"""DATABASE_URL for asyncpg (the reports' driver): libpq's meaning of each parameter, or a
refusal (docs/adr/017).

Every other connection of the service is libpq's (psycopg), which reads the URL whole.
asyncpg is not libpq. It reads a libpq URL's hosts, ports, credentials, database,
`target_session_attrs` and `ssl*` parameters itself, with libpq's meanings: `verify-full`
checks the chain against `sslrootcert` and the host name, `verify-ca` the chain, `require`
the chain when a root certificate is given (asyncpg/connect_utils.py). Some parameters it
takes by another name, and any it does not know it would send to the server as a run-time
setting, where most are errors. So each parameter is passed in the URL asyncpg reads,
translated, found already satisfied by what asyncpg always does, or refused: the start
stops rather than the reports connecting otherwise than the rest.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote, urlencode

import asyncpg
from psycopg.conninfo import conninfo_to_dict

# Read by asyncpg from the URL it is given, as libpq reads them.
IN_URL = frozenset(
    {
        "host",
        "port",
        "user",
        "password",
        "dbname",
        "passfile",
        "sslmode",
        "sslcert",
        "sslkey",
        "sslrootcert",
        "sslcrl",
        "sslpassword",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "sslnegotiation",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
    }
)
# Values asyncpg meets by what it always does.
SATISFIED = {
    # asyncpg never encrypts with GSSAPI, as libpq without a Kerberos ticket.
    "gssencmode": {"disable", "prefer"},
    # asyncpg does not bind SCRAM to the TLS channel: as libpq with a server that does not.
    "channel_binding": {"disable", "prefer"},
    # asyncpg sends the host name as SNI.
    "sslsni": {"1"},
    # libpq ignores it since OpenSSL dropped compression; so does asyncpg.
    "sslcompression": {"0", "1"},
    # asyncpg tries the hosts in the order given.
    "load_balance_hosts": {"disable"},
    # asyncpg sends a client certificate when one is given, as libpq's default.
    "sslcertmode": {"allow"},
    # asyncpg speaks UTF-8 only.
    "client_encoding": {"utf8", "utf-8", "unicode"},
}
KEEPALIVES = ("keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout")
_SOCKET_OPTIONS = {
    "keepalives_idle": "TCP_KEEPIDLE",
    "keepalives_interval": "TCP_KEEPINTVL",
    "keepalives_count": "TCP_KEEPCNT",
    "tcp_user_timeout": "TCP_USER_TIMEOUT",
}


def asyncpg_arguments(url: str) -> dict[str, Any]:
    """asyncpg.connect's keyword arguments for the connection a libpq URL describes;
    ValueError, naming the parameter, for one asyncpg cannot honour."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items()}
    arguments: dict[str, Any] = {}
    server_settings: dict[str, str] = {}
    for name, value in params.items():
        if name in IN_URL or name in ("connect_timeout", "keepalives", *KEEPALIVES):
            continue
        if name in ("application_name", "fallback_application_name"):
            continue
        if name == "options":
            server_settings |= _options(value)
        elif value.lower() not in SATISFIED.get(name, ()):
            raise ValueError(
                f"{name}={value} cannot reach the reports' connections (asyncpg, not libpq); "
                "remove it from DATABASE_URL"
            )
    application = params.get("application_name") or params.get("fallback_application_name")
    if application:
        server_settings["application_name"] = application
    if server_settings:
        arguments["server_settings"] = server_settings

    hosts = params.get("host", "").split(",")
    timeout = _whole("connect_timeout", params.get("connect_timeout"))
    if timeout is not None:
        # libpq waits that long for each host it tries; asyncpg's timeout is for them all.
        arguments["timeout"] = timeout * len(hosts) if timeout > 0 else None

    if params.get("keepalives", "1") != "0":
        chosen = {k: int(_whole(k, params[k]) or 0) for k in KEEPALIVES if k in params}
        arguments["connection_class"] = _kept_alive(chosen)

    in_url = {k: v for k, v in params.items() if k in IN_URL}
    if in_url.get("sslrootcert") == "system":
        arguments["ssl"] = _system_trust(in_url)
        for key in [k for k in in_url if k.startswith("ssl")]:
            del in_url[key]
    arguments["dsn"] = _dsn(in_url)
    return arguments


def _dsn(params: dict[str, str]) -> str:
    """A URL asyncpg reads as libpq would: hosts and ports as lists in the query."""
    params = dict(params)
    auth = quote(params.pop("user", ""), safe="")
    password = params.pop("password", None)
    if password:
        auth += ":" + quote(password, safe="")
    dbname = quote(params.pop("dbname", ""), safe="")
    if "host" in params:  # asyncpg reads host:port pairs, so an IPv6 address is bracketed
        params["host"] = ",".join(
            f"[{h}]" if ":" in h and not h.startswith("/") else h for h in params["host"].split(",")
        )
    query = urlencode(params, safe="/,[]:")
    return f"postgresql://{auth}{'@' if auth else ''}/{dbname}" + (f"?{query}" if query else "")


def _options(value: str) -> dict[str, str]:
    """libpq's `options` (`-c name=value`, `--name=value`) as asyncpg's server settings."""
    words: list[str] = []
    word, escaped = "", False
    for char in value:
        if escaped:
            word, escaped = word + char, False
        elif char == "\\":
            escaped = True
        elif char.isspace():
            if word:
                words.append(word)
            word = ""
        else:
            word += char
    if word:
        words.append(word)
    settings: dict[str, str] = {}
    pending = iter(words)
    for word in pending:
        if word == "-c":
            setting = next(pending, "")
        elif word.startswith(("-c", "--")):
            setting = word[2:]
        else:
            setting = ""
        key, equals, setting_value = setting.partition("=")
        if not key or not equals:
            raise ValueError(
                f"options: only `-c name=value` settings reach the reports' connections "
                f"(asyncpg, not libpq), not {word!r}"
            )
        settings[key.replace("-", "_")] = setting_value
    return settings


def _whole(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"{name}: must be a whole number, not {value!r}") from None
    if name == "connect_timeout" and 0 < number < 2:
        number = 2  # libpq's minimum
    return number


def _system_trust(params: Mapping[str, str]) -> ssl.SSLContext:
    """`sslrootcert=system` (libpq 16): the system's CAs, the chain and the name checked."""
    mode = params.get("sslmode", "verify-full")
    if mode != "verify-full":
        raise ValueError(f"sslmode={mode} with sslrootcert=system: libpq requires verify-full")
    context = ssl.create_default_context()
    if params.get("sslcert"):
        context.load_cert_chain(
            params["sslcert"], params.get("sslkey"), password=params.get("sslpassword")
        )
    if params.get("sslcrl"):
        context.load_verify_locations(cafile=params["sslcrl"])
        context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
    for name, attribute in (
        ("ssl_min_protocol_version", "minimum_version"),
        ("ssl_max_protocol_version", "maximum_version"),
    ):
        if params.get(name):
            setattr(context, attribute, ssl.TLSVersion[params[name].replace(".", "_")])
    return context


def _kept_alive(chosen: dict[str, int]) -> type[asyncpg.Connection]:
    """A connection class that sets libpq's TCP keepalives on its socket (libpq turns
    SO_KEEPALIVE on unless keepalives=0; asyncpg never does)."""

    class KeptAlive(asyncpg.Connection):  # type: ignore[misc]
        keepalives: ClassVar[dict[str, int]] = chosen

        # asyncpg builds a connection as Connection(protocol, transport, ...).
        def __init__(self, protocol: Any, transport: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(protocol, transport, *args, **kwargs)
            sock = transport.get_extra_info("socket")
            if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
                return  # a Unix socket: nothing to keep alive, as libpq
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            for name, seconds in self.keepalives.items():
                option = getattr(socket, _SOCKET_OPTIONS[name], None)
                if option is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, option, seconds)

    return KeptAlive
