"""Echo agent from the AgentCore Runtime tutorial (agents/echo_agent.py),
ported to run under sessionvisor's handler host:

    python3 worker/python/handler_host.py worker/examples/echo_agent.py:handler

Events (unchanged from the tutorial):

    {"action": "echo",  "message": "My name is Alice", "session_id": "a"}
    {"action": "write", "message": "secret of A"}      -> /tmp/session.txt
    {"action": "read"}                                  -> contents of /tmp/session.txt
    {"action": "whoami"}                                -> pid, session ids, turns

The handler returns {"statusCode": 200, "body": json.dumps(result)}.

By default the LLM is a deterministic MockProvider (no network). Set
OPENAI_API_KEY (and optionally OPENAI_BASE_URL, OPENAI_MODEL) to call an
OpenAI-compatible /chat/completions endpoint instead; LLM_PROVIDER=mock
forces the mock.

Standard library only; imports are kept light because worker start-up is
on the path of each session's first request.
"""

import json
import logging
import os
import re
import sys
from datetime import datetime

# Logs go to stderr; sessionvisor turns each stderr line into a log record.
logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO").upper(),
    stream=sys.stderr,
    format="%(levelname)s %(name)s: %(message)s",
)
logger = logging.getLogger("echo_agent")

SESSION_FILE = "/tmp/session.txt"


# --------------------------------------------------------------------------
# LLM providers
# --------------------------------------------------------------------------

# Most explicit first: "my name is X", "내/제 이름은 X", "I'm X", "I am X".
_NAME_PATTERNS = [
    re.compile(r"\bmy\s+name\s+is\s+(?P<name>[^\s.,!?;:][^.,!?;:\n]*)", re.IGNORECASE),
    re.compile(r"(?:내|제)\s*이름은\s*(?P<name>[^\s.,!?;:][^.,!?;:\n]*)"),
    re.compile(r"\bi['\u2019]m\s+(?P<name>[^\s.,!?;:][^.,!?;:\n]*)", re.IGNORECASE),
    re.compile(r"\bi\s+am\s+(?P<name>[^\s.,!?;:][^.,!?;:\n]*)", re.IGNORECASE),
]
_NAME_STOP_WORDS = re.compile(r"\s+(?:and|but|from|who|i|you|nice|please)\b.*$", re.IGNORECASE)
_KOREAN_COPULA = re.compile(r"\s*(?:이?라고\s*(?:합니다|해요)|입니다|이에요|예요|이야|야)$")


def extract_name(text: str) -> str | None:
    """The name a user introduces in `text`, if any.

    The most explicit phrasing wins; within one phrasing the last mention.
    """
    for pattern in _NAME_PATTERNS:
        found = None
        for match in pattern.finditer(text):
            name = _NAME_STOP_WORDS.sub("", match.group("name").strip())
            name = _KOREAN_COPULA.sub("", name).strip()
            words = name.split()
            if words:
                found = " ".join(words[:3])
        if found:
            return found
    return None


def _asks_for_name(text: str) -> bool:
    lowered = text.lower()
    return "name" in lowered or "이름" in text


class MockProvider:
    """Deterministic stand-in for an LLM.

    It only knows what is in the `messages` it is given (like a real chat
    model): a name introduced in an earlier user turn is remembered, and
    everything else is echoed with the number of user turns it saw. Since
    LLMAgent sends at most the last 10 history items, memory is limited to
    the last 5 turns, as with a real model.
    """

    provider_name = "mock"
    model_name = "mock-echo"

    def chat(self, messages: list[dict[str, str]], temperature: float = 0.7, max_tokens: int = 512) -> str:
        user_turns = [m.get("content") or "" for m in messages if m.get("role") == "user"]
        if not user_turns:
            return "Echo:  (turn 0)"
        current = user_turns[-1]
        turn = len(user_turns)

        if _asks_for_name(current) and extract_name(current) is None:
            name = None
            for earlier in reversed(user_turns[:-1]):
                name = extract_name(earlier)
                if name:
                    break
            if name:
                return f"Your name is {name}."
            return "I don't know your name yet."
        return f"Echo: {current} (turn {turn})"


class OpenAIProvider:
    """OpenAI-compatible chat completions over urllib (no SDK)."""

    provider_name = "openai"

    def __init__(self, api_key: str, base_url: str | None = None, model: str | None = None):
        self.api_key = api_key
        self.base_url = (base_url or os.getenv("OPENAI_BASE_URL") or "https://api.openai.com/v1").rstrip("/")
        self.model_name = model or os.getenv("OPENAI_MODEL", "gpt-4o-mini")
        self.timeout = float(os.getenv("OPENAI_TIMEOUT", "60"))

    def chat(self, messages: list[dict[str, str]], temperature: float = 0.7, max_tokens: int = 512) -> str:
        import urllib.request

        body = json.dumps(
            {
                "model": self.model_name,
                "messages": messages,
                "temperature": temperature,
                "max_tokens": max_tokens,
            }
        ).encode("utf-8")
        request = urllib.request.Request(
            f"{self.base_url}/chat/completions",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self.api_key}",
            },
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            payload = json.loads(response.read().decode("utf-8"))
        return payload["choices"][0]["message"]["content"] or ""


def get_llm_provider():
    if os.getenv("LLM_PROVIDER", "").lower() != "mock":
        api_key = os.getenv("OPENAI_API_KEY")
        if api_key:
            return OpenAIProvider(api_key)
    return MockProvider()


# --------------------------------------------------------------------------
# The agent
# --------------------------------------------------------------------------


class LLMAgent:
    """LLM-powered agent for testing AgentCore Runtime with intelligent responses"""

    def __init__(self, session_id: str | None = None, system_prompt: str | None = None):
        self.session_id = session_id or self._generate_session_id()
        self.llm_provider = get_llm_provider()
        self.system_prompt = system_prompt or self._default_system_prompt()
        self.conversation_history: list[dict[str, str]] = []
        logger.info(
            f"LLMAgent initialized with session_id: {self.session_id}, "
            f"provider: {self.llm_provider.provider_name}"
        )

    @staticmethod
    def _generate_session_id() -> str:
        import uuid  # lazily: only needed when no session_id was given

        return str(uuid.uuid4())

    @staticmethod
    def _default_system_prompt() -> str:
        return (
            "You are a helpful assistant running on AgentCore Runtime. "
            "Answer concisely and remember what the user told you earlier in this conversation."
        )

    def process_message(self, message: str, context: dict | None = None) -> dict:
        logger.info(f"Processing message with LLM: {message}")

        # 1) conversation context: system prompt + last 10 history items + user message
        messages = [{"role": "system", "content": self.system_prompt}]
        messages.extend(self.conversation_history[-10:])
        messages.append({"role": "user", "content": message})

        # 2) extra context (memory / tool results) is injected as a system message
        if context:
            context_str = f"컨텍스트 정보: {json.dumps(context, ensure_ascii=False)}"
            messages.append({"role": "system", "content": context_str})

        # 3) LLM call
        try:
            response = self.llm_provider.chat(messages=messages, temperature=0.7, max_tokens=512)
        except Exception as exc:
            logger.error(f"LLM call failed: {exc}")
            return {
                "session_id": self.session_id,
                "input": message,
                "output": "Sorry, I could not process your message right now.",
                "provider": self.llm_provider.provider_name,
                "model": self.llm_provider.model_name,
                "timestamp": datetime.now().isoformat(),
                "status": "error",
                "error": str(exc),
            }

        # 4) update the conversation history
        self.conversation_history.append({"role": "user", "content": message})
        self.conversation_history.append({"role": "assistant", "content": response})

        # 5) wrap the result for the runtime
        return {
            "session_id": self.session_id,
            "input": message,
            "output": response,
            "provider": self.llm_provider.provider_name,
            "model": self.llm_provider.model_name,
            "timestamp": datetime.now().isoformat(),
            "status": "success",
        }

    def write_session_file(self, content: str) -> None:
        with open(SESSION_FILE, "w") as f:
            f.write(content)

    def read_session_file(self) -> str:
        try:
            with open(SESSION_FILE, "r") as f:
                return f.read()
        except FileNotFoundError:
            return "FILE_NOT_FOUND"


# --------------------------------------------------------------------------
# Runtime handler
# --------------------------------------------------------------------------

# ONE agent per process, created on the first event and reused afterwards.
#
# This is the natural way to write an agent for AgentCore Runtime: there a
# microVM (and so this module) serves exactly one session, so module-level
# state *is* session state, and the conversation history survives between
# invocations. It is also exactly the pattern that breaks when a local tool
# runs every session's handler in one process: session B would get session
# A's agent, its session_id and its conversation history (and both share
# /tmp/session.txt). Under sessionvisor each session gets its own worker
# process (and its own /tmp), so this code is correct as written. Compare
# `sessionvisor run --isolation none` to see the leak.
_agent: LLMAgent | None = None


def _get_agent(session_id: str | None) -> LLMAgent:
    global _agent
    if _agent is None:
        _agent = LLMAgent(session_id=session_id)
    return _agent


def handler(event: dict, context=None) -> dict:
    """Lambda/AgentCore Runtime handler function"""
    if not isinstance(event, dict):
        event = {"message": "" if event is None else str(event)}
    message = event.get("message", "")
    session_id = event.get("session_id") or getattr(context, "session_id", None) or None
    action = event.get("action", "echo")

    agent = _get_agent(session_id)

    if action == "echo":
        result = agent.process_message(message, context=event.get("context"))
    elif action == "write":
        agent.write_session_file(message)
        result = {"status": "written", "session_id": agent.session_id}
    elif action == "read":
        content = agent.read_session_file()
        result = {"status": "read", "content": content, "session_id": agent.session_id}
    elif action == "whoami":
        result = {
            "status": "whoami",
            "session_id": agent.session_id,
            "context_session_id": getattr(context, "session_id", None),
            "pid": os.getpid(),
            "turns": len(agent.conversation_history) // 2,
        }
    else:
        result = {"error": f"Unknown action: {action}"}

    return {"statusCode": 200, "body": json.dumps(result)}


if __name__ == "__main__":
    # Quick local check without sessionvisor: python3 echo_agent.py "hello"
    print(json.dumps(handler({"message": " ".join(sys.argv[1:]) or "hello"}), ensure_ascii=False))
