"""express-jsonstore WSGI worker: imports one WSGI app and serves requests
for the Node side of `pythonWsgi()`, one after another, like a gunicorn sync
worker.

Usage (started by the pool, not by hand):  python3 jsonstore_wsgi_runner.py module:callable

Frames on the pipes are: 1 type byte, a 4-byte big-endian payload length, the
payload. The protocol uses copies of the original stdin/stdout; fd 0 becomes
/dev/null and fd 1 goes to stderr, so an app's print() cannot corrupt it.

Node -> worker:  H environ (name NUL value NUL ...)   J environ (JSON, when a value holds a NUL)
                 B request body chunk   E end of request body
                 A abort (the client left)
Worker -> Node:  R ready (JSON {pid})   F could not load the app (traceback text)
                 s start of response (status NUL name NUL value ...)
                 S the same as JSON [status, [[name, value], ...]] (a NUL or a lone surrogate in it)
                 B response body chunk   E end of response
                 X the app failed (JSON {traceback})   L wsgi.errors text
"""
import importlib
import json
import os
import select
import signal
import struct
import sys
import traceback
from urllib.parse import unquote_to_bytes

FRAME = struct.Struct('>cI')
READ_SIZE = 65536
MAX_READ = 1 << 20
# Unread request body the worker holds while it polls for an abort; past it,
# it stops reading ahead, the pipe fills and Node stops reading the upload.
MAX_UNREAD_BODY = 1 << 20


class ClientDisconnected(OSError):
    """Raised from wsgi.input reads when the HTTP client went away."""


class Channel:
    """Frames in from Node (blocking or polled), frames out to Node.

    Reads land in one bytes object read from an offset: a small request (its
    H and E frames in one read) is taken apart without copying it around.
    """

    def __init__(self, fd_in, fd_out):
        self.fd_in = fd_in
        self.fd_out = fd_out
        self.data = b''
        self.pos = 0
        self.errors = WsgiErrors(self)

    def _fill(self, needed):
        """Reads until `needed` more bytes are in (a large frame: its pieces joined once)."""
        parts = [self.data[self.pos:]] if self.pos < len(self.data) else []
        got = 0
        while got < needed:
            data = os.read(self.fd_in, min(max(READ_SIZE, needed - got), MAX_READ))
            if not data:
                raise EOFError()
            parts.append(data)
            got += len(data)
        self.data = parts[0] if len(parts) == 1 else b''.join(parts)
        self.pos = 0

    def _take(self):
        """One complete frame, or how many more bytes the next one needs."""
        data = self.data
        pos = self.pos
        available = len(data) - pos
        if available < 5:
            return 5 - available
        kind, length = FRAME.unpack_from(data, pos)
        end = pos + 5 + length
        if end > len(data):
            return end - len(data)
        self.pos = end
        return kind, data[pos + 5:end]

    def read(self):
        """The next frame, waiting for it. EOFError when Node closed the pipe."""
        while True:
            taken = self._take()
            if type(taken) is tuple:
                return taken
            self._fill(taken)

    def poll(self):
        """Frames that arrived already, without waiting."""
        frames = []
        if select.select([self.fd_in], [], [], 0)[0]:
            data = os.read(self.fd_in, READ_SIZE)
            if not data:
                raise EOFError()
            self.data = self.data[self.pos:] + data
            self.pos = 0
            while True:
                taken = self._take()
                if type(taken) is not tuple:
                    break
                frames.append(taken)
        return frames

    def send(self, data):
        written = os.write(self.fd_out, data)
        if written == len(data):
            return
        view = memoryview(data)[written:]
        while view:
            written = os.write(self.fd_out, view)
            view = view[written:]


def frame(kind, payload=b''):
    return FRAME.pack(kind, len(payload)) + payload


# Node's limits per frame type (python-protocol.ts): past them it kills the worker as corrupt.
MAX_FRAME = 1 << 20
MAX_HEAD_FRAME = 64 << 10


def text_frame(kind, text):
    """A traceback as one frame: past MAX_FRAME only its end (where the exception is) is kept."""
    data = text.encode('utf-8', 'replace')
    if len(data) > MAX_FRAME:
        data = b'(traceback cut to its end)\n' + data[-(MAX_FRAME - 64):]
    return frame(kind, data)


def split_frames(kind, data):
    """Data as frames of at most MAX_FRAME bytes (Node refuses larger ones as corrupt, and joins the pieces)."""
    if len(data) <= MAX_FRAME:
        return frame(kind, data)
    view = memoryview(data)
    return b''.join(frame(kind, bytes(view[start:start + MAX_FRAME])) for start in range(0, len(data), MAX_FRAME))


def body_frames(chunk):
    """A body chunk as B frames."""
    return split_frames(b'B', chunk)


class Exchange:
    """One request: its body frames as they arrive, and whether the client left."""

    def __init__(self, channel):
        self.channel = channel
        self.chunks = []
        self.buffered = 0
        self.body_ended = False
        self.aborted = False

    def accept(self, kind, payload):
        if kind == b'B':
            self.chunks.append(payload)
            self.buffered += len(payload)
        elif kind == b'E':
            self.body_ended = True
        elif kind == b'A':
            self.aborted = True
        # A stray H cannot happen: Node sends the next request after our E.

    def wait_for_body(self):
        """Blocks until one more body frame (or the end) arrived."""
        kind, payload = self.channel.read()
        self.accept(kind, payload)
        if self.aborted:
            raise ClientDisconnected('the client disconnected')

    def poll_abort(self):
        """Whether the client left, as far as the frames read so far say (an abort behind a full pipe waits for the timeout)."""
        if self.buffered < MAX_UNREAD_BODY:
            for kind, payload in self.channel.poll():
                self.accept(kind, payload)
        return self.aborted


class WsgiInput:
    """wsgi.input: reads block until the body frames they need arrive."""

    def __init__(self, exchange):
        self.exchange = exchange
        self.buffer = bytearray()

    def _more(self):
        exchange = self.exchange
        if exchange.aborted:
            raise ClientDisconnected('the client disconnected')
        if exchange.chunks:
            for chunk in exchange.chunks:
                self.buffer += chunk
            exchange.chunks = []
            exchange.buffered = 0
            return True
        if exchange.body_ended:
            return False
        exchange.wait_for_body()
        return True

    def read(self, size=-1):
        if size is None or size < 0:
            while self._more():
                pass
            size = len(self.buffer)
        while len(self.buffer) < size and self._more():
            pass
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    def readline(self, size=-1):
        limit = None if size is None or size < 0 else size
        start = 0
        while True:
            newline = self.buffer.find(b'\n', start)
            if newline != -1:
                end = newline + 1
                break
            if limit is not None and len(self.buffer) >= limit:
                end = limit
                break
            start = len(self.buffer)
            if not self._more():
                end = len(self.buffer)
                break
        if limit is not None:
            end = min(end, limit)
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    def readlines(self, hint=-1):
        lines = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def close(self):
        pass


class WsgiErrors:
    """wsgi.errors: text to the bridge's logger, a frame per write."""

    def __init__(self, channel):
        self.channel = channel

    def write(self, text):
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode('utf-8', 'replace')
        if text:
            # Node joins the pieces, a character split in two included.
            self.channel.send(split_frames(b'L', str(text).encode('utf-8', 'replace')))
        return len(text)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass


def check_status(status):
    if type(status) is not str:
        raise TypeError('start_response(): status must be a str such as "200 OK", got %s' % type(status).__name__)
    if len(status) < 4 or not status[:3].isdigit() or status[3] != ' ':
        raise ValueError('start_response(): status %r must be three digits, a space and a reason phrase' % status)


def check_headers(headers):
    if type(headers) is not list:
        raise TypeError('start_response(): headers must be a list of (name, value) tuples, got %s' % type(headers).__name__)
    for pair in headers:
        if type(pair) is not tuple or len(pair) != 2:
            raise TypeError('start_response(): each header must be a (name, value) tuple, got %r' % (pair,))
        name, value = pair
        if type(name) is not str or type(value) is not str:
            raise TypeError('start_response(): header %r must have str name and value' % (pair,))


def as_bytes(chunk, where):
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError('%s: body chunks must be bytes, got %s' % (where, type(chunk).__name__))


def native_path(raw):
    """PEP 3333: paths are the request's bytes, percent-decoded, as latin-1 str.
    Node hands over the request target's bytes as latin-1 characters."""
    return unquote_to_bytes(raw.encode('latin-1', 'replace')).decode('latin-1')


class Response:
    """start_response() and write() for one request, and the frames they send."""

    def __init__(self, channel):
        self.channel = channel
        self.status = None
        self.headers = None
        self.headers_sent = False

    def start_response(self, status, headers, exc_info=None):
        if exc_info:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError('start_response() was already called; pass exc_info to replace the response after an error')
        check_status(status)
        check_headers(headers)
        self.status = status
        self.headers = headers
        return self.write

    def declare_length(self, length):
        """A body known in full gets a Content-Length, unless the app set one (or the status has no body)."""
        status = self.status
        if status is None or status[:3] in ('204', '304') or status[0] == '1':
            return
        for name, _ in self.headers:
            if len(name) == 14 and name.lower() == 'content-length':
                return
        self.headers = self.headers + [('Content-Length', str(length))]

    def head_frame(self):
        if self.status is None:
            raise AssertionError('the app produced a body before calling start_response()')
        head = self._head_frame()
        if len(head) > MAX_HEAD_FRAME + FRAME.size:
            raise ValueError('the response head is larger than %d bytes' % MAX_HEAD_FRAME)
        self.headers_sent = True
        return head

    def _head_frame(self):
        fields = [self.status]
        for name, value in self.headers:
            fields.append(name)
            fields.append(value)
        text = '\0'.join(fields)
        if text.count('\0') == len(fields) - 1:
            try:
                return frame(b's', text.encode('utf-8'))
            except UnicodeEncodeError:
                pass  # A lone surrogate: JSON escapes it and Node names it in its error.
        # A NUL inside a name or value: JSON keeps it, and Node refuses the header by name.
        return frame(b'S', json.dumps([self.status, self.headers]).encode('utf-8'))

    def write(self, data):
        data = as_bytes(data, 'write()')
        if not data:
            return
        out = b'' if self.headers_sent else self.head_frame()
        self.channel.send(out + body_frames(data))


def decode_environ(kind, payload):
    """H: names and values separated by NUL (UTF-8); J: a JSON object (a value held a NUL)."""
    if kind == b'J':
        return json.loads(payload)
    fields = iter(payload.decode('utf-8').split('\0'))
    return dict(zip(fields, fields))


def build_environ(kind, payload, exchange, channel):
    environ = decode_environ(kind, payload)
    environ['SCRIPT_NAME'] = native_path(environ['SCRIPT_NAME'])
    environ['PATH_INFO'] = native_path(environ['PATH_INFO'])
    environ['wsgi.version'] = (1, 0)
    environ['wsgi.input'] = WsgiInput(exchange)
    environ['wsgi.errors'] = channel.errors
    environ['wsgi.multithread'] = False
    environ['wsgi.multiprocess'] = True
    environ['wsgi.run_once'] = False
    environ['wsgi.input_terminated'] = True
    return environ


def handle(app, channel, kind, payload):
    exchange = Exchange(channel)
    response = Response(channel)
    result = None
    try:
        environ = build_environ(kind, payload, exchange, channel)
        result = app(environ, response.start_response)
        if isinstance(result, (list, tuple)):
            # Known in full: checked first, sent in one write.
            chunks = [as_bytes(chunk, 'the body') for chunk in result]
            if not response.headers_sent:
                response.declare_length(sum(len(chunk) for chunk in chunks))
            out = [] if response.headers_sent else [response.head_frame()]
            out.extend(body_frames(chunk) for chunk in chunks if chunk)
            out.append(frame(b'E'))
            channel.send(b''.join(out))
        else:
            first = True
            for chunk in result:
                # The client may have left: stop at the next chunk (close() still runs).
                if not first and exchange.poll_abort():
                    break
                first = False
                response.write(chunk)
            channel.send((b'' if response.headers_sent else response.head_frame()) + frame(b'E'))
    except ClientDisconnected:
        channel.send(frame(b'X', json.dumps({'traceback': '', 'disconnected': True}).encode('utf-8')))
    except Exception:
        text = traceback.format_exc()
        payload = json.dumps({'traceback': text}).encode('utf-8')
        if len(payload) > MAX_FRAME:
            # JSON escapes a character in up to 12 bytes (a surrogate pair): the end that fits whatever it holds.
            payload = json.dumps({'traceback': '(traceback cut to its end)\n' + text[-(MAX_FRAME // 12 - 64):]}).encode('utf-8')
        channel.send(frame(b'X', payload))
    finally:
        close = getattr(result, 'close', None)
        if close is not None:
            try:
                close()
            except Exception:
                channel.errors.write('the body\'s close() failed:\n' + traceback.format_exc())


def load(spec):
    module_name, _, attribute = spec.partition(':')
    target = importlib.import_module(module_name)
    for part in (attribute or 'application').split('.'):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError('%s is not callable' % spec)
    return target


def die_with_parent():
    """Linux: SIGKILL when the Node process dies, even if the app is busy."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass  # Elsewhere: the closed stdin pipe still ends the worker once idle.
    parent = os.environ.get('JSONSTORE_WSGI_PARENT')
    if parent and os.getppid() != int(parent):
        os._exit(0)  # The parent died before prctl took effect.


def main():
    die_with_parent()
    channel = Channel(os.dup(0), os.dup(1))
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    try:
        sys.stdout.reconfigure(line_buffering=True)
    except Exception:
        pass
    # The app's directory (the working directory) first, not the runner's.
    sys.path[0] = os.getcwd()
    try:
        app = load(sys.argv[1])
    except BaseException:
        channel.send(text_frame(b'F', traceback.format_exc()))
        return 1
    channel.send(frame(b'R', json.dumps({'pid': os.getpid()}).encode('utf-8')))
    while True:
        try:
            kind, payload = channel.read()
        except EOFError:
            return 0  # Node closed the pipe: retire, or Node is gone.
        if kind == b'H' or kind == b'J':
            handle(app, channel, kind, payload)
        # Anything else is left over from a finished request: skipped.


if __name__ == '__main__':
    sys.exit(main())
