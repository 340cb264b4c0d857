// gohost is a plugin host built with hashicorp/go-plugin (1.0.1 in Debian
// bookworm). It launches a plugin that serves grpctest.Test under the plugin
// name "test" and either checks a few calls (-mode call) or measures latency,
// throughput and spawn time (-mode bench). It prints exactly one JSON line on
// stdout; all logging goes to stderr (as hclog JSON lines with -log-json, so
// that tests can read how go-plugin relayed the plugin's own log records).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
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

// testClient is what Dispense("test") returns: the generated client plus the
// broker, which is needed to serve PingPong back to the plugin.
type testClient struct {
	grpctest.TestClient
	broker *plugin.GRPCBroker
}

type pingPong struct{}

func (pingPong) Ping(context.Context, *grpctest.PingRequest) (*grpctest.PongResponse, error) {
	return &grpctest.PongResponse{Msg: "pong"}, nil
}

// ServePingPong starts a PingPong server on a fresh broker id and returns it.
func (c *testClient) ServePingPong() uint32 {
	id := c.broker.NextId()
	go c.broker.AcceptAndServe(id, func(opts []grpc.ServerOption) *grpc.Server {
		s := grpc.NewServer(opts...)
		grpctest.RegisterPingPongServer(s, pingPong{})
		return s
	})
	return id
}

type testPlugin struct {
	plugin.NetRPCUnsupportedPlugin
}

func (testPlugin) GRPCServer(*plugin.GRPCBroker, *grpc.Server) error {
	return fmt.Errorf("gohost: server side not implemented")
}

func (testPlugin) GRPCClient(_ context.Context, broker *plugin.GRPCBroker, conn *grpc.ClientConn) (interface{}, error) {
	return &testClient{TestClient: grpctest.NewTestClient(conn), broker: broker}, nil
}

type options struct {
	plugin        string
	pluginArgs    []string
	autoMTLS      bool
	bidirectional bool
	logger        hclog.Logger
}

func newClient(o *options) *plugin.Client {
	return plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{"test": testPlugin{}},
		Cmd:              exec.Command(o.plugin, o.pluginArgs...),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		AutoMTLS:         o.autoMTLS,
		Logger:           o.logger,
		StartTimeout:     30 * time.Second,
	})
}

func dispense(c *plugin.Client) (*testClient, error) {
	rpc, err := c.Client()
	if err != nil {
		return nil, fmt.Errorf("start: %v", err)
	}
	raw, err := rpc.Dispense("test")
	if err != nil {
		return nil, fmt.Errorf("dispense: %v", err)
	}
	tc, ok := raw.(*testClient)
	if !ok {
		return nil, fmt.Errorf("dispense: unexpected type %T", raw)
	}
	return tc, nil
}

func double(tc *testClient, in int32) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := tc.Double(ctx, &grpctest.TestRequest{Input: in})
	if err != nil {
		return err
	}
	if resp.Output != in*2 {
		return fmt.Errorf("Double(%d) = %d, want %d", in, resp.Output, in*2)
	}
	return nil
}

func runCall(o *options) (map[string]interface{}, error) {
	c := newClient(o)
	defer c.Kill()
	tc, err := dispense(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()

	d, err := tc.Double(ctx, &grpctest.TestRequest{Input: 21})
	if err != nil {
		return nil, fmt.Errorf("Double: %v", err)
	}
	if d.Output != 42 {
		return nil, fmt.Errorf("Double(21) = %d, want 42", d.Output)
	}

	bidi := "skipped"
	if o.bidirectional {
		id := tc.ServePingPong()
		b, err := tc.Bidirectional(ctx, &grpctest.BidirectionalRequest{Id: id})
		if err != nil {
			return nil, fmt.Errorf("Bidirectional: %v", err)
		}
		if b.Id != id {
			return nil, fmt.Errorf("Bidirectional: got id %d, want %d", b.Id, id)
		}
		bidi = "ok"
	}

	if _, err := tc.PrintKV(ctx, &grpctest.PrintKVRequest{
		Key:   "greeting",
		Value: &grpctest.PrintKVRequest_ValueString{ValueString: "hello from gohost"},
	}); err != nil {
		return nil, fmt.Errorf("PrintKV: %v", err)
	}

	protocol := string(c.Protocol())
	c.Kill()
	return map[string]interface{}{
		"double":        d.Output,
		"bidirectional": bidi,
		"protocol":      protocol,
		"killed":        true,
		"exited":        c.Exited(),
	}, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted)-1) + 0.5)
	return sorted[i]
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }

func runBench(o *options, n, concurrency, total, spawns int) (map[string]interface{}, error) {
	c := newClient(o)
	defer c.Kill()
	tc, err := dispense(c)
	if err != nil {
		return nil, err
	}

	// Warm-up.
	warm := n / 10
	if warm < 200 {
		warm = 200
	}
	for i := 0; i < warm; i++ {
		if err := double(tc, int32(i)); err != nil {
			return nil, fmt.Errorf("warm-up: %v", err)
		}
	}

	// Sequential latency.
	lat := make([]time.Duration, n)
	for i := 0; i < n; i++ {
		t0 := time.Now()
		if err := double(tc, int32(i)); err != nil {
			return nil, fmt.Errorf("sequential: %v", err)
		}
		lat[i] = time.Since(t0)
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })

	// Concurrent throughput.
	var next int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := atomic.AddInt64(&next, 1)
				if i > int64(total) {
					return
				}
				if err := double(tc, int32(i)); err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	if firstErr != nil {
		return nil, fmt.Errorf("concurrent: %v", firstErr)
	}
	c.Kill()

	// Spawn to first call.
	sp := make([]time.Duration, 0, spawns)
	for i := 0; i < spawns; i++ {
		t0 := time.Now()
		sc := newClient(o)
		stc, err := dispense(sc)
		if err == nil {
			err = double(stc, 1)
		}
		d := time.Since(t0)
		sc.Kill()
		if err != nil {
			return nil, fmt.Errorf("spawn %d: %v", i, err)
		}
		sp = append(sp, d)
	}
	sort.Slice(sp, func(a, b int) bool { return sp[a] < sp[b] })

	us := func(d time.Duration) float64 { return round1(float64(d) / float64(time.Microsecond)) }
	ms := func(d time.Duration) float64 { return round1(float64(d) / float64(time.Millisecond)) }
	res := map[string]interface{}{
		"seq_p50_us":       us(percentile(lat, 0.50)),
		"seq_p99_us":       us(percentile(lat, 0.99)),
		"throughput_per_s": round1(float64(total) / elapsed.Seconds()),
		"spawn_p50_ms":     nil,
		"spawn_min_ms":     nil,
	}
	if len(sp) > 0 {
		res["spawn_p50_ms"] = ms(percentile(sp, 0.50))
		res["spawn_min_ms"] = ms(sp[0])
	}
	return res, nil
}

// runChain measures what a filter chain costs in go-plugin itself: one
// Double, ten Doubles in a row to the same plugin, and one Double to each of
// `plugins` plugin processes in turn (a chain step per plugin). Each figure is
// the time of the whole sequence, so chain ÷ one is the ratio plughost's
// 10-plugin filter chain is held to. Blocks of n run in the order given by
// -order, so a caller alternating rounds can vary which block goes first.
func runChain(o *options, plugins, n int, order string) (map[string]interface{}, error) {
	clients := make([]*testClient, plugins)
	for i := range clients {
		c := newClient(o)
		defer c.Kill()
		tc, err := dispense(c)
		if err != nil {
			return nil, fmt.Errorf("plugin %d: %v", i, err)
		}
		clients[i] = tc
	}
	warm := n / 10
	if warm < 200 {
		warm = 200
	}
	for _, tc := range clients {
		for i := 0; i < warm; i++ {
			if err := double(tc, int32(i)); err != nil {
				return nil, fmt.Errorf("warm-up: %v", err)
			}
		}
	}
	blocks := map[string]func(i int) error{
		"one": func(i int) error { return double(clients[0], int32(i)) },
		"same": func(i int) error {
			for k := 0; k < plugins; k++ {
				if err := double(clients[0], int32(i)); err != nil {
					return err
				}
			}
			return nil
		},
		"chain": func(i int) error {
			for _, tc := range clients {
				if err := double(tc, int32(i)); err != nil {
					return err
				}
			}
			return nil
		},
	}
	res := map[string]interface{}{"plugins": plugins}
	for _, name := range strings.Split(order, ",") {
		block, ok := blocks[name]
		if !ok {
			return nil, fmt.Errorf("chain: unknown block %q in -order (want one, same, chain)", name)
		}
		lat := make([]time.Duration, n)
		for i := 0; i < n; i++ {
			t0 := time.Now()
			if err := block(i); err != nil {
				return nil, fmt.Errorf("%s: %v", name, err)
			}
			lat[i] = time.Since(t0)
		}
		sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
		res[name+"_p50_us"] = round1(float64(percentile(lat, 0.50)) / float64(time.Microsecond))
		res[name+"_p99_us"] = round1(float64(percentile(lat, 0.99)) / float64(time.Microsecond))
	}
	return res, nil
}

func emit(v interface{}) {
	b, _ := json.Marshal(v)
	os.Stdout.Write(append(b, '\n'))
}

func fail(err error) {
	emit(map[string]string{"error": err.Error()})
	os.Exit(1)
}

func main() {
	pluginPath := flag.String("plugin", "", "path of the plugin executable (required)")
	autoMTLS := flag.Bool("automtls", false, "enable go-plugin AutoMTLS")
	mode := flag.String("mode", "call", "call|bench|chain")
	n := flag.Int("n", 5000, "bench: sequential call count")
	concurrency := flag.Int("concurrency", 64, "bench: calls in flight")
	total := flag.Int("total", 20000, "bench: total concurrent calls")
	spawns := flag.Int("spawns", 10, "bench: number of spawn-to-first-call launches")
	bidi := flag.Bool("bidirectional", true, "call: exercise Bidirectional (broker dial-back); -bidirectional=false skips it")
	plugins := flag.Int("plugins", 10, "chain: number of plugin processes in the chain")
	order := flag.String("order", "one,same,chain", "chain: the blocks to measure, in this order")
	logJSON := flag.Bool("log-json", false, "write the host's hclog output (plugin log records included) to stderr as JSON lines")
	flag.Parse()

	if *pluginPath == "" {
		fail(fmt.Errorf("-plugin is required"))
	}
	level := hclog.Info
	if *mode == "bench" || *mode == "chain" {
		level = hclog.Warn
	}
	o := &options{
		plugin:        *pluginPath,
		pluginArgs:    flag.Args(),
		autoMTLS:      *autoMTLS,
		bidirectional: *bidi,
		logger: hclog.New(&hclog.LoggerOptions{
			Name:       "gohost",
			Level:      level,
			Output:     os.Stderr,
			JSONFormat: *logJSON,
		}),
	}

	var res map[string]interface{}
	var err error
	switch *mode {
	case "call":
		res, err = runCall(o)
	case "bench":
		if *n < 1 || *concurrency < 1 || *total < 1 || *spawns < 0 {
			err = fmt.Errorf("bench: -n, -concurrency and -total must be >= 1, -spawns >= 0")
		} else {
			res, err = runBench(o, *n, *concurrency, *total, *spawns)
		}
	case "chain":
		if *n < 1 || *plugins < 1 {
			err = fmt.Errorf("chain: -n and -plugins must be >= 1")
		} else {
			res, err = runChain(o, *plugins, *n, *order)
		}
	default:
		err = fmt.Errorf("unknown -mode %q (want call, bench or chain)", *mode)
	}
	if err != nil {
		fail(err)
	}
	emit(res)
}
