#!/bin/sh
# Builds bin/go-example (the executable plugin.json names) from main.go and gen/, offline, in
# GOPATH mode against Debian's hashicorp/go-plugin 1.0.1 and grpc:
#   apt-get install golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev golang-goprotobuf-dev
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# main.go imports its stubs as plughost-example-go/gen/...: that is the package's GOPATH name.
pkg="$work/src/plughost-example-go"
mkdir -p "$pkg" "$here/bin"
cp -R "$here/main.go" "$here/gen" "$pkg/"
cd "$pkg"
GO111MODULE=off GOPATH="$work:/usr/share/gocode" GOPROXY=off GOFLAGS= CGO_ENABLED=0 \
  GOCACHE="${GOCACHE:-$work/gocache}" go build -o "$here/bin/go-example" plughost-example-go
echo "built $here/bin/go-example"
