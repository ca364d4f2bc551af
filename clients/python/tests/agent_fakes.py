"""A scripted model for the OpenAI Agents SDK: each turn answers the next scripted output
(tool calls, or a final text), no network. It records what it was given, so a test can read
the tool outputs the model saw."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from agents import Model, ModelResponse, RunConfig, Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

# No traces are exported from tests: that would need an OpenAI key and the network.
RUN_CONFIG = RunConfig(tracing_disabled=True)


def tool_call(name: str, args: dict[str, Any], call_id: str) -> ResponseFunctionToolCall:
    return ResponseFunctionToolCall(
        id=f"fc_{call_id}", call_id=call_id, type="function_call", name=name, arguments=json.dumps(args)
    )


def text(words: str) -> ResponseOutputMessage:
    return ResponseOutputMessage(
        id="msg_1",
        type="message",
        role="assistant",
        status="completed",
        content=[ResponseOutputText(text=words, type="output_text", annotations=[])],
    )


class ScriptedModel(Model):
    """`turns` is a list of outputs, one per model call; past the end it says "done"."""

    def __init__(self, turns: list[list[Any]]) -> None:
        self.turns = list(turns)
        self.inputs: list[Any] = []

    async def get_response(self, system_instructions: Any, input: Any, *args: Any, **kwargs: Any) -> ModelResponse:
        self.inputs.append(input)
        output = self.turns.pop(0) if self.turns else [text("done")]
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError("the tests run the agent without streaming")

    def tool_outputs(self) -> dict[str, str]:
        """call id -> the output the model was last given for it."""
        out: dict[str, str] = {}
        for given in self.inputs:
            if isinstance(given, list):
                for item in given:
                    if isinstance(item, dict) and item.get("type") == "function_call_output":
                        output = item.get("output")
                        out[item["call_id"]] = output if isinstance(output, str) else json.dumps(output)
        return out
