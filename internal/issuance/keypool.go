package issuance

import (
	"crypto/rsa"
	"sync"
	"sync/atomic"
	"time"
)

// KeyPool hands out device keys generated ahead of time, so a burst of
// CreateKeysAndCertificate calls after a quiet spell need not each wait for
// an RSA key generation (tens of milliseconds, more when several run at
// once). It adds no capacity: under sustained load it is empty and keys are
// generated on demand, as without it. Keys live only in this process's
// memory, each is handed out once, and a closed pool drops what it holds.
type KeyPool struct {
	keys     chan *rsa.PrivateKey
	generate func() (*rsa.PrivateKey, error)
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
	// taken and missed count keys handed from the pool and keys generated
	// on demand because it was empty.
	taken, missed atomic.Int64
}

// NewKeyPool starts filling a pool of size keys with generate (nil means
// GenerateDeviceKey), one key at a time in the background.
func NewKeyPool(size int, generate func() (*rsa.PrivateKey, error)) *KeyPool {
	if generate == nil {
		generate = GenerateDeviceKey
	}
	p := &KeyPool{keys: make(chan *rsa.PrivateKey, size), generate: generate, stop: make(chan struct{}), done: make(chan struct{})}
	go p.fill()
	return p
}

func (p *KeyPool) fill() {
	defer close(p.done)
	for {
		key, err := p.generate()
		if err != nil {
			// The entropy source is failing; Take reports it on demand.
			select {
			case <-time.After(time.Second):
				continue
			case <-p.stop:
				return
			}
		}
		select {
		case p.keys <- key:
		case <-p.stop:
			return
		}
	}
}

// Take returns a pooled key, or generates one when the pool is empty.
func (p *KeyPool) Take() (*rsa.PrivateKey, error) {
	select {
	case key := <-p.keys:
		p.taken.Add(1)
		return key, nil
	default:
		p.missed.Add(1)
		return p.generate()
	}
}

// KeyPoolStats is what a KeyPool has done: keys handed from the pool, keys
// generated on demand because it was empty, and keys waiting now.
type KeyPoolStats struct {
	Taken, Missed int64
	Ready         int
}

// Stats reports what the pool has done.
func (p *KeyPool) Stats() KeyPoolStats {
	return KeyPoolStats{Taken: p.taken.Load(), Missed: p.missed.Load(), Ready: len(p.keys)}
}

// Close stops the filling and drops the pooled keys.
func (p *KeyPool) Close() {
	p.once.Do(func() { close(p.stop) })
	<-p.done
	for {
		select {
		case <-p.keys:
		default:
			return
		}
	}
}
