"""Tests for handler_host.py (the sessionvisor Python worker).

Run from the repository root:

    python3 -m unittest discover -s worker/python -p 'test_*.py'

Each test starts handler_host.py as a subprocess, exactly as the supervisor
does, and talks the JSON-lines protocol to it over stdin/stdout.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HOST = os.path.join(HERE, "handler_host.py")
EXAMPLES = os.path.normpath(os.path.join(HERE, "..", "examples"))
ECHO_AGENT = os.path.join(EXAMPLES, "echo_agent.py")
STREAM_AGENT = os.path.join(EXAMPLES, "stream_agent.py")
SESSION_FILE = "/tmp/session.txt"
TIMEOUT = 20.0

sys.path.insert(0, HERE)
import handler_host  # noqa: E402  (unit tests of pure helpers)


def _reader(stream, q):
    for line in iter(stream.readline, b""):
        q.put(line)
    q.put(None)


class Worker:
    """A handler_host.py subprocess speaking the worker protocol."""

    def __init__(self, *args, env=None):
        full_env = dict(os.environ)
        full_env.pop("OPENAI_API_KEY", None)  # always the deterministic mock
        full_env.pop("AWS_LAMBDA_FUNCTION_NAME", None)
        full_env.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, HOST, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,
        )
        self.stdout = queue.Queue()
        self.stderr = queue.Queue()
        self._stderr_lines = []
        for stream, q in ((self.proc.stdout, self.stdout), (self.proc.stderr, self.stderr)):
            threading.Thread(target=_reader, args=(stream, q), daemon=True).start()
        self._next_id = 0

    # -- sending --------------------------------------------------------

    def send_raw(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, event, session_id="sess-1", request_id=None, deadline_ms=None, frame_id=None):
        self._next_id += 1
        frame_id = self._next_id if frame_id is None else frame_id
        context = {"session_id": session_id, "request_id": request_id or f"req-{frame_id}"}
        context["deadline_ms"] = int(time.time() * 1000) + 60_000 if deadline_ms is None else deadline_ms
        frame = {"id": frame_id, "event": event, "context": context}
        self.send_raw((json.dumps(frame) + "\n").encode())
        return frame_id

    # -- receiving ------------------------------------------------------

    def read_frame(self, timeout=TIMEOUT):
        try:
            line = self.stdout.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no frame within {timeout}s; stderr: {self.stderr_text()!r}") from None
        if line is None:
            raise AssertionError(f"worker closed stdout; stderr: {self.stderr_text()!r}")
        self.last_raw = line
        # Every stdout line must be a complete JSON frame.
        return json.loads(line)

    def call(self, event, **kw):
        frame_id = self.send(event, **kw)
        frame = self.read_frame()
        assert frame["id"] == frame_id, frame
        return frame

    def stream(self, event, **kw):
        """Send an event and collect frames up to the terminating one."""
        frame_id = self.send(event, **kw)
        frames = []
        while True:
            frame = self.read_frame()
            assert frame["id"] == frame_id, frame
            frames.append(frame)
            if "chunk" not in frame:
                return frames

    def stderr_text(self, wait=0.0):
        deadline = time.monotonic() + wait
        while True:
            try:
                line = self.stderr.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                self.stderr.put(None)
                break
            self._stderr_lines.append(line.decode("utf-8", "replace"))
        return "".join(self._stderr_lines)

    def wait_stderr(self, needle, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while needle not in self.stderr_text(wait=0.05):
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} not in stderr: {self.stderr_text()!r}")
        return self.stderr_text()

    def close(self):
        """Close stdin (EOF) and return the exit code."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        return self.proc.wait(timeout=TIMEOUT)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=TIMEOUT)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except OSError:
                pass


class WorkerTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="handler_host_test_")
        self.tmp = self._tmp.name
        self.addCleanup(self._tmp.cleanup)

    def write_handler(self, source, name="h.py"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(textwrap.dedent(source))
        return path

    def start(self, *args, **kw):
        worker = Worker(*args, **kw)
        self.addCleanup(worker.kill)
        return worker


def body(frame):
    """Decode the {"statusCode", "body"} result of echo_agent.handler."""
    result = frame["result"]
    assert result["statusCode"] == 200, result
    return json.loads(result["body"])


# --------------------------------------------------------------------------
# echo_agent.py (the seed tutorial's agent)
# --------------------------------------------------------------------------


class EchoAgentTest(WorkerTestCase):
    def setUp(self):
        super().setUp()
        # The agent really uses /tmp/session.txt; keep whatever was there.
        try:
            with open(SESSION_FILE, "rb") as f:
                saved = f.read()
        except FileNotFoundError:
            saved = None

        def restore():
            if saved is None:
                try:
                    os.remove(SESSION_FILE)
                except FileNotFoundError:
                    pass
            else:
                with open(SESSION_FILE, "wb") as f:
                    f.write(saved)

        self.addCleanup(restore)

    def test_conversation_remembers_name_within_one_process(self):
        w = self.start(f"{ECHO_AGENT}:handler")
        first = body(w.call({"message": "Hello, my name is Alice", "session_id": "sess-a"}))
        self.assertEqual(first["status"], "success")
        self.assertEqual(first["session_id"], "sess-a")
        self.assertEqual(first["input"], "Hello, my name is Alice")
        self.assertEqual(first["provider"], "mock")
        self.assertEqual(first["model"], "mock-echo")
        self.assertEqual(first["output"], "Echo: Hello, my name is Alice (turn 1)")
        for key in ("timestamp",):
            self.assertIn(key, first)

        second = body(w.call({"message": "What is my name?", "session_id": "sess-a"}))
        self.assertEqual(second["output"], "Your name is Alice.")
        self.assertEqual(second["session_id"], "sess-a")

        third = body(w.call({"message": "thanks"}))
        self.assertEqual(third["output"], "Echo: thanks (turn 3)")
        self.assertEqual(w.close(), 0)

    def test_fresh_process_does_not_know_the_name(self):
        w = self.start(f"{ECHO_AGENT}:handler")
        out = body(w.call({"message": "What is my name?", "session_id": "sess-b"}))
        self.assertEqual(out["output"], "I don't know your name yet.")

    def test_korean_scenario_from_the_seed(self):
        w = self.start(ECHO_AGENT)  # FUNC defaults to "handler"
        body(w.call({"message": "제 이름은 김민수입니다."}))
        out = body(w.call({"message": "제 이름을 기억하시나요?"}))
        self.assertEqual(out["output"], "Your name is 김민수.")

    def test_session_id_comes_from_first_event_and_sticks(self):
        # One module-level agent per process: that is the point of the demo.
        w = self.start(ECHO_AGENT, "handler")
        self.assertEqual(body(w.call({"message": "hi", "session_id": "first"}))["session_id"], "first")
        self.assertEqual(body(w.call({"message": "hi", "session_id": "second"}))["session_id"], "first")

    def test_write_then_read_session_file(self):
        w = self.start(f"{ECHO_AGENT}:handler")
        token = f"secret-{os.getpid()}-{time.time()}"
        written = body(w.call({"action": "write", "message": token, "session_id": "s"}))
        self.assertEqual(written, {"status": "written", "session_id": "s"})
        read = body(w.call({"action": "read", "session_id": "s"}))
        self.assertEqual(read, {"status": "read", "content": token, "session_id": "s"})

    def test_read_missing_file(self):
        try:
            os.remove(SESSION_FILE)
        except FileNotFoundError:
            pass
        w = self.start(f"{ECHO_AGENT}:handler")
        self.assertEqual(body(w.call({"action": "read"}))["content"], "FILE_NOT_FOUND")

    def test_unknown_action(self):
        w = self.start(f"{ECHO_AGENT}:handler")
        self.assertEqual(body(w.call({"action": "dance"})), {"error": "Unknown action: dance"})

    def test_logging_goes_to_stderr(self):
        w = self.start(f"{ECHO_AGENT}:handler")
        w.call({"message": "log me"})
        self.assertIn("Processing message with LLM: log me", w.wait_stderr("log me"))


# --------------------------------------------------------------------------
# Protocol behaviour with small handlers
# --------------------------------------------------------------------------


class ProtocolTest(WorkerTestCase):
    def test_result_frame_and_eof_exit(self):
        h = self.write_handler("def handler(event, context):\n    return {'got': event}\n")
        w = self.start(f"{h}:handler")
        frame = w.call([1, "two", {"three": 3.5}])
        self.assertEqual(frame, {"id": 1, "result": {"got": [1, "two", {"three": 3.5}]}})
        self.assertEqual(w.close(), 0)

    def test_two_argument_form_and_default_function(self):
        h = self.write_handler("def handler(e, c):\n    return 'h'\ndef other(e, c):\n    return 'o'\n")
        self.assertEqual(self.start(h).call({})["result"], "h")
        self.assertEqual(self.start(h, "other").call({})["result"], "o")
        self.assertEqual(self.start(f"{h}:other").call({})["result"], "o")

    def test_print_and_fd1_writes_do_not_corrupt_stdout(self):
        h = self.write_handler(
            """
            import os, subprocess, sys
            print("hello from print")
            def handler(event, context):
                print("print inside handler", event)
                sys.stdout.write("partial line without newline")
                os.write(1, b"raw write to fd 1\\n")
                subprocess.run(["sh", "-c", "echo from a subprocess"], check=True)
                print(file=sys.__stdout__)
                return "ok"
            """
        )
        w = self.start(f"{h}:handler")
        for _ in range(2):
            frame = w.call({"n": 1})  # read_frame() fails on any non-JSON line
            self.assertEqual(frame["result"], "ok")
        self.assertEqual(w.close(), 0)
        self.assertTrue(w.stdout.empty() or w.stdout.get() is None)
        err = w.stderr_text(wait=0.5)
        for text in ("hello from print", "print inside handler", "raw write to fd 1", "from a subprocess"):
            self.assertIn(text, err)

    def test_stdin_is_not_available_to_the_handler(self):
        h = self.write_handler(
            """
            import sys
            def handler(event, context):
                return {"read": sys.stdin.read()}
            """
        )
        w = self.start(f"{h}:handler")
        self.assertEqual(w.call({})["result"], {"read": ""})
        self.assertEqual(w.call({})["result"], {"read": ""})

    def test_exception_gives_error_frame_and_worker_keeps_serving(self):
        h = self.write_handler(
            """
            def helper(event):
                if event.get("fail"):
                    raise ValueError("bad input: " + event["fail"])
                return "fine"

            def handler(event, context):
                return helper(event)
            """
        )
        w = self.start(f"{h}:handler")
        frame = w.call({"fail": "boom"})
        self.assertEqual(set(frame), {"id", "error"})
        err = frame["error"]
        self.assertEqual(err["type"], "ValueError")
        self.assertEqual(err["message"], "bad input: boom")
        self.assertIn("Traceback (most recent call last)", err["traceback"])
        self.assertIn("h.py", err["traceback"])
        self.assertIn("in helper", err["traceback"])
        self.assertIn("ValueError: bad input: boom", err["traceback"])
        self.assertNotIn("handler_host.py", err["traceback"])
        self.assertEqual(w.call({})["result"], "fine")

    def test_not_serializable_result(self):
        h = self.write_handler(
            """
            def handler(event, context):
                if event == "obj":
                    return object()
                if event == "nan":
                    return float("nan")
                return "ok"
            """
        )
        w = self.start(f"{h}:handler")
        for event in ("obj", "nan"):
            err = w.call(event)["error"]
            self.assertEqual(err["type"], "SerializationError")
            self.assertIn("not JSON serializable", err["message"])
            self.assertIn("traceback", err)
        self.assertEqual(w.call("x")["result"], "ok")

    def test_generator_streams_chunks_as_produced(self):
        gate = os.path.join(self.tmp, "gate")
        h = self.write_handler(
            f"""
            import os, time
            def handler(event, context):
                yield {{"n": 0}}
                # Wait until the test has seen chunk 0: proves chunks are not buffered.
                deadline = time.time() + 15
                while not os.path.exists({gate!r}) and time.time() < deadline:
                    time.sleep(0.01)
                yield {{"n": 1, "gate": os.path.exists({gate!r})}}
                yield "last"
            """
        )
        w = self.start(f"{h}:handler")
        frame_id = w.send({})
        first = w.read_frame()
        self.assertEqual(first, {"id": frame_id, "chunk": {"n": 0}})
        open(gate, "w").close()
        self.assertEqual(w.read_frame(), {"id": frame_id, "chunk": {"n": 1, "gate": True}})
        self.assertEqual(w.read_frame(), {"id": frame_id, "chunk": "last"})
        self.assertEqual(w.read_frame(), {"id": frame_id, "result": None, "stream_end": True})

    def test_handler_returning_a_generator_streams(self):
        h = self.write_handler(
            """
            def handler(event, context):
                return (i * i for i in range(3))
            """
        )
        frames = self.start(f"{h}:handler").stream({})
        self.assertEqual([f.get("chunk") for f in frames[:-1]], [0, 1, 4])
        self.assertEqual(frames[-1], {"id": frames[-1]["id"], "result": None, "stream_end": True})

    def test_list_result_is_not_a_stream(self):
        h = self.write_handler("def handler(e, c):\n    return [1, 2, 3]\n")
        self.assertEqual(self.start(f"{h}:handler").call({})["result"], [1, 2, 3])

    def test_exception_mid_stream(self):
        h = self.write_handler(
            """
            def handler(event, context):
                yield 1
                yield 2
                raise RuntimeError("stream broke")
            """
        )
        w = self.start(f"{h}:handler")
        frames = w.stream({})
        self.assertEqual([f["chunk"] for f in frames[:-1]], [1, 2])
        self.assertEqual(frames[-1]["error"]["type"], "RuntimeError")
        self.assertEqual(frames[-1]["error"]["message"], "stream broke")
        self.assertNotIn("stream_end", frames[-1])
        self.assertEqual(len(w.stream({})), 3)  # still serving

    def test_async_handler(self):
        h = self.write_handler(
            """
            import asyncio
            calls = 0
            async def handler(event, context):
                global calls
                calls += 1
                await asyncio.sleep(0.01)
                return {"echo": event, "calls": calls, "session": context.session_id}

            async def failing(event, context):
                await asyncio.sleep(0)
                raise KeyError("missing")
            """
        )
        w = self.start(f"{h}:handler")
        self.assertEqual(w.call("a")["result"], {"echo": "a", "calls": 1, "session": "sess-1"})
        self.assertEqual(w.call("b")["result"], {"echo": "b", "calls": 2, "session": "sess-1"})
        err = self.start(f"{h}:failing").call({})["error"]
        self.assertEqual(err["type"], "KeyError")
        self.assertEqual(err["message"], "'missing'")
        self.assertIn("in failing", err["traceback"])

    def test_async_generator_handler(self):
        w = self.start(f"{STREAM_AGENT}:async_handler")
        frames = w.stream({"message": "one two three"})
        self.assertEqual([f["chunk"]["token"] for f in frames[:-1]], ["one", "two", "three"])
        self.assertTrue(frames[-1]["stream_end"])
        self.assertIsNone(frames[-1]["result"])

    def test_stream_agent_example(self):
        w = self.start(f"{STREAM_AGENT}:handler")
        frames = w.stream({"message": "a b"}, session_id="s9", request_id="r9")
        chunks = [f["chunk"] for f in frames[:-1]]
        self.assertEqual(chunks[0], {"index": 0, "token": "a", "turn": 1})
        self.assertEqual(chunks[-1], {"done": True, "session_id": "s9", "request_id": "r9"})
        self.assertEqual(w.stream({"message": "c"})[0]["chunk"]["turn"], 2)

    def test_bad_frames_keep_serving(self):
        h = self.write_handler("def handler(e, c):\n    return e\n")
        w = self.start(f"{h}:handler")
        for raw in (b"this is not json\n", b"[1, 2]\n", b'{"event": {}}\n', b'{"id": -1, "event": {}}\n', b"\xff\xfe\n"):
            w.send_raw(raw)
            frame = w.read_frame()
            self.assertIsNone(frame["id"], raw)
            self.assertEqual(frame["error"]["type"], "BadFrame", raw)
            self.assertTrue(frame["error"]["message"], raw)
        # A readable id but no event: the error names the id.
        w.send_raw(b'{"id": 42, "evnt": {}}\n')
        self.assertEqual(w.read_frame()["id"], 42)
        # Blank lines are ignored; unknown fields are ignored.
        w.send_raw(b'\n{"id": 7, "event": "x", "extra": true, "context": {"session_id": "s", "new": 1}}\n')
        self.assertEqual(w.read_frame(), {"id": 7, "result": "x"})
        self.assertEqual(w.call("still ok")["result"], "still ok")

    def test_context_object(self):
        h = self.write_handler(
            """
            def handler(event, context):
                return {
                    "session_id": context.session_id,
                    "aws_request_id": context.aws_request_id,
                    "request_id": context.request_id,
                    "function_name": context.function_name,
                    "function_version": context.function_version,
                    "memory_limit_in_mb": context.memory_limit_in_mb,
                    "invoked_function_arn": context.invoked_function_arn,
                    "log_group_name": context.log_group_name,
                    "log_stream_name": context.log_stream_name,
                    "client_context": context.client_context,
                    "identity": context.identity,
                    "remaining": context.get_remaining_time_in_millis(),
                }
            """,
            name="my_func.py",
        )
        w = self.start(f"{h}:handler")
        now = int(time.time() * 1000)
        ctx = w.call({}, session_id="S", request_id="R", deadline_ms=now + 30_000)["result"]
        remaining = ctx.pop("remaining")
        self.assertEqual(
            ctx,
            {
                "session_id": "S",
                "aws_request_id": "R",
                "request_id": "R",
                "function_name": "my_func",
                "function_version": "$LATEST",
                "memory_limit_in_mb": 0,
                "invoked_function_arn": "",
                "log_group_name": "",
                "log_stream_name": "",
                "client_context": None,
                "identity": None,
            },
        )
        self.assertTrue(20_000 < remaining <= 30_000, remaining)
        # A deadline in the past never gives a negative number.
        self.assertEqual(w.call({}, deadline_ms=now - 5_000)["result"]["remaining"], 0)

        w2 = self.start(f"{h}:handler", env={"AWS_LAMBDA_FUNCTION_NAME": "fn", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512"})
        ctx2 = w2.call({})["result"]
        self.assertEqual((ctx2["function_name"], ctx2["memory_limit_in_mb"]), ("fn", 512))

    def test_one_process_serves_many_sessions(self):
        # `--isolation none`: the host itself must not assume one session.
        h = self.write_handler(
            """
            seen = []
            def handler(event, context):
                seen.append(context.session_id)
                return list(seen)
            """
        )
        w = self.start(f"{h}:handler")
        self.assertEqual(w.call({}, session_id="a")["result"], ["a"])
        self.assertEqual(w.call({}, session_id="b")["result"], ["a", "b"])

    def test_module_imported_once_and_sibling_imports(self):
        self.write_handler("VALUE = 'from sibling'\n", name="sibling_helper.py")
        h = self.write_handler(
            """
            import sys
            import sibling_helper
            counter = 0
            def handler(event, context):
                global counter
                counter += 1
                return {"counter": counter, "sibling": sibling_helper.VALUE, "name": __name__}
            """
        )
        w = self.start(f"{h}:handler")
        self.assertEqual(w.call({})["result"], {"counter": 1, "sibling": "from sibling", "name": "h"})
        self.assertEqual(w.call({})["result"]["counter"], 2)

    def test_sigterm_exits_promptly_and_quietly(self):
        h = self.write_handler("def handler(e, c):\n    return e\n")
        w = self.start(f"{h}:handler")
        self.assertEqual(w.call(1)["result"], 1)
        w.proc.send_signal(signal.SIGTERM)
        self.assertEqual(w.proc.wait(timeout=5), 0)
        self.assertIsNone(w.stdout.get(timeout=TIMEOUT))  # nothing more on stdout
        self.assertNotIn("Traceback", w.stderr_text(wait=0.2))

    def test_sigterm_during_a_busy_handler(self):
        h = self.write_handler(
            """
            import time
            def handler(e, c):
                print("sleeping")
                time.sleep(60)
                return "too late"
            """
        )
        w = self.start(f"{h}:handler")
        w.send({})
        w.wait_stderr("sleeping")
        started = time.monotonic()
        w.proc.send_signal(signal.SIGTERM)
        self.assertEqual(w.proc.wait(timeout=5), 0)
        self.assertLess(time.monotonic() - started, 5)
        self.assertIsNone(w.stdout.get(timeout=TIMEOUT))

    def test_handler_sys_exit_answers_then_exits(self):
        h = self.write_handler("import sys\ndef handler(e, c):\n    sys.exit(3)\n")
        w = self.start(f"{h}:handler")
        self.assertEqual(w.call({})["error"]["type"], "SystemExit")
        self.assertEqual(w.proc.wait(timeout=TIMEOUT), 3)


# --------------------------------------------------------------------------
# Start-up failures
# --------------------------------------------------------------------------


class LoadErrorTest(WorkerTestCase):
    def assert_load_error(self, args, *needles):
        w = self.start(*args)
        self.assertEqual(w.proc.wait(timeout=TIMEOUT), 2)
        err = w.stderr_text(wait=1.0)
        self.assertIsNone(w.stdout.get(timeout=TIMEOUT), "nothing on stdout")
        lines = [line for line in err.splitlines() if line.startswith("handler_host:")]
        self.assertEqual(len(lines), 1, err)
        for needle in needles:
            self.assertIn(needle, lines[0])
        return lines[0]

    def test_missing_file(self):
        missing = os.path.join(self.tmp, "nope.py")
        line = self.assert_load_error([f"{missing}:handler"], "cannot load handler", missing)
        self.assertIn("no such file", line)

    def test_missing_function(self):
        h = self.write_handler("def handler(e, c):\n    return 1\n")
        self.assert_load_error([f"{h}:nothere"], "cannot load handler", "nothere")

    def test_not_callable(self):
        h = self.write_handler("handler = 42\n")
        self.assert_load_error([h], "not callable")

    def test_import_error(self):
        h = self.write_handler("import definitely_not_a_module_xyz\n")
        self.assert_load_error([f"{h}:handler"], "ModuleNotFoundError", "definitely_not_a_module_xyz")

    def test_syntax_error(self):
        h = self.write_handler("def handler(e, c)\n    return 1\n")
        self.assert_load_error([f"{h}:handler"], "SyntaxError")

    def test_no_arguments(self):
        self.assert_load_error([], "usage")


# --------------------------------------------------------------------------
# Pure helpers (imported in-process)
# --------------------------------------------------------------------------


class HelperTest(unittest.TestCase):
    def test_codec_matches_json_module(self):
        values = [
            None, True, 0, -1, 2**64 - 1, 10**30, 1.5, -0.0, 1e300, "", "é😀\u2028\x00\"\\",
            [], {}, {"a": [1, {"b": None}]}, {1: "int key", 2.5: "float key", None: "n", False: "f"},
        ]
        for value in values:
            expected = json.dumps(value, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
            self.assertEqual(handler_host.dumps(value), expected)
            self.assertEqual(handler_host.loads(expected.encode()), json.loads(expected))
        for bad in (float("nan"), float("inf"), {"k": {1, 2}}, {(1,): 1}, b"bytes"):
            with self.assertRaises((TypeError, ValueError)):
                handler_host.dumps(bad)
        for bad in (b"", b"{", b"{} {}", b"[1,]", b"\xff", b"'x'"):
            with self.assertRaises(ValueError):
                handler_host.loads(bad)
        self.assertEqual(handler_host.loads(b' \t{"a": 1}\r\n'), {"a": 1})

    def test_parse_args(self):
        p = handler_host.parse_args
        self.assertEqual(p(["a/b.py:fn"]), ("a/b.py", "fn"))
        self.assertEqual(p(["a/b.py"]), ("a/b.py", "handler"))
        self.assertEqual(p(["a/b.py", "fn"]), ("a/b.py", "fn"))
        self.assertEqual(p(["a/b.py:Cls.method"]), ("a/b.py", "Cls.method"))
        self.assertEqual(p(["dir:with/colon.py"]), ("dir:with/colon.py", "handler"))
        with self.assertRaises(ValueError):
            p([])

    def test_remaining_time(self):
        ctx = handler_host.LambdaContext("s", "r", int(time.time() * 1000) + 1000, "f", 0)
        self.assertTrue(0 < ctx.get_remaining_time_in_millis() <= 1000)
        ctx.deadline_ms = 0
        self.assertEqual(ctx.get_remaining_time_in_millis(), 0)
        ctx.deadline_ms = None
        self.assertEqual(ctx.get_remaining_time_in_millis(), handler_host.NO_DEADLINE_REMAINING_MS)


if __name__ == "__main__":
    unittest.main()
