package loadgen

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
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

// Idle connects opts.Devices devices (made through the API first, unless
// opts.DeviceCerts are given), Concurrency at a time, holds the
// connections, which only send their keep-alives (every opts.Keepalive),
// for opts.Duration, and measures the server's resident
// memory (ServerRSS) and CPU (ServerCPU) for them.
func Idle(ctx context.Context, opts Options, serverRSS func() (int64, error)) (*IdleResult, error) {
	if opts.MQTTAddr == "" || opts.RootCAs == nil || opts.ServerCPU == nil || serverRSS == nil {
		return nil, errors.New("loadgen: idle needs the MQTT endpoint, its CA, and the server's CPU and memory")
	}
	if opts.Concurrency < 1 || opts.Duration <= 0 || opts.Duration > MaxDuration {
		return nil, fmt.Errorf("loadgen: idle needs a concurrency and a duration of at most %v", MaxDuration)
	}
	certs, err := devices(ctx, opts)
	if err != nil {
		return nil, err
	}
	n, configs := len(certs), deviceConfigs(opts, certs)
	keepalive := cmp.Or(opts.Keepalive, 30*time.Second)
	before, err := serverRSS()
	if err != nil {
		return nil, err
	}
	holdCtx, release := context.WithCancel(ctx)
	var holding sync.WaitGroup
	var lost atomic.Int64
	defer func() {
		release()
		holding.Wait()
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
				c, err := connectMQTT(ctx, opts.MQTTAddr, configs[i], "bench-idle-"+strconv.Itoa(i), keepalive)
				if err != nil {
					errs <- err
					return
				}
				holding.Add(1)
				go func() {
					defer holding.Done()
					if c.keepAlive(holdCtx, keepalive) {
						lost.Add(1)
					}
				}()
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
	if dropped := lost.Load(); dropped > 0 {
		// The figures are per connection held.
		return nil, fmt.Errorf("loadgen: the server closed %d of the %d connections during the hold", dropped, n)
	}
	r.Seconds = held.Seconds()
	r.RSSPerConnectionKiB = float64(connected-before) / 1024 / float64(n)
	r.RSSPerConnectionEndKiB = float64(end-before) / 1024 / float64(n)
	r.IdleCPUPercent = 100 * float64(cpuAfter-cpuBefore) / float64(held)
	return r, nil
}
