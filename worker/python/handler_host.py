#!/usr/bin/env python3
"""sessionvisor handler host: runs a Lambda/AgentCore-style Python handler
behind the sessionvisor worker protocol (JSON lines over stdio).

    python3 handler_host.py FILE.py[:FUNC]
    python3 handler_host.py FILE.py FUNC          (FUNC defaults to "handler")

Requests arrive one per line on stdin:

    {"id": 7, "event": {...},
     "context": {"session_id": "s1", "request_id": "r7", "deadline_ms": 1700000000000}}

and are answered one per line on stdout:

    {"id": 7, "result": ...}
    {"id": 7, "error": {"type": ..., "message": ..., "traceback": ...}}
    {"id": 7, "chunk": ...}  ...  {"id": 7, "result": null, "stream_end": true}
    {"id": null, "error": {"type": "BadFrame", "message": ...}}

stdout carries frames only: before the handler module is imported, the real
stdout is kept on a private descriptor and fd 1 / sys.stdout are pointed at
stderr, so print() in the handler (or in processes it spawns) becomes a log
line on stderr. fd 0 is likewise replaced by /dev/null so the handler cannot
read (or steal) protocol frames. See worker/README.md for the full protocol.

Requests are served one at a time, in arrival order. The host keeps no
per-session state of its own: every request carries its own context, so the
same host can serve many sessions (sessionvisor's `--isolation none` mode).

Standard library only; imports are kept minimal because worker cold start
is on the critical path of a session's first request.
"""

import os
import sys

USAGE = "usage: handler_host.py FILE.py[:FUNC] | FILE.py FUNC"
DEFAULT_FUNC = "handler"
# Deadline used by get_remaining_time_in_millis() when a request carries no
# deadline_ms (e.g. a frame typed by hand): behave as if Lambda's maximum
# timeout (15 minutes) remained.
NO_DEADLINE_REMAINING_MS = 900_000
U64_MAX = (1 << 64) - 1

# Run as a file, or as `python3 -c <this source>` (how sessionvisor starts it,
# so the host never has to sit in a directory every session uid can reach).
_HOST_FILE = os.path.abspath(__file__) if "__file__" in globals() else "<string>"


# --------------------------------------------------------------------------
# JSON codec
#
# Frames are encoded as one line, ASCII only (no encoding surprises on the
# pipe) and strict (NaN/Infinity are rejected: serde_json cannot read them).
#
# `import json` costs ~5 ms, nearly all of it in `re` (json.decoder compiles
# regexes at import), which is a third of the host's cold start. The C
# accelerator `_json` that json.loads/json.dumps use underneath needs no
# `re`, so the host drives it directly and falls back to the json module if
# the accelerator is missing or does not behave as expected. The results are
# the same as json.loads() / json.dumps(ensure_ascii=True, allow_nan=False,
# separators=(",", ":")).
# --------------------------------------------------------------------------

_WS = " \t\n\r"


def _json_default(o):
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _make_fast_codec():
    import _json

    nan = float("nan")
    inf = float("inf")

    class _ScanContext:
        strict = True
        object_hook = None
        object_pairs_hook = None
        parse_float = float
        parse_int = int
        parse_constant = {"NaN": nan, "Infinity": inf, "-Infinity": -inf}.__getitem__
        memo = {}

    scan_once = _json.make_scanner(_ScanContext)
    make_encoder = _json.make_encoder
    encode_str = _json.encode_basestring_ascii

    def loads(data):
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        start = len(text) - len(text.lstrip(_WS))
        try:
            obj, end = scan_once(text, start)
        except StopIteration as stop:
            raise ValueError(f"Expecting value: char {stop.value}") from None
        rest = text[end:]
        if rest.strip(_WS):
            raise ValueError(f"Extra data: char {end + len(rest) - len(rest.lstrip(_WS))}")
        return obj

    def dumps(obj):
        if isinstance(obj, str):
            return encode_str(obj)
        # Same call as json.JSONEncoder.iterencode(..., _one_shot=True).
        encoder = make_encoder({}, _json_default, encode_str, None, ":", ",", False, False, False)
        return "".join(encoder(obj, 0))

    sample = {"a": [1, -2.5, "\u00e9\n", None, True, False, {}], "b": 10**20}
    expected = '{"a":[1,-2.5,"\\u00e9\\n",null,true,false,{}],"b":100000000000000000000}'
    if dumps(sample) != expected or loads(expected.encode()) != sample:
        raise ImportError("_json accelerator does not behave like json")
    return loads, dumps


def _make_stdlib_codec():
    import json

    encoder = json.JSONEncoder(ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return json.loads, encoder.encode


try:
    loads, dumps = _make_fast_codec()
except Exception:  # pragma: no cover - no C accelerator (e.g. PyPy)
    loads, dumps = _make_stdlib_codec()


class SerializationError(Exception):
    """The handler's result (or a streamed chunk) is not JSON serializable."""


class BadFrame(Exception):
    """An input line that is not a valid request frame."""

    def __init__(self, message, frame_id=None):
        super().__init__(message)
        self.frame_id = frame_id


# --------------------------------------------------------------------------
# Context object (mirrors the AWS Lambda Python context)
# --------------------------------------------------------------------------


class LambdaContext:
    """Per-request context passed as the handler's second argument."""

    def __init__(self, session_id, request_id, deadline_ms, function_name, memory_limit_in_mb):
        self.session_id = session_id
        self.aws_request_id = request_id
        self.request_id = request_id
        self.deadline_ms = deadline_ms
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_limit_in_mb
        self.invoked_function_arn = ""
        self.log_group_name = ""
        self.log_stream_name = ""
        self.client_context = None
        self.identity = None

    def get_remaining_time_in_millis(self):
        if self.deadline_ms is None:
            return NO_DEADLINE_REMAINING_MS
        import time

        remaining = self.deadline_ms - int(time.time() * 1000)
        return remaining if remaining > 0 else 0

    def __repr__(self):
        return (
            f"LambdaContext(session_id={self.session_id!r}, "
            f"aws_request_id={self.aws_request_id!r}, deadline_ms={self.deadline_ms!r})"
        )


def _memory_limit_from_env():
    try:
        return int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "0"))
    except ValueError:
        return 0


# --------------------------------------------------------------------------
# stdio plumbing
# --------------------------------------------------------------------------


class FrameWriter:
    """Writes whole frames to the private copy of the original stdout."""

    def __init__(self, fd):
        self.fd = fd

    def send(self, frame):
        data = (dumps(frame) + "\n").encode("ascii")
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]


def _isolate_stdio():
    """Keep private handles on the protocol pipes, then point fd 0 at
    /dev/null and fd 1 at stderr. Returns (frames_in_file, FrameWriter).

    os.dup() returns non-inheritable descriptors, so subprocesses spawned by
    the handler never see the protocol pipes.
    """
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass
    out_fd = os.dup(1)
    os.dup2(2, 1)
    # The supervisor reads stderr as UTF-8 lines, whatever the locale says.
    try:
        sys.stderr.reconfigure(encoding="utf-8", errors="backslashreplace", line_buffering=True)
    except (AttributeError, ValueError, OSError):
        pass
    # Line-buffered text stream on fd 1 (now stderr): print() output reaches
    # the supervisor's log promptly instead of sitting in a block buffer.
    sys.stdout = sys.__stdout__ = open(
        1, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False
    )

    in_fd = os.dup(0)
    try:
        null_fd = os.open(os.devnull, os.O_RDONLY)
    except OSError:
        # No /dev/null in this sandbox: leave fd 0 as is (the handler could
        # then read protocol input, which is its own fault).
        pass
    else:
        os.dup2(null_fd, 0)
        os.close(null_fd)
    frames_in = open(in_fd, "rb", buffering=65536)
    return frames_in, FrameWriter(out_fd)


def _log(message):
    """One line on stderr (becomes one log record on the supervisor side)."""
    try:
        sys.stderr.write(f"handler_host: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# --------------------------------------------------------------------------
# Loading the handler
# --------------------------------------------------------------------------


def parse_args(argv):
    """Return (path, func_name) or raise ValueError."""
    if len(argv) == 1:
        spec = argv[0]
        path, sep, func = spec.rpartition(":")
        if sep and _is_attr_path(func) and path:
            return path, func
        return spec, DEFAULT_FUNC
    if len(argv) == 2:
        if not _is_attr_path(argv[1]):
            raise ValueError(f"invalid function name {argv[1]!r}")
        return argv[0], argv[1]
    raise ValueError("expected a handler")


def _is_attr_path(name):
    return bool(name) and all(part.isidentifier() for part in name.split("."))


def load_handler(path, func_name):
    """Import the handler file once and return the callable, or raise
    RuntimeError with a one-line explanation."""
    if not os.path.isfile(path):
        raise RuntimeError("no such file")
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    stem = os.path.splitext(os.path.basename(path))[0]

    # Sibling imports: the handler's own directory goes first on sys.path,
    # and the host's directory (put there by `python3 handler_host.py`)
    # is removed so it cannot shadow the handler's modules.
    host_dir = os.path.dirname(_HOST_FILE)
    if sys.path and sys.path[0] == host_dir and directory != host_dir:
        sys.path.pop(0)
    if directory not in sys.path:
        sys.path.insert(0, directory)

    if stem.isidentifier() and stem not in sys.modules:
        module_name = stem
    else:
        module_name = "_sessionvisor_handler"

    try:
        # The frozen bootstrap modules are already loaded; importing
        # importlib.util would cost extra start-up time for the same
        # functions.
        from _frozen_importlib import module_from_spec
        from _frozen_importlib_external import spec_from_file_location
    except ImportError:  # pragma: no cover - other Python implementations
        from importlib.util import module_from_spec, spec_from_file_location

    spec = spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError("not a loadable Python source file")
    module = module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # incl. SystemExit raised at import time
        sys.modules.pop(module_name, None)
        raise RuntimeError(_describe_exc(exc)) from exc

    target = module
    for part in func_name.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise RuntimeError(f"{os.path.basename(path)} has no attribute {func_name!r}") from None
    if not callable(target):
        raise RuntimeError(f"{func_name!r} is not callable (it is {type(target).__name__})")
    return target


def _describe_exc(exc):
    text = f"{type(exc).__name__}: {exc}"
    tb = exc.__traceback__
    last = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename != _HOST_FILE:
            last = tb
        tb = tb.tb_next
    if last is not None:
        text += f" (at {last.tb_frame.f_code.co_filename}:{last.tb_lineno})"
    return text


# --------------------------------------------------------------------------
# Serving requests
# --------------------------------------------------------------------------


def parse_frame(line):
    """Parse one input line into (id, event, context_dict); raise BadFrame."""
    try:
        frame = loads(line)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, bad UTF-8
        raise BadFrame(f"invalid JSON: {exc}") from None
    if not isinstance(frame, dict):
        raise BadFrame(f"request frame must be a JSON object, got {type(frame).__name__}")
    frame_id = frame.get("id")
    if type(frame_id) is not int or not 0 <= frame_id <= U64_MAX:
        raise BadFrame("request frame needs an \"id\" that is an unsigned 64-bit integer")
    if "event" not in frame:
        raise BadFrame("request frame has no \"event\"", frame_id)
    ctx = frame.get("context")
    if ctx is None:
        ctx = {}
    elif not isinstance(ctx, dict):
        raise BadFrame("\"context\" must be a JSON object", frame_id)
    for key in ("session_id", "request_id"):
        value = ctx.get(key)
        if value is not None and not isinstance(value, str):
            raise BadFrame(f"context.{key} must be a string", frame_id)
    deadline = ctx.get("deadline_ms")
    if deadline is not None and (type(deadline) is not int or deadline < 0):
        raise BadFrame("context.deadline_ms must be an unsigned integer (unix epoch ms)", frame_id)
    return frame_id, frame["event"], ctx


def _error_payload(exc):
    import traceback

    # Drop the host's own frames (and asyncio's, for async handlers) so the
    # traceback starts in handler code, as on Lambda.
    skip = [_HOST_FILE]
    asyncio = sys.modules.get("asyncio")
    if asyncio is not None:
        skip.append(os.path.dirname(asyncio.__file__) + os.sep)
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(tuple(skip)):
        tb = tb.tb_next
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {type(exc).__name__}>"
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except Exception:
        text = f"{type(exc).__name__}: {message}\n"
    return {"type": type(exc).__name__, "message": message, "traceback": text}


class Host:
    def __init__(self, func, writer, function_name):
        self.func = func
        self.writer = writer
        self.function_name = function_name
        self.memory_limit_in_mb = _memory_limit_from_env()
        self._loop = None

    # -- asyncio support (imported only when a handler needs it) ----------

    def _run_async(self, awaitable):
        if self._loop is None:
            import asyncio

            # One loop for the whole process, so objects bound to it
            # (clients, locks) survive across requests.
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        return self._loop.run_until_complete(awaitable)

    # -- one request ------------------------------------------------------

    def handle_line(self, line):
        try:
            frame_id, event, ctx = parse_frame(line)
        except BadFrame as exc:
            self.writer.send({"id": exc.frame_id, "error": {"type": "BadFrame", "message": str(exc)}})
            return
        context = LambdaContext(
            session_id=ctx.get("session_id") or "",
            request_id=ctx.get("request_id") or "",
            deadline_ms=ctx.get("deadline_ms"),
            function_name=self.function_name,
            memory_limit_in_mb=self.memory_limit_in_mb,
        )
        self.invoke(frame_id, event, context)

    def invoke(self, frame_id, event, context):
        send = self.writer.send
        try:
            result = self.func(event, context)
            if hasattr(result, "__await__"):  # coroutine / awaitable
                result = self._run_async(result)
            if hasattr(result, "__anext__"):  # async generator / iterator
                self._stream_async(frame_id, result)
                return
            if _is_generator(result):
                self._stream_sync(frame_id, result)
                return
        except SystemExit as exc:
            # sys.exit() inside the handler: answer the request, then exit.
            send({"id": frame_id, "error": _error_payload(exc)})
            raise
        except Exception as exc:
            send({"id": frame_id, "error": _error_payload(exc)})
            return
        self._send_result(frame_id, "result", result)

    def _send_result(self, frame_id, key, value):
        """Send {"id", key: value}; a non-serializable value becomes a
        SerializationError frame. Returns True if the value was sent."""
        try:
            encoded = dumps(value)
        except (TypeError, ValueError, RecursionError) as exc:
            what = "result" if key == "result" else "streamed chunk"
            err = SerializationError(f"handler {what} is not JSON serializable: {exc}")
            self.writer.send({"id": frame_id, "error": _error_payload(err)})
            return False
        # Splice the pre-encoded value in to avoid encoding it twice.
        data = f'{{"id":{frame_id},"{key}":{encoded}}}\n'.encode("ascii")
        view = memoryview(data)
        while view:
            view = view[os.write(self.writer.fd, view):]
        return True

    def _stream(self, frame_id, items, close):
        """Sends each item as a chunk frame as soon as it is produced, then the
        end-of-stream frame; an exception mid-stream becomes the error frame."""
        try:
            for item in items:
                if not self._send_result(frame_id, "chunk", item):
                    return
            self.writer.send({"id": frame_id, "result": None, "stream_end": True})
        except SystemExit as exc:
            self.writer.send({"id": frame_id, "error": _error_payload(exc)})
            raise
        except Exception as exc:
            self.writer.send({"id": frame_id, "error": _error_payload(exc)})
        finally:
            try:
                close()
            except Exception:
                pass

    def _stream_sync(self, frame_id, gen):
        self._stream(frame_id, gen, gen.close)

    def _stream_async(self, frame_id, agen):
        def items():
            while True:
                try:
                    yield self._run_async(agen.__anext__())
                except StopAsyncIteration:
                    return

        def close():
            aclose = getattr(agen, "aclose", None)
            if aclose is not None:
                self._run_async(aclose())

        self._stream(frame_id, items(), close)

    def serve(self, frames_in):
        for line in frames_in:
            if not line.strip():
                continue  # tolerate blank lines
            self.handle_line(line)


def _is_generator(value):
    # Generators (including the result of calling a generator function).
    # Plain iterables such as lists are ordinary results, not streams.
    import types

    return isinstance(value, types.GeneratorType)


def _exit_on_sigterm():
    """SIGTERM ends the worker at once with status 0 (the supervisor's normal
    way to stop a session), flushing log output first. `_signal` is the
    already-loaded core of `signal`, whose import would pull in `enum`."""
    try:
        import _signal
    except ImportError:  # pragma: no cover
        return

    def on_sigterm(signum, frame):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(0)

    _signal.signal(_signal.SIGTERM, on_sigterm)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    _exit_on_sigterm()
    try:
        path, func_name = parse_args(argv)
    except ValueError as exc:
        _log(f"{exc}; {USAGE}")
        return 2

    frames_in, writer = _isolate_stdio()

    try:
        func = load_handler(path, func_name)
    except RuntimeError as exc:
        _log(f"cannot load handler {path}:{func_name}: {exc}")
        return 2

    function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or os.path.splitext(os.path.basename(path))[0]
    host = Host(func, writer, function_name)
    try:
        host.serve(frames_in)
    except BrokenPipeError:
        # The supervisor closed our stdout: nobody is listening any more.
        return 0
    return 0  # stdin EOF


if __name__ == "__main__":
    try:
        code = main()
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
