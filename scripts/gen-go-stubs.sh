#!/bin/sh
# Generates the Go stubs of examples/go from proto/plughost/v1 with Debian's
# protoc and protoc-gen-go 1.3 (apt-get install protobuf-compiler
# golang-goprotobuf-dev), gRPC services included (plugins=grpc). The output is
# committed; run this again after any change under proto/plughost/.
#
# go-plugin's own services (broker, controller, health) come with go-plugin.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT="$ROOT/examples/go/gen"
if ! command -v protoc >/dev/null 2>&1 || ! command -v protoc-gen-go >/dev/null 2>&1; then
  echo "gen-go-stubs: needs protoc and protoc-gen-go: apt-get install protobuf-compiler golang-goprotobuf-dev" >&2
  exit 1
fi
rm -rf "$OUT"
mkdir -p "$OUT"
protoc -I "$ROOT/proto" --go_out=plugins=grpc,paths=source_relative:"$OUT" \
  plughost/v1/hooks.proto plughost/v1/api.proto
echo "gen-go-stubs: wrote $(find "$OUT" -name '*.go' | wc -l) files under examples/go/gen ($(protoc --version))"
