// The plughost example plugin in Go, served with hashicorp/go-plugin (Debian's
// 1.0.1). go-plugin does the protocol: cookie check, handshake line, health,
// broker and controller. This file serves plughost's Hooks:
//
//   - OnActivate dials the host's API through the broker and counts activations in KV.
//   - ServeHTTP: GET / describes the plugin; GET /hello answers with a greeting and
//     a visit counter kept in KV (compare-and-set, so concurrent visits all count).
//   - NoteWillBeSaved, a filter hook: tidies the note's text and adds the tag "go";
//     a note without text is rejected.
//
// go-plugin 1.0.1 serves no GRPCStdio (plughost hosts do without it), and its
// plugin side cannot dial the broker under AutoMTLS, so run the host in
// plaintext (its default) with this plugin.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	plughost "plughost-example-go/gen/plughost/v1"
)

var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PLUGHOST_PLUGIN",
	MagicCookieValue: "plughost",
}

const apiTimeout = 5 * time.Second

type hooks struct {
	plughost.UnimplementedHooksServer
	broker *plugin.GRPCBroker
	log    hclog.Logger

	mu       sync.Mutex
	conn     *grpc.ClientConn
	api      plughost.APIClient
	pluginID string
}

func (h *hooks) Implemented(context.Context, *plughost.Empty) (*plughost.ImplementedResponse, error) {
	return &plughost.ImplementedResponse{
		Methods: []string{"OnActivate", "OnDeactivate", "ServeHTTP"},
		Hooks:   []string{"NoteWillBeSaved"},
	}, nil
}

func (h *hooks) OnActivate(ctx context.Context, req *plughost.OnActivateRequest) (*plughost.Empty, error) {
	conn, err := h.broker.Dial(req.ApiBrokerId)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "cannot reach the host API on broker id %d: %v", req.ApiBrokerId, err)
	}
	api := plughost.NewAPIClient(conn)
	h.mu.Lock()
	h.conn, h.api, h.pluginID = conn, api, req.PluginId
	h.mu.Unlock()
	activations, err := increment(ctx, api, "activations")
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "KV through the broker failed: %v", err)
	}
	fields, _ := json.Marshal(map[string]int{"activations": activations})
	cctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	if _, err := api.Log(cctx, &plughost.LogRequest{Level: "info", Message: "go plugin activated", Fields: fields}); err != nil {
		h.log.Warn("API Log failed", "error", err)
	}
	h.log.Info("activated", "plugin_id", req.PluginId, "host_version", req.HostVersion)
	return &plughost.Empty{}, nil
}

func (h *hooks) OnDeactivate(context.Context, *plughost.Empty) (*plughost.Empty, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conn != nil {
		h.conn.Close()
	}
	h.conn, h.api = nil, nil
	return &plughost.Empty{}, nil
}

func (h *hooks) RunHook(ctx context.Context, req *plughost.RunHookRequest) (*plughost.RunHookResponse, error) {
	if req.Hook != "NoteWillBeSaved" {
		return nil, status.Errorf(codes.Unimplemented, "this plugin does not implement hook %q", req.Hook)
	}
	var note map[string]interface{}
	if err := json.Unmarshal(req.Payload, &note); err != nil || note == nil {
		return nil, status.Errorf(codes.InvalidArgument, "payload: expected a JSON object (a note)")
	}
	text, _ := note["text"].(string)
	text = strings.Join(strings.Fields(text), " ")
	if text == "" {
		return &plughost.RunHookResponse{Rejected: true, Reason: "a note needs some text"}, nil
	}
	tags, _ := note["tags"].([]interface{})
	tagged := false
	for _, t := range tags {
		tagged = tagged || t == "go"
	}
	if !tagged {
		tags = append(tags, "go")
	}
	note["text"], note["tags"] = text, tags
	out, err := json.Marshal(note)
	if err != nil {
		return nil, status.Errorf(codes.Internal, "encoding the note: %v", err)
	}
	return &plughost.RunHookResponse{Payload: out}, nil
}

func (h *hooks) ServeHTTP(stream plughost.Hooks_ServeHTTPServer) error {
	var head *plughost.HTTPRequestHead
	for {
		part, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if head == nil {
			head = part.Head
		}
	}
	if head == nil {
		return status.Error(codes.InvalidArgument, "ServeHTTP: the first part has no head")
	}
	code, answer := h.route(stream.Context(), head)
	body, _ := json.Marshal(answer)
	if err := stream.Send(&plughost.HTTPResponsePart{Head: &plughost.HTTPResponseHead{
		Status: code,
		Headers: []*plughost.HTTPHeader{
			{Name: "Content-Type", Values: []string{"application/json"}},
			{Name: "Content-Length", Values: []string{fmt.Sprint(len(body))}},
		},
	}}); err != nil {
		return err
	}
	return stream.Send(&plughost.HTTPResponsePart{Body: body})
}

func (h *hooks) route(ctx context.Context, head *plughost.HTTPRequestHead) (uint32, interface{}) {
	if head.Method != "GET" {
		return 405, map[string]string{"error": "only GET is served, got " + head.Method}
	}
	h.mu.Lock()
	api, id := h.api, h.pluginID
	h.mu.Unlock()
	switch head.Path {
	case "/":
		return 200, map[string]interface{}{"plugin": id, "language": "go", "routes": []string{"/hello"}}
	case "/hello":
		if api == nil {
			return 503, map[string]string{"error": "not activated"}
		}
		visits, err := increment(ctx, api, "visits")
		if err != nil {
			return 502, map[string]string{"error": err.Error()}
		}
		return 200, map[string]interface{}{"greeting": "Hello from Go", "visits": visits}
	}
	return 404, map[string]string{"error": fmt.Sprintf("no route %s %s", head.Method, head.Path)}
}

// increment adds one to a JSON number in KV with compare-and-set, retrying on a race.
func increment(ctx context.Context, api plughost.APIClient, key string) (int, error) {
	for {
		cctx, cancel := context.WithTimeout(ctx, apiTimeout)
		got, err := api.KVGet(cctx, &plughost.KVGetRequest{Key: key})
		if err != nil {
			cancel()
			return 0, err
		}
		current := 0
		if got.Found {
			if err := json.Unmarshal(got.Value, &current); err != nil {
				cancel()
				return 0, fmt.Errorf("KV %q holds %q, not a number", key, got.Value)
			}
		}
		next, _ := json.Marshal(current + 1)
		set, err := api.KVSet(cctx, &plughost.KVSetRequest{Key: key, Value: next, Compare: true, Expected: got.Value, ExpectedAbsent: !got.Found})
		cancel()
		if err != nil {
			return 0, err
		}
		if set.Ok {
			return current + 1, nil
		}
	}
}

// hooksPlugin registers the Hooks service on go-plugin's gRPC server.
type hooksPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	log hclog.Logger
}

func (p *hooksPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	plughost.RegisterHooksServer(s, &hooks{broker: broker, log: p.log})
	return nil
}

func (p *hooksPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("this is the plugin side only")
}

// grpcServer is go-plugin's default server with the host's message size limit
// (PLUGHOST_MAX_MESSAGE_BYTES, 64 MiB when unset): grpc-go alone accepts 4 MiB.
// go-plugin's broker connections to the host already allow any size.
func grpcServer(opts []grpc.ServerOption) *grpc.Server {
	limit := 64 << 20
	if n, err := strconv.Atoi(os.Getenv("PLUGHOST_MAX_MESSAGE_BYTES")); err == nil && n > 0 {
		limit = n
	}
	return plugin.DefaultGRPCServer(append(opts, grpc.MaxRecvMsgSize(limit), grpc.MaxSendMsgSize(limit)))
}

func main() {
	// Created before Serve, which swaps os.Stderr for a pipe nobody reads in 1.0.1.
	logger := hclog.New(&hclog.LoggerOptions{Name: "go-example", Level: hclog.Debug, Output: os.Stderr, JSONFormat: true})
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{"hooks": &hooksPlugin{log: logger}},
		GRPCServer:      grpcServer,
		Logger:          logger,
	})
}
