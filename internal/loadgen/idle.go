package loadgen

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// IdleResult is what holding a fleet of idle connections cost the server.
type IdleResult struct {
	Devices int     `json:"devices"`
	Seconds float64 `json:"seconds"`
	// ConnectSeconds is how long the fleet took to connect.
	ConnectSeconds float64 `json:"connectSeconds"`
	// RSSPerConnectionKiB is the server's resident memory per connection:
	// once connected, and at the end of the hold.
	RSSPerConnectionKiB    float64 `json:"rssPerConnectionKiB"`
	RSSPerConnectionEndKiB float64 `json:"rssPerConnectionEndKiB"`
	// IdleCPUPercent is the server's CPU during the hold, in percent of
	// one core.
	IdleCPUPercent float64 `json:"idleCpuPercent"`
}

// Idle connects opts.Devices devices (made through the API first),
// Concurrency at a time, holds the connections, which only send their
// keep-alives, for opts.Duration, and measures the server's resident
// memory (ServerRSS) and CPU (ServerCPU) for them.
func Idle(ctx context.Context, opts Options, serverRSS func() (int64, error)) (*IdleResult, error) {
	if opts.MQTTAddr == "" || opts.RootCAs == nil || opts.ServerCPU == nil || serverRSS == nil {
		return nil, errors.New("loadgen: idle needs the MQTT endpoint, its CA, and the server's CPU and memory")
	}
	if opts.Concurrency < 1 || opts.Duration <= 0 || opts.Duration > MaxDuration {
		return nil, fmt.Errorf("loadgen: idle needs a concurrency and a duration of at most %v", MaxDuration)
	}
	n := opts.Devices
	if n <= 0 {
		n = DefaultDevices
	}
	certs, err := makeDevices(ctx, opts, n)
	if err != nil {
		return nil, err
	}
	before, err := serverRSS()
	if err != nil {
		return nil, err
	}
	clients := make([]paho.Client, n)
	defer func() {
		for _, cl := range clients {
			if cl != nil {
				cl.Disconnect(0)
			}
		}
	}()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, opts.Concurrency)
	for range min(opts.Concurrency, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				cl, err := dial(ctx, opts, certs[i], "bench-idle-"+strconv.Itoa(i))
				if err != nil {
					errs <- err
					return
				}
				clients[i] = cl
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	r := &IdleResult{Devices: n, ConnectSeconds: time.Since(start).Seconds()}
	connected, err := serverRSS()
	if err != nil {
		return nil, err
	}
	cpuBefore, err := opts.ServerCPU()
	if err != nil {
		return nil, err
	}
	holdStart := time.Now()
	select {
	case <-time.After(opts.Duration):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	held := time.Since(holdStart)
	cpuAfter, err := opts.ServerCPU()
	if err != nil {
		return nil, err
	}
	end, err := serverRSS()
	if err != nil {
		return nil, err
	}
	r.Seconds = held.Seconds()
	r.RSSPerConnectionKiB = float64(connected-before) / 1024 / float64(n)
	r.RSSPerConnectionEndKiB = float64(end-before) / 1024 / float64(n)
	r.IdleCPUPercent = 100 * float64(cpuAfter-cpuBefore) / float64(held)
	return r, nil
}
