package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// cfsslSign is the signing workload against cfssl's API, the peer beside
// CreateCertificateFromCsr: each client posts its CSR to
// /api/v1/cfssl/sign over a kept-alive connection, as the AWS SDK client
// does to fleetca. cfssl neither authenticates the request nor stores the
// certificate: it is the floor of a signing service over HTTP.
func cfsslSign(url string, csrs []string) func(context.Context, int) error {
	bodies := make([][]byte, len(csrs))
	for i, csr := range csrs {
		bodies[i], _ = json.Marshal(map[string]string{"certificate_request": csr})
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: len(csrs)}}
	return func(ctx context.Context, w int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(bodies[w]))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		defer resp.Body.Close()
		var answer struct {
			Success bool `json:"success"`
			Result  struct {
				Certificate string `json:"certificate"`
			} `json:"result"`
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return fmt.Errorf("sign: %w", err)
		}
		if err := json.Unmarshal(body, &answer); err != nil || !answer.Success || answer.Result.Certificate == "" {
			return fmt.Errorf("sign: %s: %.200s", resp.Status, body)
		}
		return nil
	}
}
