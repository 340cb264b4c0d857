"""The go-plugin side of a plughost plugin in Python: cookie check, listening,
the handshake line, the standard services (health, broker, controller) and
hclog-style logging. Written against docs/protocol.md and proto/ only, with
Debian's python3-grpcio and python3-protobuf; copy it into your own plugin.

Plaintext only: when the host asks for AutoMTLS (PLUGIN_CLIENT_CERT is set)
this module says so and exits 1. plughost hosts default to plaintext.
"""
import datetime
import json
import os
import queue
import signal
import sys
import tempfile
import threading
from concurrent import futures

import grpc

from health.v1 import health_pb2, health_pb2_grpc
from plugin import grpc_broker_pb2, grpc_broker_pb2_grpc
from plugin import grpc_controller_pb2, grpc_controller_pb2_grpc

COOKIE_KEY = "PLUGHOST_PLUGIN"
COOKIE_VALUE = "plughost"
APP_VERSION = 1
NOT_A_PLUGIN = (
    "This binary is a plugin. These are not meant to be executed directly.\n"
    "Please execute the program that consumes these plugins, which will\n"
    "load any plugins automatically\n"
)
BROKER_DIAL_TIMEOUT_S = 5.0
# The host's gRPC message size limit, for our server and every broker connection (grpcio alone receives 4 MiB).
MAX_MESSAGE_BYTES = int(os.environ.get("PLUGHOST_MAX_MESSAGE_BYTES") or 64 * 1024 * 1024)
GRPC_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES), ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)]


def log(level, message, **fields):
    """One hclog JSON line on stderr; the host turns it into a log record."""
    record = {
        "@level": level,
        "@message": message,
        "@timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="microseconds"),
    }
    record.update(fields)
    sys.stderr.write(json.dumps(record) + "\n")
    sys.stderr.flush()


class Broker(grpc_broker_pb2_grpc.GRPCBrokerServicer):
    """go-plugin's broker, plugin side. The host opens StartStream once and
    announces there (ConnInfo) the services it serves, such as the plughost API;
    dial() waits for the announcement of one id and connects to it."""

    def __init__(self):
        self._known = {}
        self._cond = threading.Condition()
        self._outgoing = queue.Queue()

    def StartStream(self, request_iterator, context):
        def read():
            try:
                for info in request_iterator:
                    if info.HasField("knock"):
                        continue  # multiplexing only; plughost never sends it
                    with self._cond:
                        self._known[info.service_id] = info
                        self._cond.notify_all()
            except grpc.RpcError:
                pass
            self._outgoing.put(None)

        threading.Thread(target=read, daemon=True).start()
        while True:
            item = self._outgoing.get()
            if item is None:
                return
            yield item

    def close(self):
        self._outgoing.put(None)

    def dial(self, service_id, timeout=BROKER_DIAL_TIMEOUT_S):
        with self._cond:
            if not self._cond.wait_for(lambda: service_id in self._known, timeout):
                raise TimeoutError("broker: no connection info for service id %d within %.0f s" % (service_id, timeout))
            info = self._known.pop(service_id)
        if info.network == "unix":
            return grpc.insecure_channel("unix:" + info.address, options=GRPC_OPTIONS)
        if info.network == "tcp":
            return grpc.insecure_channel(info.address, options=GRPC_OPTIONS)
        raise ValueError("broker: service id %d has network %r; expected unix or tcp" % (service_id, info.network))


class Health(health_pb2_grpc.HealthServicer):
    def Check(self, request, context):
        if request.service in ("", "plugin"):
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown health service %r; this plugin reports \"plugin\"" % request.service)


class Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):
    def __init__(self, stopping):
        self._stopping = stopping

    def Shutdown(self, request, context):
        self._stopping.set()
        return grpc_controller_pb2.Empty()


def _listen(server):
    """Binds a unix socket in PLUGIN_UNIX_SOCKET_DIR (or loopback TCP when the
    host sets PLUGHOST_PLUGIN_NETWORK=tcp); returns (network, address)."""
    if os.environ.get("PLUGHOST_PLUGIN_NETWORK") == "tcp":
        port = server.add_insecure_port("127.0.0.1:0")
        return "tcp", "127.0.0.1:%d" % port
    folder = os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or tempfile.mkdtemp(prefix="plugin-")
    path = os.path.join(folder, "py%d.sock" % os.getpid())
    if len(path.encode()) > 107:
        raise ValueError("unix socket path %r is longer than 107 bytes" % path)
    if server.add_insecure_port("unix:" + path) == 0:
        raise OSError("cannot listen on unix socket %s" % path)
    return "unix", path


def serve(add_services, on_shutdown=None):
    """Runs the plugin until the host calls Controller.Shutdown (exit 0) or goes
    away. add_services(server, broker) registers the plugin's own services."""
    if os.environ.get(COOKIE_KEY) != COOKIE_VALUE:
        sys.stderr.write(NOT_A_PLUGIN)
        sys.exit(1)
    if os.environ.get("PLUGIN_CLIENT_CERT"):
        log("error", "the host asked for AutoMTLS, which this example does not implement; run the host with autoMTLS off")
        sys.exit(1)
    offered = [v.strip() for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "").split(",") if v.strip()]
    if offered and str(APP_VERSION) not in offered:
        log("warn", "the host does not offer app protocol version %d" % APP_VERSION, offered=offered)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    stopping = threading.Event()
    broker = Broker()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), options=GRPC_OPTIONS)
    health_pb2_grpc.add_HealthServicer_to_server(Health(), server)
    grpc_broker_pb2_grpc.add_GRPCBrokerServicer_to_server(broker, server)
    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(Controller(stopping), server)
    add_services(server, broker)
    network, address = _listen(server)
    server.start()

    sys.stdout.write("1|%d|%s|%s|grpc|\n" % (APP_VERSION, network, address))
    sys.stdout.flush()
    log("debug", "plugin serving", network=network, address=address)

    parent = os.getppid()
    while not stopping.wait(1.0):
        if os.getppid() != parent:
            log("warn", "the host went away; exiting")
            break
    if on_shutdown:
        on_shutdown()
    broker.close()
    server.stop(grace=1.0).wait()
    sys.exit(0)
