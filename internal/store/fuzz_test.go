package store

import (
	"errors"
	"testing"
	"time"
)

// FuzzParseMarker: any string either fails with ErrBadCursor or is a cursor
// that encodes back to a marker meaning the same position.
func FuzzParseMarker(f *testing.F) {
	f.Add(Cursor{Time: time.Unix(1700000000, 123000), ID: "abc"}.Marker())
	f.Add("")
	f.Add("AQAAAAAAAAAAYQ==")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseMarker(s)
		if err != nil {
			if !errors.Is(err, ErrBadCursor) {
				t.Fatalf("ParseMarker(%q) = %v", s, err)
			}
			return
		}
		again, err := ParseMarker(c.Marker())
		if err != nil || !again.Time.Equal(c.Time) || again.ID != c.ID {
			t.Fatalf("%q: cursor %+v does not round-trip (%+v, %v)", s, c, again, err)
		}
	})
}
