package issuance

import (
	"crypto/rsa"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

// TestKeyPool checks that pooled keys are handed out once each, that an
// empty pool generates on demand, and that Close stops the filling.
func TestKeyPool(t *testing.T) {
	var generated atomic.Int64
	gen := func() (*rsa.PrivateKey, error) {
		generated.Add(1)
		return GenerateDeviceKey()
	}
	const size = 3
	p := NewKeyPool(size, gen)
	deadline := time.Now().Add(30 * time.Second)
	for p.Stats().Ready < size {
		if time.Now().After(deadline) {
			t.Fatalf("the pool holds %d keys after 30 s, want %d", len(p.keys), size)
		}
		time.Sleep(10 * time.Millisecond)
	}
	seen := map[string]bool{}
	for i := 0; i < size+2; i++ {
		key, err := p.Take()
		if err != nil {
			t.Fatal(err)
		}
		n := key.N.String()
		if seen[n] {
			t.Fatalf("key %d was handed out before", i)
		}
		seen[n] = true
		if err := key.Validate(); err != nil || key.N.BitLen() != 2048 {
			t.Fatalf("key %d: %d bits, %v", i, key.N.BitLen(), err)
		}
	}
	st := p.Stats()
	if st.Taken < size || st.Taken+st.Missed != size+2 {
		t.Fatalf("%+v; want at least %d taken of %d", st, size, size+2)
	}
	p.Close()
	before := generated.Load()
	time.Sleep(200 * time.Millisecond)
	if after := generated.Load(); after != before {
		t.Fatalf("%d keys generated after Close", after-before)
	}
	if len(p.keys) != 0 {
		t.Fatalf("a closed pool still holds %d keys", len(p.keys))
	}
}

// TestKeyPoolFailingSource checks that a failing entropy source reaches the
// caller and does not spin the filler.
func TestKeyPoolFailingSource(t *testing.T) {
	var calls atomic.Int64
	broken := errors.New("no entropy")
	p := NewKeyPool(2, func() (*rsa.PrivateKey, error) { calls.Add(1); return nil, broken })
	defer p.Close()
	if _, err := p.Take(); !errors.Is(err, broken) {
		t.Fatalf("Take: %v, want the source's error", err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := calls.Load(); n > 3 {
		t.Fatalf("the filler tried %d times in 300 ms: it spins", n)
	}
}
