package mqttapi

import (
	"strings"
	"testing"
)

func TestTopicRulesArePure(t *testing.T) {
	for _, tc := range []struct {
		filter string
		ok     bool
	}{
		{"a/b/c/d/e/f/g/h", true},
		{"a/b/c/d/e/f/g/h/i", false},
		{strings.Repeat("x", 256), true},
		{strings.Repeat("x", 257), false},
		{"$share/group/a/#", true},
		{"$share//#", false},
		{"$share/g+/x", false},
		{"$share/g#/x", false},
		{"$share/group", false},
		{"$share/group/" + strings.Repeat("x", 257), false},
	} {
		if got := filterProblem(tc.filter) == ""; got != tc.ok {
			t.Errorf("filterProblem(%.40q) ok = %v, want %v", tc.filter, got, tc.ok)
		}
	}
	for _, tc := range []struct {
		asked, want uint16
	}{{0, 1200}, {1, 30}, {29, 30}, {30, 30}, {60, 60}, {1200, 1200}, {1201, 1200}, {65535, 1200}} {
		if got := clampKeepalive(tc.asked); got != tc.want {
			t.Errorf("clampKeepalive(%d) = %d, want %d", tc.asked, got, tc.want)
		}
	}
	for _, tc := range []struct {
		topic, ns, back string
	}{
		{"telemetry/t", "123456789012/us-east-1/telemetry/t", "telemetry/t"},
		{"$aws/events/x", "$123456789012/us-east-1/$aws/events/x", "$aws/events/x"},
	} {
		prefix := "123456789012/us-east-1/"
		if got := inNamespace(prefix, tc.topic); got != tc.ns {
			t.Errorf("inNamespace(%q) = %q, want %q", tc.topic, got, tc.ns)
		}
		if got := outOfNamespace(prefix, tc.ns); got != tc.back {
			t.Errorf("outOfNamespace(%q) = %q, want %q", tc.ns, got, tc.back)
		}
	}
	if n := namespaceFilter("1/r/", "$share/g/#"); n != "$share/g/1/r/#" {
		t.Errorf("shared filter namespaced as %q", n)
	}
	if maxDeviceMemory > 32<<20 {
		t.Errorf("one device may pin %d MiB", maxDeviceMemory>>20)
	}
}
