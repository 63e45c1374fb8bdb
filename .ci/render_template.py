#!/usr/bin/env python3
"""Renders a jinja chat template with a JSON request from stdin, the way Hugging Face
transformers' apply_chat_template sets up jinja2; the reference for examples/render_template.rs.

Usage: render_template.py TEMPLATE.jinja < request.json

The request: messages (role, content, reasoning_content, tool_calls as
{"id", "name", "arguments"}, tool_call_id, name), tools ({"name", "description",
"parameters"}), kwargs, add_generation_prompt (default true), bos_token, eos_token, now (Unix
seconds that strftime_now formats, default 0).
"""
import datetime
import json
import sys

import jinja2
import jinja2.ext
import jinja2.sandbox


def openai_message(m):
    """The message dict a template sees: optional fields only when set."""
    out = {"role": m["role"], "content": m.get("content", "")}
    if m.get("reasoning_content") is not None:
        out["reasoning_content"] = m["reasoning_content"]
    calls = m.get("tool_calls") or []
    if calls:
        shaped = []
        for c in calls:
            call = {"type": "function"}
            if c.get("id") is not None:
                call["id"] = c["id"]
            call["function"] = {"name": c["name"], "arguments": c["arguments"]}
            shaped.append(call)
        out["tool_calls"] = shaped
    if m.get("tool_call_id") is not None:
        out["tool_call_id"] = m["tool_call_id"]
    if m.get("name") is not None:
        out["name"] = m["name"]
    return out


def openai_tool(t):
    return {
        "type": "function",
        "function": {
            "name": t["name"],
            "description": t.get("description", ""),
            "parameters": t["parameters"],
        },
    }


def main():
    source = open(sys.argv[1], encoding="utf-8").read()
    req = json.load(sys.stdin)
    now = req.get("now", 0)

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(now).strftime(fmt)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent,
                          separators=separators, sort_keys=sort_keys)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    tools = [openai_tool(t) for t in req.get("tools", [])] or None
    variables = {
        "messages": [openai_message(m) for m in req["messages"]],
        "tools": tools,
        "add_generation_prompt": req.get("add_generation_prompt", True),
        "bos_token": req.get("bos_token", ""),
        "eos_token": req.get("eos_token", ""),
    }
    variables.update(req.get("kwargs", {}))
    sys.stdout.write(env.from_string(source).render(**variables))


if __name__ == "__main__":
    main()
