package mqttapi

import (
	"net/http"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/fleetca/fleetca/internal/apierr"
)

// FuzzDecodeRequest feeds arbitrary fleet-provisioning payloads to the json
// and cbor decoders: a payload decodes or is a 400 InvalidRequest rejection.
func FuzzDecodeRequest(f *testing.F) {
	good, _ := cbor.Marshal(map[string]string{"certificateSigningRequest": "-----BEGIN CERTIFICATE REQUEST-----"})
	f.Add(good, true)
	f.Add([]byte(`{"certificateSigningRequest":"x"}`), false)
	f.Add([]byte(`{}`), false)
	f.Add([]byte{0xa0}, true)
	f.Add([]byte{0xff, 0xff}, true)
	f.Add([]byte(`{"certificateSigningRequest":42}`), false)
	f.Fuzz(func(t *testing.T, payload []byte, useCBOR bool) {
		format := "json"
		if useCBOR {
			format = "cbor"
		}
		var req createCertificateFromCsrRequest
		err := decode(format, payload, &req)
		if err == nil {
			return
		}
		if !apierr.Is(err, apierr.InvalidRequest) {
			t.Fatalf("decode error %v is not InvalidRequest", err)
		}
		if r := rejection(err); r.StatusCode != http.StatusBadRequest || r.ErrorCode != "InvalidRequest" {
			t.Fatalf("rejection %+v", r)
		}
	})
}
