package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	cases := []struct {
		name       string
		args       []string
		wantCode   int
		wantOutput string
	}{
		{"version", []string{"version"}, 0, "fleetca "},
		{"help", []string{"help"}, 0, "fleetca serve"},
		{"no command", nil, 2, "Usage"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"bad flag", []string{"serve", "--no-such-flag"}, 2, "flag provided but not defined"},
		{"bad account", []string{"serve", "--account-id", "12"}, 2, "not 12 digits"},
		{"bad algorithm", []string{"serve", "--ca-key-algorithm", "dsa"}, 2, "CA key algorithm"},
		{"bad address", []string{"serve", "--api-addr", "nowhere"}, 2, "api address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(tc.args, &out, &errOut)
			if code != tc.wantCode {
				t.Errorf("exit code %d, want %d", code, tc.wantCode)
			}
			if all := out.String() + errOut.String(); !strings.Contains(all, tc.wantOutput) {
				t.Errorf("output %q does not contain %q", all, tc.wantOutput)
			}
		})
	}
}
