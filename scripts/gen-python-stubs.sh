#!/bin/sh
# Generates the Python stubs of examples/python from proto/ with Debian's protoc
# and grpc_python_plugin (apt-get install protobuf-compiler protobuf-compiler-grpc).
# The output is committed; run this again after any change under proto/.
#
# grpc/health/v1/health.proto is compiled from a copy at health/v1/health.proto:
# a generated "grpc" Python package would collide with the grpc library itself.
# Only the module path changes; the proto package (grpc.health.v1), and so the
# service name on the wire, stays the same.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/examples/python/gen"
PLUGIN=${GRPC_PYTHON_PLUGIN:-$(command -v grpc_python_plugin || true)}
if ! command -v protoc >/dev/null 2>&1 || [ -z "$PLUGIN" ]; then
  echo "gen-python-stubs: needs protoc and grpc_python_plugin: apt-get install protobuf-compiler protobuf-compiler-grpc" >&2
  exit 1
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/health/v1"
cp "$ROOT/proto/grpc/health/v1/health.proto" "$TMP/health/v1/health.proto"

rm -rf "$OUT"
mkdir -p "$OUT"
protoc -I "$ROOT/proto" -I "$TMP" \
  --python_out="$OUT" --grpc_out="$OUT" --plugin=protoc-gen-grpc="$PLUGIN" \
  plughost/v1/hooks.proto plughost/v1/api.proto \
  plugin/grpc_broker.proto plugin/grpc_controller.proto \
  health/v1/health.proto
echo "gen-python-stubs: wrote $(find "$OUT" -name '*.py' | wc -l) files under examples/python/gen ($(protoc --version))"
