package server_test

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// nonroot is the user of the distroless image the Dockerfile builds on.
const nonroot = 65532

// TestRunsAsTheImageRunsIt runs fleetca as the Dockerfile's image does,
// which this machine cannot build: as user 65532, configured only by the
// image's FLEETCA_* variables, from a working directory it cannot write,
// its data on a directory of its own; its health check passes and SIGTERM
// stops it cleanly.
func TestRunsAsTheImageRunsIt(t *testing.T) {
	t.Parallel()
	if os.Getuid() != 0 {
		t.Skip("SKIPPED: running as another user needs root; the image's user was not tested")
	}
	base, err := os.MkdirTemp("", "fleetca-image-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(base, "fleetca")
	copyFile(t, buildFleetca(t), bin, 0o755)
	readOnly := filepath.Join(base, "root")
	data := filepath.Join(base, "data")
	for _, d := range []string{readOnly, data} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(readOnly, 0o555); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, nonroot, nonroot); err != nil {
		t.Fatal(err)
	}
	apiAddr := freePort(t)
	env := []string{"PATH=/nonexistent", "FLEETCA_DATA_DIR=" + data, "FLEETCA_API_ADDR=" + apiAddr, "FLEETCA_MQTT_ADDR=" + freePort(t)}
	command := func(args ...string) *exec.Cmd {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = readOnly, env
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nonroot, Gid: nonroot}}
		return cmd
	}
	serve := command("serve")
	logs, err := os.Create(filepath.Join(base, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	serve.Stdout, serve.Stderr = logs, logs
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- serve.Wait() }()
	healthy := false
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !healthy; time.Sleep(50 * time.Millisecond) {
		healthy = command("healthcheck").Run() == nil
	}
	if !healthy {
		serve.Process.Kill()
		<-done
		out, _ := os.ReadFile(logs.Name())
		t.Fatalf("the health check never passed:\n%s", out)
	}
	for _, f := range []string{"fleetca.db", "ca/root.pem", "ca/issuing.key", "credentials", "lock"} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != nonroot {
			t.Errorf("%s is owned by %d, want the image's user", f, st.Uid)
		}
	}
	if entries, _ := os.ReadDir(readOnly); len(entries) != 0 {
		t.Errorf("fleetca wrote into its working directory: %v", entries)
	}
	serve.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		serve.Process.Kill()
		t.Fatal("fleetca did not stop after SIGTERM")
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
