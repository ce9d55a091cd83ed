package reconciler

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// EventInterval is the least time between two Normal Events a policy asks
// for on one resource with one reason (a canary's Step, a gate's Hold):
// each is an API write, and a step every few seconds would make more of
// them than of status writes. The ones held back are counted in the next
// one's note; every step is in the resource's status (history,
// decisions). Warnings and a reason's first Event are never held back.
const EventInterval = time.Minute

// eventThrottle remembers, per resource and reason, when the last Event went
// out and how many were held back since.
type eventThrottle struct {
	mu   sync.Mutex
	last map[pacedKey]paced
}

type pacedKey struct {
	uid    types.UID
	reason string
}

type paced struct {
	at, firstHeld time.Time
	held          int
}

// pacerPrune is the size past which admit forgets the entries older than
// EventInterval, which hold nothing back any more.
const pacerPrune = 4096

// admit says whether an Event may go out at now, and if so how many were
// held back before it since when.
func (p *eventThrottle) admit(uid types.UID, reason string, now time.Time) (held int, since time.Time, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.last == nil {
		p.last = map[pacedKey]paced{}
	}
	key := pacedKey{uid, reason}
	last, seen := p.last[key]
	if seen && now.Sub(last.at) < EventInterval {
		if last.held == 0 {
			last.firstHeld = now
		}
		last.held++
		p.last[key] = last
		return 0, time.Time{}, false
	}
	if len(p.last) >= pacerPrune {
		for k, v := range p.last {
			if now.Sub(v.at) >= EventInterval {
				delete(p.last, k)
			}
		}
	}
	p.last[key] = paced{at: now}
	return last.held, last.firstHeld, true
}
