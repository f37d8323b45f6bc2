package store

import (
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Cursor is a keyset position: the sort key of the last row of a page.
type Cursor struct {
	Time time.Time
	ID   string
}

const cursorVersion = 1

// Marker encodes the cursor as the opaque base64 token the API hands out.
func (c Cursor) Marker() string {
	b := make([]byte, 0, 9+len(c.ID))
	b = append(b, cursorVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Time.UnixMicro()))
	b = append(b, c.ID...)
	return base64.StdEncoding.EncodeToString(b)
}

// ParseMarker decodes a marker made by Cursor.Marker; ErrBadCursor otherwise.
func ParseMarker(s string) (Cursor, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) < 10 || len(b) > 9+256 || b[0] != cursorVersion {
		return Cursor{}, ErrBadCursor
	}
	id := string(b[9:])
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return Cursor{}, ErrBadCursor
		}
	}
	return Cursor{Time: time.UnixMicro(int64(binary.BigEndian.Uint64(b[1:9]))).UTC(), ID: id}, nil
}
