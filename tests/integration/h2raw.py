"""A raw HTTP/2 client for tests that need frames curl will not send (RFC 9113, RFC 7541): the
connection preface, HEADERS with a literal HPACK block, RST_STREAM, and reading frames back."""
import socket
import ssl
import struct

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0x0, 0x1, 0x7, 0x8, 0xB


def _integer(value, prefix_bits, first=0):
    """HPACK integer (RFC 7541 section 5.1)."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def _string(text):
    raw = text.encode()
    return _integer(len(raw), 7) + raw  # no Huffman coding


def _literal(index, value):
    """HPACK literal field without indexing, name from the static table (RFC 7541 section 6.2.2)."""
    return _integer(index, 4) + _string(value)


def _literal_new_name(name, value):
    """HPACK literal field without indexing, new name."""
    return b"\x00" + _string(name) + _string(value)


class Connection:
    def __init__(self, port, host="frontend.com"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
        self.sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10), server_hostname=host)
        assert self.sock.selected_alpn_protocol() == "h2", self.sock.selected_alpn_protocol()
        self.host = host
        self.buf = b""
        self.sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + self.frame(SETTINGS, 0, 0, b""))

    @staticmethod
    def frame(kind, flags, stream, payload):
        return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + struct.pack("!I", stream) + payload

    def request_frame(self, stream, path="/", headers=(), authority=True):
        """HEADERS (and CONTINUATION frames past 16 KiB) for a GET of `path`."""
        block = b"\x82\x87" + _literal(4, path)  # GET, https, :path
        if authority:
            block += _literal(1, self.host)
        for name, value in headers:
            block += _literal_new_name(name, value)
        chunks = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        out = b""
        for i, chunk in enumerate(chunks):
            last = END_HEADERS if i == len(chunks) - 1 else 0
            out += self.frame(HEADERS if i == 0 else CONTINUATION, last | (END_STREAM if i == 0 else 0), stream, chunk)
        return out

    def send(self, data):
        """False when the gateway has already closed the connection (it may, on bad input)."""
        try:
            self.sock.sendall(data)
            return True
        except (OSError, ssl.SSLError):
            return False

    def read_frame(self):
        """(type, flags, stream, payload), or None when the connection has closed."""
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            try:
                chunk = self.sock.recv(65536)
            except (OSError, ssl.SSLError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk
        n = int.from_bytes(self.buf[:3], "big")
        kind, flags = self.buf[3], self.buf[4]
        stream = struct.unpack("!I", self.buf[5:9])[0] & 0x7FFFFFFF
        payload = self.buf[9:9 + n]
        self.buf = self.buf[9 + n:]
        if kind == SETTINGS and not flags & ACK:
            self.send(self.frame(SETTINGS, ACK, 0, b""))
        return kind, flags, stream, payload

    def frames_until(self, predicate, limit=100000):
        seen = []
        for _ in range(limit):
            f = self.read_frame()
            if f is None:
                break
            seen.append(f)
            if predicate(f):
                break
        return seen

    def close(self):
        self.sock.close()


STATIC_STATUS = {0x88: 200, 0x89: 204, 0x8A: 206, 0x8B: 304, 0x8C: 400, 0x8D: 404, 0x8E: 500}


def response(frames, stream):
    """(status, body) of `stream` from frames read. The status is read from a fully indexed
    :status (RFC 7541 appendix A: the static table has 200, 204, 206, 304, 400, 404 and 500),
    which an encoder uses for these first in a header block; None for any other."""
    body = b"".join(f[3] for f in frames if f[0] == DATA and f[2] == stream)
    for kind, _, sid, payload in frames:
        if kind == HEADERS and sid == stream:
            return STATIC_STATUS.get(payload[0]), body
    return None, body


def goaway_error(frames):
    for kind, _, _, payload in frames:
        if kind == GOAWAY:
            return struct.unpack("!I", payload[4:8])[0]
    return None
