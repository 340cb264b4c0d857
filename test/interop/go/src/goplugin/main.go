// goplugin is a plugin served with hashicorp/go-plugin (1.0.1 in Debian
// bookworm). It implements the grpctest.Test service shipped with go-plugin's
// own test suite so that plughost can be exercised against a real Go peer.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	hclog "github.com/hashicorp/go-hclog"
	plugin "github.com/hashicorp/go-plugin"
	grpctest "github.com/hashicorp/go-plugin/test/grpc"
	"google.golang.org/grpc"
)

var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "PLUGHOST_PLUGIN",
	MagicCookieValue: "plughost",
}

// testServer implements grpctest.TestServer.
type testServer struct {
	broker *plugin.GRPCBroker
	log    hclog.Logger
}

func (s *testServer) Double(_ context.Context, req *grpctest.TestRequest) (*grpctest.TestResponse, error) {
	return &grpctest.TestResponse{Output: req.Input * 2}, nil
}

func (s *testServer) PrintKV(_ context.Context, req *grpctest.PrintKVRequest) (*grpctest.PrintKVResponse, error) {
	var v interface{}
	switch x := req.Value.(type) {
	case *grpctest.PrintKVRequest_ValueString:
		v = x.ValueString
	case *grpctest.PrintKVRequest_ValueInt:
		v = x.ValueInt
	}
	s.log.Info("kv", req.Key, v)
	return &grpctest.PrintKVResponse{}, nil
}

func (s *testServer) Bidirectional(ctx context.Context, req *grpctest.BidirectionalRequest) (*grpctest.BidirectionalResponse, error) {
	conn, err := s.broker.Dial(req.Id)
	if err != nil {
		return nil, fmt.Errorf("broker dial %d: %v", req.Id, err)
	}
	defer conn.Close()

	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := grpctest.NewPingPongClient(conn).Ping(cctx, &grpctest.PingRequest{})
	if err != nil {
		return nil, fmt.Errorf("ping via broker id %d: %v", req.Id, err)
	}
	if resp.Msg != "pong" {
		return nil, fmt.Errorf("ping via broker id %d: expected msg %q, got %q", req.Id, "pong", resp.Msg)
	}
	return &grpctest.BidirectionalResponse{Id: req.Id}, nil
}

func (s *testServer) Stream(stream grpctest.Test_StreamServer) error {
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(&grpctest.TestResponse{Output: req.Input * 2}); err != nil {
			return err
		}
	}
}

// testPlugin is the plugin.GRPCPlugin registered under the name "test".
type testPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	log hclog.Logger
}

func (p *testPlugin) GRPCServer(broker *plugin.GRPCBroker, s *grpc.Server) error {
	grpctest.RegisterTestServer(s, &testServer{broker: broker, log: p.log})
	return nil
}

func (p *testPlugin) GRPCClient(context.Context, *plugin.GRPCBroker, *grpc.ClientConn) (interface{}, error) {
	return nil, fmt.Errorf("goplugin: client side not implemented")
}

func main() {
	// go-plugin forwards the plugin's stderr to the host; JSON lines are
	// parsed by hosts as structured hclog entries.
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       "goplugin",
		Level:      hclog.Trace,
		Output:     os.Stderr,
		JSONFormat: true,
	})

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: handshake,
		Plugins:         plugin.PluginSet{"test": &testPlugin{log: logger}},
		GRPCServer:      plugin.DefaultGRPCServer,
		Logger:          logger,
	})
}
