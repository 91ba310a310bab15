"""boto3's `bedrock-agentcore` client against `sessionvisor serve`.

    python3 tests/boto3_client.py http://127.0.0.1:PORT

Run by tests/http.rs against a server with the native reference worker and
--max-sessions 3. It uses the client exactly as AWS users do, with only
endpoint_url and dummy credentials changed (sessionvisor accepts signatures
without verifying them), and exits non-zero on the first failed check.
"""

import json
import sys
import uuid

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ARN = "arn:aws:bedrock-agentcore:us-east-1:123456789012:runtime/echo_agent-a1B2c3D4e5"


def client(url, **config):
    return boto3.client(
        "bedrock-agentcore",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="not-a-secret",
        # A throttled call must surface as an error here, not be retried.
        config=Config(retries={"total_max_attempts": 1}, **config),
    )


def new_session(name):
    # The service model wants 33 to 256 characters.
    return f"{name}-{uuid.uuid4()}"


def invoke(agentcore, session, event):
    response = agentcore.invoke_agent_runtime(
        agentRuntimeArn=ARN,
        runtimeSessionId=session,
        qualifier="DEFAULT",
        payload=json.dumps(event),
    )
    assert response["statusCode"] == 200, response
    assert response["runtimeSessionId"] == session, response
    return response


def body(response):
    assert response["contentType"] == "application/json", response["contentType"]
    result = json.loads(response["response"].read())
    assert result["statusCode"] == 200, result
    return json.loads(result["body"])


def error_of(call):
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("the call succeeded")


def main(url):
    agentcore = client(url)
    checks = 0

    # The seed's A/B story.
    a, b = new_session("boto3-a"), new_session("boto3-b")
    nonce = str(uuid.uuid4())
    assert body(invoke(agentcore, a, {"action": "write", "message": nonce}))["status"] == "written"
    assert body(invoke(agentcore, b, {"action": "read"}))["content"] == "FILE_NOT_FOUND"
    assert body(invoke(agentcore, a, {"action": "read"}))["content"] == nonce
    checks += 3

    # A generated session id (botocore fills the idempotency token).
    generated = agentcore.invoke_agent_runtime(agentRuntimeArn=ARN, payload=b"{}")
    assert len(generated["runtimeSessionId"]) >= 33, generated["runtimeSessionId"]
    generated["response"].read()
    checks += 1

    # A streamed answer: text/event-stream, one data line per chunk.
    streamed = invoke(agentcore, a, {"action": "stream", "message": "one two three"})
    assert streamed["contentType"] == "text/event-stream", streamed["contentType"]
    chunks = [
        json.loads(line[len(b"data: "):])
        for line in streamed["response"].iter_lines()
        if line.startswith(b"data: ")
    ]
    assert [c["token"] for c in chunks] == ["one", "two", "three"], chunks
    checks += 1

    # Errors arrive as the modeled exceptions.
    assert error_of(lambda: invoke(agentcore, a, {"action": "exec"})) == ("RuntimeClientError", 424)
    assert error_of(lambda: invoke(agentcore, new_session("boto3-c"), {})) == ("ThrottlingException", 429)
    unvalidated = client(url, parameter_validation=False)
    assert error_of(lambda: invoke(unvalidated, "short", {})) == ("ValidationException", 400)
    checks += 3

    # StopRuntimeSession ends the session; its id then starts afresh.
    stopped = agentcore.stop_runtime_session(agentRuntimeArn=ARN, runtimeSessionId=a, qualifier="DEFAULT")
    assert stopped["ResponseMetadata"]["HTTPStatusCode"] == 200, stopped
    assert stopped["runtimeSessionId"] == a, stopped
    assert error_of(
        lambda: agentcore.stop_runtime_session(agentRuntimeArn=ARN, runtimeSessionId=a)
    ) == ("ResourceNotFoundException", 404)
    assert body(invoke(agentcore, a, {"action": "read"}))["content"] == "FILE_NOT_FOUND"
    checks += 3

    print(f"boto3 ok: {checks} checks passed (boto3 {boto3.__version__})")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: boto3_client.py http://127.0.0.1:PORT")
    main(sys.argv[1])
