"""A minimal coding agent for sluice's tests: the tool-use loop of the
Anthropic messages API with three tools (read_file, write_file,
run_command), as real agents have. Reads ANTHROPIC_BASE_URL and
ANTHROPIC_API_KEY; the prompt is its first argument. A tool that fails
returns its error to the model, as agents do; the agent itself goes on.
"""

import json
import os
import subprocess
import sys
import urllib.request

BASE = os.environ["ANTHROPIC_BASE_URL"].rstrip("/")
KEY = os.environ["ANTHROPIC_API_KEY"]
TOOLS = [
    {"name": "read_file", "description": "Read a file.",
     "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}}},
    {"name": "write_file", "description": "Write a file.",
     "input_schema": {"type": "object", "properties": {
         "path": {"type": "string"}, "content": {"type": "string"}}}},
    {"name": "run_command", "description": "Run a shell command.",
     "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}},
]


def call_model(messages):
    body = json.dumps({"model": "scripted", "max_tokens": 1024,
                       "tools": TOOLS, "messages": messages}).encode()
    req = urllib.request.Request(BASE + "/v1/messages", data=body, headers={
        "content-type": "application/json", "x-api-key": KEY,
        "anthropic-version": "2023-06-01"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.load(resp)


def run_tool(name, args):
    path = os.path.expanduser(args.get("path", ""))
    if name == "read_file":
        with open(path) as f:
            return f.read()
    if name == "write_file":
        with open(path, "w") as f:
            f.write(args["content"])
        return "wrote %d bytes" % len(args["content"])
    if name == "run_command":
        done = subprocess.run(args["command"], shell=True, capture_output=True,
                              text=True, timeout=120)
        out = done.stdout + done.stderr
        if done.returncode != 0:
            raise RuntimeError("exit %d: %s" % (done.returncode, out))
        return out
    raise ValueError("unknown tool " + name)


def main():
    messages = [{"role": "user", "content": sys.argv[1]}]
    for _ in range(50):
        reply = call_model(messages)
        messages.append({"role": "assistant", "content": reply["content"]})
        if reply["stop_reason"] != "tool_use":
            print("".join(b.get("text", "") for b in reply["content"]))
            return 0
        results = []
        for block in reply["content"]:
            if block["type"] != "tool_use":
                continue
            try:
                out, err = run_tool(block["name"], block["input"]), False
            except Exception as e:  # the model hears of every failure
                out, err = "%s: %s" % (type(e).__name__, e), True
            print("tool %s %s: %s" % (block["name"], "error" if err else "ok", out[:200]),
                  flush=True)
            results.append({"type": "tool_result", "tool_use_id": block["id"],
                            "content": out, "is_error": err})
        messages.append({"role": "user", "content": results})
    return 1


sys.exit(main())
