"""A scripted model server for sluice's agent tests: enough of the Anthropic
messages API (POST /v1/messages, non-streaming, tool use) to drive an agent
through a fixed list of tool calls, on loopback.

Usage: model_server.py SCRIPT.json LOG.jsonl PORT_FILE

SCRIPT is a JSON list of tool calls, each {"name": ..., "input": {...}}. The
Nth request of a conversation (counted by the assistant turns it already
holds) is answered with the Nth call; after the last, with a final text. Every
tool result the agent sends back is appended to LOG, one JSON object a line
({"call": N, "name": ..., "is_error": ..., "content": ...}), so the test
judges what the agent actually got, outside the sandbox. The port it listens
on is written to PORT_FILE once it is ready.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SCRIPT_PATH, LOG_PATH, PORT_FILE = sys.argv[1], sys.argv[2], sys.argv[3]
with open(SCRIPT_PATH) as f:
    SCRIPT = json.load(f)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        if self.path.split("?")[0] != "/v1/messages":
            return self.reply(404, {"type": "error", "error": {"type": "not_found_error"}})
        if self.headers.get("x-api-key") != "sk-test-key":
            return self.reply(401, {"type": "error", "error": {"type": "authentication_error"}})
        length = int(self.headers.get("content-length", 0))
        request = json.loads(self.rfile.read(length))
        messages = request.get("messages", [])
        # Record the results of the previous call.
        last = messages[-1] if messages else {}
        if isinstance(last.get("content"), list):
            with open(LOG_PATH, "a") as log:
                for block in last["content"]:
                    if block.get("type") == "tool_result":
                        call = int(block["tool_use_id"].split("_")[1])
                        log.write(json.dumps({
                            "call": call,
                            "name": SCRIPT[call]["name"],
                            "is_error": bool(block.get("is_error")),
                            "content": block.get("content", ""),
                        }) + "\n")
        turn = sum(1 for m in messages if m.get("role") == "assistant")
        if turn < len(SCRIPT):
            step = SCRIPT[turn]
            content = [{"type": "tool_use", "id": "toolu_%d" % turn,
                        "name": step["name"], "input": step["input"]}]
            stop = "tool_use"
        else:
            content = [{"type": "text", "text": "All steps done."}]
            stop = "end_turn"
        self.reply(200, {
            "id": "msg_%d" % turn, "type": "message", "role": "assistant",
            "model": request.get("model", "scripted"), "content": content,
            "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        })


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
import os  # noqa: E402
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
