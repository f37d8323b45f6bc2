package keys

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseTokenURI(t *testing.T) {
	const mod = "?module-path=/usr/lib/softhsm/libsofthsm2.so"
	for _, tc := range []struct {
		uri  string
		want TokenURI
		err  string
	}{
		{uri: "pkcs11:token=fleetca" + mod, want: TokenURI{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "fleetca", Object: "fleetca"}},
		{uri: "pkcs11:token=my%20token;object=ca" + mod + "&pin-source=file:/etc/pin",
			want: TokenURI{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", TokenLabel: "my token", Object: "ca", PINSource: "/etc/pin"}},
		{uri: "pkcs11:serial=0123" + mod, want: TokenURI{ModulePath: "/usr/lib/softhsm/libsofthsm2.so", TokenSerial: "0123", Object: "fleetca"}},
		{uri: "file:token=x" + mod, err: `starts with "pkcs11:"`},
		{uri: "pkcs11:token=x", err: "module-path"},
		{uri: "pkcs11:object=x" + mod, err: "exactly one way"},
		{uri: "pkcs11:token=x;serial=y" + mod, err: "exactly one way"},
		{uri: "pkcs11:token=x;token=y" + mod, err: "twice"},
		{uri: "pkcs11:token=x;id=%01" + mod, err: "not one fleetca uses"},
		{uri: "pkcs11:token=x" + mod + "&pin-value=1234", err: "must not carry the PIN"},
		{uri: "pkcs11:token=x" + mod + "&pin-source=/etc/pin", err: "file:<path>"},
		{uri: "pkcs11:token=x" + mod + "&module-name=softhsm2", err: "not one fleetca uses"},
		{uri: "pkcs11:token=%zz" + mod, err: "percent-encoded"},
		{uri: "pkcs11:slot-id=-1" + mod, err: "slot number"},
		{uri: "pkcs11:token" + mod, err: "name=value"},
		{uri: "pkcs11:token=" + strings.Repeat("a", 5000) + mod, err: "at most"},
	} {
		got, err := ParseTokenURI(tc.uri)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseTokenURI(%.60q) = %v, want an error with %q", tc.uri, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseTokenURI(%q): %v", tc.uri, err)
			continue
		}
		if got.ModulePath != tc.want.ModulePath || got.TokenLabel != tc.want.TokenLabel || got.TokenSerial != tc.want.TokenSerial ||
			got.Object != tc.want.Object || got.PINSource != tc.want.PINSource || got.SlotID != nil {
			t.Errorf("ParseTokenURI(%q) = %+v, want %+v", tc.uri, got, tc.want)
		}
	}
	got, err := ParseTokenURI("pkcs11:slot-id=3" + mod)
	if err != nil || got.SlotID == nil || *got.SlotID != 3 {
		t.Errorf("slot-id=3: %+v, %v", got, err)
	}
}

func TestPIN(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pin")
	os.WriteFile(file, []byte("12 34\n"), 0o600)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	if pin, err := (TokenURI{PINSource: file}).PIN("env"); err != nil || pin != "12 34" {
		t.Errorf("from a file: %q, %v", pin, err)
	}
	if pin, err := (TokenURI{}).PIN("env"); err != nil || pin != "env" {
		t.Errorf("from the environment: %q, %v", pin, err)
	}
	if _, err := (TokenURI{}).PIN(""); err == nil || !strings.Contains(err.Error(), "FLEETCA_CA_KEY_PIN") {
		t.Errorf("no PIN: %v", err)
	}
	if _, err := (TokenURI{PINSource: empty}).PIN("env"); err == nil {
		t.Error("an empty PIN file was taken")
	}
	if _, err := (TokenURI{PINSource: filepath.Join(dir, "none")}).PIN("env"); err == nil {
		t.Error("a missing PIN file was taken")
	}
}

func FuzzParseTokenURI(f *testing.F) {
	f.Add("pkcs11:token=fleetca;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pin")
	f.Add("pkcs11:slot-id=1?module-path=%2Fx")
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseTokenURI(s)
		if err != nil {
			return
		}
		if u.ModulePath == "" || u.Object == "" {
			t.Fatalf("accepted %q without a module or object: %+v", s, u)
		}
	})
}
