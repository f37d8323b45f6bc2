package loadgen

import (
	"bufio"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func processCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcCPU reads a local process's CPU time (user + system) from /proc.
func ProcCPU(pid int) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return 0, err
		}
		// Fields after the command name, which is in parentheses and may hold spaces.
		s := string(data)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 13 {
			return 0, errors.New("loadgen: unexpected /proc stat format")
		}
		utime, err1 := strconv.ParseInt(fields[11], 10, 64)
		stime, err2 := strconv.ParseInt(fields[12], 10, 64)
		if err1 != nil || err2 != nil {
			return 0, errors.New("loadgen: unexpected /proc stat format")
		}
		const ticksPerSecond = 100 // USER_HZ on Linux
		return time.Duration(utime+stime) * time.Second / ticksPerSecond, nil
	}
}

// MetricsCPU reads process_cpu_seconds_total from a Prometheus endpoint, such
// as fleetca's /metrics.
func MetricsCPU(url string) func() (time.Duration, error) {
	return func() (time.Duration, error) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return 0, err
				}
				return time.Duration(f * float64(time.Second)), nil
			}
		}
		return 0, fmt.Errorf("loadgen: %s has no process_cpu_seconds_total", url)
	}
}

// ProcRSS reads a local process's resident memory from /proc, in bytes.
func ProcRSS(pid int) func() (int64, error) {
	return func() (int64, error) {
		data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			return 0, err
		}
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				return kb << 10, err
			}
		}
		return 0, errors.New("loadgen: /proc status has no VmRSS")
	}
}
