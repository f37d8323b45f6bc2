package mqttapi

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mochi-mqtt/server/v2/packets"
)

// brokerLog is the slog handler mochi logs through: its lines come out in
// fleetca's format, with two changes. A packet (mochi logs a whole one,
// payload included, when a device's packet is refused) is logged as its
// type, topic and size, never its bytes, which may be up to 128 KiB of a
// device's data. And mochi's levels are lowered one step for what is the
// device's doing or routine: a refused packet is the device's mistake, not
// a warning to the operator, and its start-up lines are fleetca's to say.
type brokerLog struct{ slog.Handler }

func newBrokerLog(h slog.Handler) slog.Handler { return brokerLog{h} }

func (b brokerLog) Enabled(ctx context.Context, level slog.Level) bool {
	return b.Handler.Enabled(ctx, lowered(level))
}

func (b brokerLog) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, lowered(r.Level), r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if pk, ok := a.Value.Any().(packets.Packet); ok {
			a = slog.String(a.Key, packetSummary(pk))
		}
		out.AddAttrs(a)
		return true
	})
	return b.Handler.Handle(ctx, out)
}

func (b brokerLog) WithAttrs(attrs []slog.Attr) slog.Handler {
	return brokerLog{b.Handler.WithAttrs(attrs)}
}

func (b brokerLog) WithGroup(name string) slog.Handler { return brokerLog{b.Handler.WithGroup(name)} }

// lowered is mochi's level as fleetca logs it: warnings are the devices'
// (info), information is routine (debug); errors stay errors.
func lowered(l slog.Level) slog.Level {
	switch {
	case l >= slog.LevelError:
		return l
	case l >= slog.LevelWarn:
		return slog.LevelInfo
	case l >= slog.LevelInfo:
		return slog.LevelDebug
	}
	return l
}

// packetSummary describes a packet without its payload.
func packetSummary(pk packets.Packet) string {
	name := packets.PacketNames[pk.FixedHeader.Type]
	if pk.TopicName != "" {
		return fmt.Sprintf("%s topic=%q qos=%d payload=%d bytes", name, pk.TopicName, pk.FixedHeader.Qos, len(pk.Payload))
	}
	return fmt.Sprintf("%s filters=%d", name, len(pk.Filters))
}
