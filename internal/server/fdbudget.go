package server

import "syscall"

// reservedDescriptors are file descriptors kept for the server's own use:
// the database and its WAL, the CA files, log files, outgoing connections
// to PostgreSQL and Lambda, the profiler.
const reservedDescriptors = 256

// budget divides the process's file descriptors between the two listeners:
// three quarters for devices, a quarter for API clients, after the reserve.
// At its share each listener stops accepting, so that a flood of connections
// waits in the kernel's backlog instead of starving the server of
// descriptors (Go raises the soft limit to the hard one at start).
type budget struct{ mqtt, api int }

func connectionBudget() budget {
	var lim syscall.Rlimit
	n := 65536
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < uint64(n) {
		n = int(lim.Cur)
	}
	free := max(n-reservedDescriptors, 128)
	return budget{mqtt: max(free*3/4, 64), api: max(free/4, 32)}
}
