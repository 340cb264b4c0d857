"""The plughost example plugin in Python.

- OnActivate dials the host's API through the broker and counts activations in KV.
- ServeHTTP: GET / describes the plugin; GET /hello answers with a greeting and
  a visit counter kept in KV (compare-and-set, so concurrent visits all count).
- NoteWillBeSaved, a filter hook: tidies the note's text and adds the tag
  "python"; a note without text is rejected.
"""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen"))

import grpc  # noqa: E402

import goplugin  # noqa: E402
from plughost.v1 import api_pb2, api_pb2_grpc, hooks_pb2, hooks_pb2_grpc  # noqa: E402

API_TIMEOUT_S = 5.0


class Hooks(hooks_pb2_grpc.HooksServicer):
    def __init__(self, broker):
        self.broker = broker
        self.channel = None
        self.api = None
        self.plugin_id = ""
        self.config = {}

    def Implemented(self, request, context):
        return hooks_pb2.ImplementedResponse(
            methods=["OnActivate", "OnDeactivate", "ServeHTTP"],
            hooks=["NoteWillBeSaved"],
        )

    def OnActivate(self, request, context):
        self.plugin_id = request.plugin_id
        self.config = json.loads(request.configuration or b"{}")
        try:
            self.channel = self.broker.dial(request.api_broker_id)
            self.api = api_pb2_grpc.APIStub(self.channel)
            activations = self.increment("activations")
        except (grpc.RpcError, TimeoutError, ValueError) as err:
            context.abort(grpc.StatusCode.UNAVAILABLE, "cannot reach the host API on broker id %d: %s" % (request.api_broker_id, describe(err)))
        try:
            self.api.Log(
                api_pb2.LogRequest(level="info", message="python plugin activated", fields=json.dumps({"activations": activations}).encode()),
                timeout=API_TIMEOUT_S,
            )
        except grpc.RpcError as err:
            goplugin.log("warn", "API Log failed", error=describe(err))
        goplugin.log("info", "activated", plugin_id=self.plugin_id, host_version=request.host_version)
        return hooks_pb2.Empty()

    def OnDeactivate(self, request, context):
        if self.channel is not None:
            self.channel.close()
        self.channel = None
        self.api = None
        return hooks_pb2.Empty()

    def RunHook(self, request, context):
        if request.hook != "NoteWillBeSaved":
            context.abort(grpc.StatusCode.UNIMPLEMENTED, "this plugin does not implement hook %r" % request.hook)
        try:
            note = json.loads(request.payload or b"null")
        except ValueError as err:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "payload: expected JSON (%s)" % err)
        if not isinstance(note, dict):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "payload: expected a JSON object (a note)")
        text = " ".join(str(note.get("text") or "").split())
        if not text:
            return hooks_pb2.RunHookResponse(rejected=True, reason="a note needs some text")
        tags = list(note.get("tags") or [])
        if "python" not in tags:
            tags.append("python")
        note.update(text=text, tags=tags)
        return hooks_pb2.RunHookResponse(payload=json.dumps(note).encode())

    def ServeHTTP(self, request_iterator, context):
        head = None
        body = b""
        for part in request_iterator:
            if head is None:
                head = part.head
            body += part.body
        if head is None:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "ServeHTTP: the first part has no head")
        status, answer = self.route(head.method, head.path, body)
        data = json.dumps(answer).encode()
        yield hooks_pb2.HTTPResponsePart(
            head=hooks_pb2.HTTPResponseHead(
                status=status,
                headers=[
                    hooks_pb2.HTTPHeader(name="Content-Type", values=["application/json"]),
                    hooks_pb2.HTTPHeader(name="Content-Length", values=[str(len(data))]),
                ],
            )
        )
        yield hooks_pb2.HTTPResponsePart(body=data)

    def route(self, method, path, body):
        if method != "GET":
            return 405, {"error": "only GET is served, got %s" % method}
        if path == "/":
            return 200, {"plugin": self.plugin_id, "language": "python", "routes": ["/hello"]}
        if path == "/hello":
            if self.api is None:
                return 503, {"error": "not activated"}
            visits = self.increment("visits")
            return 200, {"greeting": "Hello from Python", "visits": visits}
        return 404, {"error": "no route %s %s" % (method, path)}

    def increment(self, key):
        """Adds one to a JSON number in KV with compare-and-set, retrying on a race."""
        while True:
            got = self.api.KVGet(api_pb2.KVGetRequest(key=key), timeout=API_TIMEOUT_S)
            current = int(json.loads(got.value)) if got.found else 0
            request = api_pb2.KVSetRequest(key=key, value=json.dumps(current + 1).encode(), compare=True)
            if got.found:
                request.expected = got.value
            else:
                request.expected_absent = True
            if self.api.KVSet(request, timeout=API_TIMEOUT_S).ok:
                return current + 1


def describe(err):
    if isinstance(err, grpc.RpcError):
        return "%s: %s" % (err.code().name, err.details())
    return str(err)


def main():
    hooks = {}

    def add_services(server, broker):
        hooks["servicer"] = Hooks(broker)
        hooks_pb2_grpc.add_HooksServicer_to_server(hooks["servicer"], server)

    def on_shutdown():
        servicer = hooks.get("servicer")
        if servicer is not None and servicer.channel is not None:
            servicer.channel.close()

    goplugin.serve(add_services, on_shutdown)


if __name__ == "__main__":
    main()
