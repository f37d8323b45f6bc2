package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/fleetca/fleetca/internal/loadgen"
)

// benchPeers measures fleetca and each peer in turn (for csr, fleetca's
// signing API and cfssl's; for connect and idle, the device endpoints),
// rounds times (the bare TLS server first in each), with the same devices (made through fleetca's API once)
// and the same client, and prints a row per measurement: for connect,
// each server's CPU per connect beside the bare TLS server's of the same
// round; for idle, each server's memory per connection and CPU at rest.
func benchPeers(ctx context.Context, opts loadgen.Options, endpoint string, pid int, names []string, rounds int, stdout, stderr io.Writer) int {
	fail := func(err error) int {
		fmt.Fprintf(stderr, "fleetca bench: %v\n", err)
		return 1
	}
	for i := range names {
		names[i] = strings.TrimSpace(names[i])
	}
	if err := loadgen.CheckPeers(opts.Operation, names); err != nil {
		fmt.Fprintf(stderr, "fleetca bench: %v\n", err)
		return 2
	}
	chain, err := fetch(strings.TrimSuffix(endpoint, "/") + "/ca-chain.pem")
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "fleetca-bench-peers-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	roots, err := loadgen.WritePeerFiles(dir, chain)
	if err != nil {
		return fail(err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	type target struct {
		name string
		pid  int
		opts loadgen.Options
	}
	targets := []target{{name: "fleetca", pid: pid, opts: opts}}
	for _, name := range names {
		p, err := loadgen.StartPeer(name, dir, roots, []string{self, "bench", "--peer-dir", dir, "--serve-bare-tls"})
		if err != nil {
			return fail(err)
		}
		defer p.Stop()
		o := opts
		o.MQTTAddr, o.RootCAs, o.MQTTServerName = p.Addr, p.RootCAs, p.ServerName
		if opts.Operation == "csr" {
			o.Operation, o.SignURL = "cfssl-sign", p.SignURL
		}
		t := target{name: p.Name, pid: p.PID, opts: o}
		if p.Name == "bare-tls" {
			// First in each round, so that the others' rows compare
			// with this round's floor.
			targets = append([]target{t}, targets...)
		} else {
			targets = append(targets, t)
		}
	}
	var certs []tls.Certificate
	if opts.Operation != "csr" {
		fmt.Fprintf(stderr, "fleetca bench: making %d devices through fleetca's API\n", cmp.Or(opts.Devices, loadgen.DefaultDevices))
		if certs, err = loadgen.MakeDevices(ctx, opts); err != nil {
			return fail(err)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	switch opts.Operation {
	case "csr":
		fmt.Fprintln(tw, "round\tserver\trequests/s\tp50 ms\tp99 ms\traw ms\tserver CPU ms\tx raw\terrors\t")
	case "connect":
		fmt.Fprintln(tw, "round\tserver\tconnects/s\tp50 ms\tp99 ms\tserver CPU ms\tx raw\tx bare TLS\terrors\t")
	default:
		fmt.Fprintln(tw, "round\tserver\tconnected in s\tKiB/conn connected\tKiB/conn at end\tidle CPU % of a core\t")
	}
	var rows []any
	failures := 0
	for round := 1; round <= rounds; round++ {
		bare := 0.0
		for _, t := range targets {
			o := t.opts
			o.DeviceCerts, o.ServerCPU = certs, loadgen.ProcCPU(t.pid)
			if opts.Operation == "idle" {
				r, err := loadgen.Idle(ctx, o, loadgen.ProcRSS(t.pid))
				if err != nil {
					return fail(fmt.Errorf("%s: %w", t.name, err))
				}
				fmt.Fprintf(tw, "%d\t%s\t%.1f\t%.1f\t%.1f\t%.2f\t\n", round, t.name, r.ConnectSeconds, r.RSSPerConnectionKiB, r.RSSPerConnectionEndKiB, r.IdleCPUPercent)
				rows = append(rows, map[string]any{"round": round, "server": t.name, "result": r})
				continue
			}
			o.Progress = nil
			r, err := loadgen.Run(ctx, o)
			if err != nil {
				return fail(fmt.Errorf("%s: %w", t.name, err))
			}
			failures += r.Errors
			row := map[string]any{"round": round, "server": t.name, "result": r}
			if opts.Operation == "csr" {
				rows = append(rows, row)
				fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.2f\t%.2f\t%.3f\t%.3f\t%.2f\t%d\t\n", round, t.name, r.PerSecond, r.P50ms, r.P99ms, r.RawCostMs, r.ServerCPUMs, r.CPURatio, r.Errors)
				continue
			}
			if t.name == "bare-tls" {
				bare = r.ServerCPUMs
			}
			vsBare := ""
			if bare > 0 {
				row["xBareTLS"] = r.ServerCPUMs / bare
				vsBare = fmt.Sprintf("%.2f", r.ServerCPUMs/bare)
			}
			rows = append(rows, row)
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.1f\t%.1f\t%.3f\t%.2f\t%s\t%d\t\n", round, t.name, r.PerSecond, r.P50ms, r.P99ms, r.ServerCPUMs, r.CPURatio, vsBare, r.Errors)
		}
	}
	tw.Flush()
	line, _ := json.Marshal(rows)
	fmt.Fprintln(stdout, string(line))
	if failures > 0 {
		return 1 // as a run of fleetca alone with errors
	}
	return 0
}

// fetch reads a small document over HTTP.
func fetch(url string) ([]byte, error) {
	resp, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading %s: %s %v", url, resp.Status, err)
	}
	return body, nil
}
