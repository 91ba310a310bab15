"""Streaming handlers for sessionvisor's handler host.

A handler that is a generator function (or returns a generator) streams:
the host sends one {"id", "chunk"} frame per yielded item as soon as it is
produced, then {"id", "result": null, "stream_end": true}.

    python3 worker/python/handler_host.py worker/examples/stream_agent.py:handler
    python3 worker/python/handler_host.py worker/examples/stream_agent.py:async_handler

Event: {"message": "hello streaming world", "delay_ms": 50}
Chunks: {"index": 0, "token": "hello"}, {"index": 1, "token": "streaming"}, ...

Module-level state (`_turns`) lives as long as the worker process, i.e. for
the whole session under sessionvisor.
"""

import asyncio
import time

_turns = 0


def _tokens(event):
    message = event.get("message", "") if isinstance(event, dict) else str(event)
    return message.split() or ["(empty)"]


def _delay_s(event):
    delay_ms = event.get("delay_ms", 0) if isinstance(event, dict) else 0
    return max(0, min(float(delay_ms), 10_000)) / 1000


def handler(event, context=None):
    """Synchronous generator: one chunk per word of event["message"]."""
    global _turns
    _turns += 1
    delay = _delay_s(event)
    for index, token in enumerate(_tokens(event)):
        if delay:
            time.sleep(delay)
        yield {"index": index, "token": token, "turn": _turns}
    if context is not None:
        yield {"done": True, "session_id": context.session_id, "request_id": context.aws_request_id}


async def async_handler(event, context=None):
    """Asynchronous generator: same chunks, produced with asyncio.sleep."""
    global _turns
    _turns += 1
    delay = _delay_s(event)
    for index, token in enumerate(_tokens(event)):
        if delay:
            await asyncio.sleep(delay)
        yield {"index": index, "token": token, "turn": _turns}
