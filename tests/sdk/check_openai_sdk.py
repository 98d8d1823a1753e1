"""Fidelity check: the official `openai` Python SDK against the resptree emulator.

Usage: python check_openai_sdk.py BASE_URL   (e.g. http://127.0.0.1:8080/v1)

Every reply is also validated strictly against the SDK's own pydantic types
(`model_validate`), which the SDK itself skips, so a missing or mistyped field fails
here. Exits non-zero on the first failure. Run it through `scripts/sdk-check`.
"""

import json
import sys
import time
from typing import List, Literal, Optional

import openai
from openai import OpenAI
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.conversations import Conversation
from openai.types.responses import InputTokenCountResponse, Response, ResponseStreamEvent
from pydantic import BaseModel, TypeAdapter

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def expect_raises(exc_class, fn, code=None, param=None):
    try:
        fn()
    except exc_class as e:
        if code is not None:
            assert e.code == code, f"code {e.code!r} != {code!r}"
        if param is not None:
            assert e.param == param, f"param {e.param!r} != {param!r}"
        return e
    raise AssertionError(f"expected {exc_class.__name__}")


def create_validated(client, **kwargs):
    raw = client.responses.with_raw_response.create(**kwargs)
    assert raw.headers.get("x-request-id", "").startswith("req_")
    Response.model_validate(raw.http_response.json())
    return raw.parse()


@check
def create_chain_retrieve_delete(client):
    root = create_validated(client, model="gpt-4o-mini", input="Plan a weekend in Paris")
    assert root.id.startswith("resp_") and len(root.id) == 37, root.id
    assert root.status == "completed"
    assert root.output_text.startswith('[ctx 1 msgs] You said: "Plan a weekend in Paris".'), root.output_text
    assert root.usage.input_tokens_details.cached_tokens == 0

    child = create_validated(
        client,
        model="gpt-4o-mini",
        input="Which museums?",
        previous_response_id=root.id,
        instructions="Be brief.",
        metadata={"node": "n2"},
    )
    assert child.previous_response_id == root.id
    assert child.output_text.startswith('[ctx 3 msgs] You said: "Which museums?".'), child.output_text
    assert child.usage.input_tokens_details.cached_tokens > 0
    assert child.usage.total_tokens == child.usage.input_tokens + child.usage.output_tokens
    grandchild = create_validated(client, model="gpt-4o-mini", input="More", previous_response_id=child.id)
    assert grandchild.instructions is None, "instructions must not be inherited"

    got = client.responses.retrieve(child.id)
    assert got.id == child.id and got.output_text == child.output_text

    items = client.responses.input_items.list(child.id)
    assert [i.content[0].text for i in items.data] == ["Which museums?"]
    assert items.first_id == items.data[0].id and items.has_more is False

    assert client.responses.delete(root.id) is None
    expect_raises(openai.NotFoundError, lambda: client.responses.retrieve(root.id))
    expect_raises(openai.NotFoundError, lambda: client.responses.delete(root.id))
    err = expect_raises(
        openai.BadRequestError,
        lambda: client.responses.create(model="gpt-4o-mini", input="x", previous_response_id=root.id),
        code="previous_response_not_found",
        param="previous_response_id",
    )
    assert root.id in err.message


@check
def input_items_pagination(client):
    inputs = [{"role": "user", "content": f"m{i}"} for i in range(7)]
    resp = client.responses.create(model="gpt-4o-mini", input=inputs)
    page = client.responses.input_items.list(resp.id, limit=2, order="asc")
    assert page.has_more
    texts = [item.content[0].text for item in page]  # auto-pagination follows `after`
    assert texts == [f"m{i}" for i in range(7)], texts
    desc = client.responses.input_items.list(resp.id)
    assert [i.content[0].text for i in desc.data] == [f"m{i}" for i in reversed(range(7))]


@check
def store_false(client):
    resp = client.responses.create(model="gpt-4o-mini", input="secret", store=False)
    assert resp.store is False
    expect_raises(openai.NotFoundError, lambda: client.responses.retrieve(resp.id))
    expect_raises(
        openai.BadRequestError,
        lambda: client.responses.create(model="gpt-4o-mini", input="x", previous_response_id=resp.id),
        code="previous_response_not_found",
    )


@check
def streaming(client):
    adapter = TypeAdapter(ResponseStreamEvent)
    types, deltas, final = [], [], None
    stream = client.responses.create(model="gpt-4o-mini", input="Stream please", stream=True)
    for event in stream:
        adapter.validate_python(event.model_dump(mode="json"))
        types.append(event.type)
        if event.type == "response.output_text.delta":
            deltas.append(event.delta)
        if event.type == "response.completed":
            final = event.response
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ], types
    assert types[-1] == "response.completed", types
    assert final is not None and "".join(deltas) == final.output_text

    with client.responses.stream(model="gpt-4o-mini", input="Helper", previous_response_id=final.id) as s:
        for _ in s:
            pass
        helper_final = s.get_final_response()
    assert helper_final.output_text.startswith('[ctx 3 msgs] You said: "Helper".'), helper_final.output_text
    assert client.responses.retrieve(helper_final.id).id == helper_final.id


@check
def bad_requests(client):
    expect_raises(
        openai.BadRequestError,
        lambda: client.post("/responses", body={"input": "x"}, cast_to=object),
        code="missing_required_parameter",
        param="model",
    )
    expect_raises(
        openai.BadRequestError,
        lambda: client.responses.create(model="gpt-4o-mini", input="x", metadata={f"k{i}": "v" for i in range(17)}),
        param="metadata",
    )
    expect_raises(
        openai.BadRequestError,
        lambda: client.responses.create(
            model="gpt-4o-mini", input="x", previous_response_id="resp_a", conversation="conv_b"
        ),
    )
    expect_raises(openai.NotFoundError, lambda: client.get("/no/such/path", cast_to=object))


@check
def server_failures(client):
    # The emulator-only `x-emulator-fault` header fails this one request; `max_retries=0`.
    def create_with(fault):
        return lambda: client.responses.create(
            model="gpt-4o-mini", input="x", extra_headers={"x-emulator-fault": fault}
        )

    err = expect_raises(openai.RateLimitError, create_with("429"), code="rate_limit_exceeded")
    assert err.response.headers.get("retry-after-ms") == "10"
    assert err.response.headers.get("x-request-id", "").startswith("req_")
    expect_raises(openai.InternalServerError, create_with("500"))
    expect_raises(openai.InternalServerError, create_with("503"))
    expect_raises(openai.APIConnectionError, create_with("drop"))

    # The SDK's own retry honours retry-after-ms and gives up after max_retries.
    retrying = client.with_options(max_retries=2)
    expect_raises(
        openai.RateLimitError,
        lambda: retrying.responses.create(model="gpt-4o-mini", input="x", extra_headers={"x-emulator-fault": "429"}),
    )

    # A stream that fails mid-way ends with `response.failed`, which the SDK surfaces.
    events = list(
        client.responses.create(
            model="gpt-4o-mini", input="x", stream=True, extra_headers={"x-emulator-fault": "fail-mid-stream:1"}
        )
    )
    assert events[-1].type == "response.failed", [e.type for e in events]
    assert events[-1].response.error.code == "server_error"


def retrieve_validated(client, response_id):
    raw = client.responses.with_raw_response.retrieve(response_id)
    Response.model_validate(raw.http_response.json())
    return raw.parse()


@check
def background_poll_and_cancel(client):
    queued = create_validated(client, model="gpt-4o-mini", input="Think in background", background=True)
    assert queued.background is True and queued.status == "queued", queued.status
    assert queued.usage is None and queued.output == []
    # Polling is what a background client does; the emulator answers in milliseconds.
    done = queued
    for _ in range(500):
        done = retrieve_validated(client, queued.id)
        if done.status not in ("queued", "in_progress"):
            break
        time.sleep(0.01)
    assert done.status == "completed", done.status
    assert done.output_text.startswith('[ctx 1 msgs] You said: "Think in background".'), done.output_text

    # Held by the emulator until cancelled (the `hold` fault has no other release here).
    held = client.responses.create(
        model="gpt-4o-mini", input="Never ends", background=True, extra_headers={"x-emulator-fault": "hold"}
    )
    assert held.status in ("queued", "in_progress"), held.status
    raw = client.responses.with_raw_response.cancel(held.id)
    Response.model_validate(raw.http_response.json())
    cancelled = raw.parse()
    assert cancelled.status == "cancelled" and cancelled.usage is None, cancelled.status
    assert client.responses.cancel(held.id).status == "cancelled"
    assert retrieve_validated(client, held.id).status == "cancelled"

    # Cancelling a finished one is a no-op; a response not made in background is refused.
    assert client.responses.cancel(done.id).status == "completed"
    plain = client.responses.create(model="gpt-4o-mini", input="plain")
    expect_raises(openai.BadRequestError, lambda: client.responses.cancel(plain.id))
    expect_raises(openai.NotFoundError, lambda: client.responses.cancel("resp_unknown"))
    expect_raises(
        openai.BadRequestError,
        lambda: client.responses.create(model="gpt-4o-mini", input="x", background=True, store=False),
        param="background",
    )


@check
def background_stream_resume(client):
    adapter = TypeAdapter(ResponseStreamEvent)

    def validated(events):
        out = []
        for event in events:
            adapter.validate_python(event.model_dump(mode="json"))
            out.append(event)
        return out

    # The emulator cuts this stream's connection after 5 events; the response runs on.
    first = []
    try:
        for event in client.responses.create(
            model="gpt-4o-mini",
            input="Resume me",
            background=True,
            stream=True,
            extra_headers={"x-emulator-fault": "drop-mid-stream:5"},
        ):
            adapter.validate_python(event.model_dump(mode="json"))
            first.append(event)
        raise AssertionError("the stream should have been cut")
    except AssertionError:
        raise
    except Exception:
        pass
    assert [e.type for e in first[:3]] == ["response.created", "response.queued", "response.in_progress"], [
        e.type for e in first
    ]
    assert [e.sequence_number for e in first] == [0, 1, 2, 3, 4]
    rid = first[0].response.id
    assert first[0].response.status == "queued" and first[0].response.background is True

    rest = validated(client.responses.retrieve(rid, stream=True, starting_after=first[-1].sequence_number))
    assert rest[0].sequence_number == 5, rest[0].sequence_number
    assert rest[-1].type == "response.completed", [e.type for e in rest]

    # A response not created in background cannot be streamed again: the real
    # API's 400, naming `stream`.
    plain = client.responses.create(model="gpt-4o-mini", input="plain")
    expect_raises(
        openai.BadRequestError,
        lambda: list(client.responses.retrieve(plain.id, stream=True)),
        code="invalid_request_error",
        param="stream",
    )

    full = validated(client.responses.retrieve(rid, stream=True))
    assert [e.sequence_number for e in full] == list(range(len(full)))
    assert [e.model_dump() for e in full[5:]] == [e.model_dump() for e in rest]
    text = "".join(e.delta for e in full if e.type == "response.output_text.delta")
    assert text == rest[-1].response.output_text == retrieve_validated(client, rid).output_text


@check
def conversations(client):
    conv = client.conversations.create(
        metadata={"topic": "paris"},
        items=[{"type": "message", "role": "user", "content": "We arrive Friday."}],
    )
    Conversation.model_validate(client.conversations.with_raw_response.retrieve(conv.id).http_response.json())
    resp = client.responses.create(model="gpt-4o-mini", input="Plan it", conversation=conv.id)
    assert resp.output_text.startswith('[ctx 2 msgs] You said: "Plan it".'), resp.output_text
    items = client.conversations.items.list(conv.id)
    assert [i.role for i in items.data] == ["assistant", "user", "user"]
    deleted = client.conversations.delete(conv.id)
    assert deleted.deleted is True
    expect_raises(openai.NotFoundError, lambda: client.conversations.retrieve(conv.id))


@check
def chat_n(client):
    messages = [{"role": "user", "content": "Plan a weekend in Paris"}]
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages, n=3)
    ChatCompletion.model_validate(raw.http_response.json())
    completion = raw.parse()
    texts = [c.message.content for c in completion.choices]
    assert len(set(texts)) == 3, texts
    assert all(t.startswith('[ctx 1 msgs] You said: "Plan a weekend in Paris".') for t in texts)

    streamed, usage = {}, None
    for chunk in client.chat.completions.create(
        model="gpt-4o-mini", messages=messages, n=3, stream=True, stream_options={"include_usage": True}
    ):
        ChatCompletionChunk.model_validate(chunk.model_dump(mode="json"))
        for choice in chunk.choices:
            streamed[choice.index] = streamed.get(choice.index, "") + (choice.delta.content or "")
        if chunk.usage is not None:
            usage = chunk.usage
    assert sorted(streamed) == [0, 1, 2] and all(streamed.values())
    assert usage is not None and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    expect_raises(
        openai.BadRequestError,
        lambda: client.chat.completions.create(model="gpt-4o-mini", messages=messages, n=129),
        param="n",
    )


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
    "strict": True,
}


@check
def tool_call_and_output_continuation(client):
    resp = create_validated(
        client, model="gpt-4o-mini", input="Call get_weather city=Paris please", tools=[WEATHER_TOOL]
    )
    calls = [item for item in resp.output if item.type == "function_call"]
    assert len(calls) == 1, resp.output
    call = calls[0]
    assert call.name == "get_weather" and call.call_id.startswith("call_") and call.status == "completed"
    args = json.loads(call.arguments)
    assert args == {"city": "Paris", "unit": "celsius"}, args
    assert resp.output_text == ""

    err = expect_raises(
        openai.BadRequestError,
        lambda: client.responses.create(
            model="gpt-4o-mini", input="thanks", previous_response_id=resp.id, tools=[WEATHER_TOOL]
        ),
        param="input",
    )
    assert call.call_id in err.message, err.message

    answered = create_validated(
        client,
        model="gpt-4o-mini",
        previous_response_id=resp.id,
        tools=[WEATHER_TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": json.dumps({"temp": 18})}],
    )
    assert answered.output[0].type == "message" and answered.output_text, answered.output
    expect_raises(
        openai.BadRequestError,
        lambda: client.responses.create(
            model="gpt-4o-mini", input="x", tools=[{"type": "function", "name": "f", "parameters": {"type": "array"}}]
        ),
        code="invalid_function_parameters",
        param="tools[0].parameters",
    )


@check
def streamed_function_call_arguments(client):
    adapter = TypeAdapter(ResponseStreamEvent)
    types, deltas, done, final = [], [], None, None
    stream = client.responses.create(
        model="gpt-4o-mini", input="get_weather city=Lyon unit=fahrenheit", tools=[WEATHER_TOOL], stream=True
    )
    for event in stream:
        adapter.validate_python(event.model_dump(mode="json"))
        types.append(event.type)
        if event.type == "response.function_call_arguments.delta":
            deltas.append(event.delta)
        if event.type == "response.function_call_arguments.done":
            done = event.arguments
        if event.type == "response.completed":
            final = event.response
    assert types[:3] == ["response.created", "response.in_progress", "response.output_item.added"], types
    assert types[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ], types
    assert "".join(deltas) == done == final.output[0].arguments
    assert json.loads(done) == {"city": "Lyon", "unit": "fahrenheit"}

    # The helper stream assembles the same call.
    with client.responses.stream(
        model="gpt-4o-mini", input="get_weather city=Lyon", tools=[WEATHER_TOOL]
    ) as s:
        for _ in s:
            pass
        helper = s.get_final_response()
    assert helper.output[0].type == "function_call", helper.output


@check
def reasoning_items_round_trip_encrypted(client):
    kwargs = dict(
        model="o4-mini",
        reasoning={"effort": "low", "summary": "auto"},
        include=["reasoning.encrypted_content"],
        store=False,
    )
    first = create_validated(client, input="Plan a weekend in Paris", **kwargs)
    reasoning, message = first.output[0], first.output[1]
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_"), first.output
    assert reasoning.encrypted_content and reasoning.summary[0].type == "summary_text"
    assert first.usage.output_tokens_details.reasoning_tokens == 32
    assert first.reasoning.effort == "low"

    # Stateless replay: the items go back as the SDK returned them.
    history = [{"role": "user", "content": "Plan a weekend in Paris"}]
    history += [item.model_dump(exclude_none=True) for item in first.output]
    second = create_validated(client, input=history + [{"role": "user", "content": "Cheaper?"}], **kwargs)
    assert second.output_text.startswith("[ctx 4 msgs]"), second.output_text

    garbled = reasoning.model_dump(exclude_none=True)
    garbled["encrypted_content"] = "gAAAAAB" + "0" * 40
    expect_raises(
        openai.BadRequestError,
        lambda: client.responses.create(input=[garbled, message.model_dump(exclude_none=True)], **kwargs),
        code="invalid_encrypted_content",
    )

    events = list(client.responses.create(model="o3", input="hi", reasoning={"summary": "auto"}, stream=True))
    adapter = TypeAdapter(ResponseStreamEvent)
    for event in events:
        adapter.validate_python(event.model_dump(mode="json"))
    summary = "".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta")
    assert summary == events[-1].response.output[0].summary[0].text


class Stop(BaseModel):
    place: str
    hours: float


class Plan(BaseModel):
    title: str
    pace: Literal["slow", "fast"]
    days: int
    stops: List[Stop]
    note: Optional[str]


@check
def structured_output_parse(client):
    parsed = client.responses.parse(
        model="gpt-4o-mini", input='Plan "A Paris weekend" pace=fast', text_format=Plan
    )
    plan = parsed.output_parsed
    assert isinstance(plan, Plan), plan
    assert plan.title == "A Paris weekend" and plan.pace == "fast" and len(plan.stops) == 1, plan
    Response.model_validate(
        client.responses.with_raw_response.create(
            model="gpt-4o-mini", input="json please", text={"format": {"type": "json_object"}}
        ).http_response.json()
    )


@check
def input_tokens_count(client):
    body = dict(model="gpt-4o-mini", input="Plan a weekend in Paris", instructions="Be brief.", tools=[WEATHER_TOOL])
    counted = client.responses.input_tokens.count(**body)
    InputTokenCountResponse.model_validate(counted.model_dump(mode="json"))
    assert counted.object == "response.input_tokens"
    created = client.responses.create(**body)
    assert counted.input_tokens == created.usage.input_tokens, (counted, created.usage)
    expect_raises(
        openai.BadRequestError,
        lambda: client.responses.create(model="gpt-4o-mini-ctx20", input="x" * 200),
        code="context_length_exceeded",
        param="input",
    )


@check
def chat_tool_calls(client):
    function = {k: v for k, v in WEATHER_TOOL.items() if k != "type"}
    tools = [{"type": "function", "function": function}]
    messages = [{"role": "user", "content": "get_weather city=Paris"}]
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=messages, tools=tools)
    ChatCompletion.model_validate(raw.http_response.json())
    choice = raw.parse().choices[0]
    assert choice.finish_reason == "tool_calls", choice
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments)["city"] == "Paris"

    answered = messages + [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    done = client.chat.completions.create(model="gpt-4o-mini", messages=answered, tools=tools)
    assert done.choices[0].finish_reason == "stop" and done.choices[0].message.content

    arguments, finish = "", None
    for chunk in client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools, stream=True):
        ChatCompletionChunk.model_validate(chunk.model_dump(mode="json"))
        for c in chunk.choices:
            for fragment in c.delta.tool_calls or []:
                arguments += fragment.function.arguments or ""
            finish = c.finish_reason or finish
    assert finish == "tool_calls" and arguments == call.function.arguments, (finish, arguments)


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    client = OpenAI(base_url=sys.argv[1], api_key="sk-emulator-not-a-key", max_retries=0)
    failed = 0
    for fn in CHECKS:
        try:
            fn(client)
            print(f"ok   {fn.__name__}")
        except Exception as e:  # report every check, then fail
            failed += 1
            print(f"FAIL {fn.__name__}: {type(e).__name__}: {e}")
    print(f"official openai SDK {openai.__version__} against the emulator")
    print(f"sdk-check: {len(CHECKS) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
