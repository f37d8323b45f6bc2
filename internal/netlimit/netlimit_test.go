package netlimit

import "testing"

func TestPerSource(t *testing.T) {
	p := NewPerSource(2)
	for i, want := range []bool{true, true, false} {
		if got := p.Take("10.0.0.1"); got != want {
			t.Fatalf("take %d: %v, want %v", i, got, want)
		}
	}
	if !p.Take("10.0.0.2") {
		t.Fatal("another source was refused")
	}
	p.Release("10.0.0.1")
	if !p.Take("10.0.0.1") {
		t.Fatal("a released place was not given back")
	}
	p.Release("10.0.0.1")
	p.Release("10.0.0.1")
	p.Release("10.0.0.2")
	if len(p.n) != 0 {
		t.Fatalf("sources left behind: %v", p.n)
	}
}
