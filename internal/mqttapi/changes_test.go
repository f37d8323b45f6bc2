package mqttapi

import (
	"context"
	"crypto/x509"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fleetca/fleetca/internal/iot"
	"github.com/fleetca/fleetca/internal/policy"
	"github.com/fleetca/fleetca/internal/registry"
)

// stillAdmitted keeps every device admitted.
func stillAdmitted(context.Context, *registry.SweepPass, iot.Scope, string) (bool, error) {
	return true, nil
}

// grantCounter is a ConnectionGrants that grants each certificate the
// policy named for it and counts the reads per certificate.
type grantCounter struct {
	mu     sync.Mutex
	policy map[string]string // certificate ID -> policy name
	reads  map[string]int
}

func (g *grantCounter) grants(_ context.Context, _ iot.Scope, certificateID, _ string) (*registry.Grants, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.reads[certificateID]++
	return &registry.Grants{Policies: []*policy.Policy{allowAll}, PolicyNames: []string{g.policy[certificateID]}}, nil
}

func (g *grantCounter) count(certificateID string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.reads[certificateID]
}

// addChange puts a change with a number of the test's choosing on the
// fake's feed, as a replica whose transaction commits late does.
func (f *fakeRegistry) addChange(c registry.Change) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.feed = append(f.feed, c)
	slices.SortFunc(f.feed, func(a, b registry.Change) int { return int(a.Seq - b.Seq) })
}

// TestFollowerReadsAffectedSessionsAgain: a change reaches exactly the
// sessions whose grant depends on what changed: a policy they hold, their
// certificate's attachments, the thing their client ID names; nothing of
// another scope.
func TestFollowerReadsAffectedSessionsAgain(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	certA, certB := p.device(t, "a"), p.device(t, "b")
	idA, idB := certificateID(certA), certificateID(certB)
	counter := &grantCounter{policy: map[string]string{idA: "pa", idB: "pb"}, reads: map[string]int{}}
	fake := &fakeRegistry{stillAdmitted: stillAdmitted, admit: admitByName(map[string]iot.Scope{"a": scope1, "b": scope1}), grants: counter.grants}
	fake.policies = map[string]*policy.Policy{"pa": allowAll}
	s, _ := newTestServer(t, Options{Registry: fake})
	ctx := context.Background()
	f := s.hook.feed
	f.pass(ctx)
	connectOne(t, s, "thing-a", certA)
	connectOne(t, s, "thing-b", certB)
	f.pass(ctx)
	if counter.count(idA) != 1 || counter.count(idB) != 1 {
		t.Fatalf("reads after connecting: a %d, b %d; want 1 each", counter.count(idA), counter.count(idB))
	}
	other := iot.Scope{AccountID: "999988887777", Region: scope1.Region}
	// A policy's new version is read once, not once per session.
	for _, tc := range []struct {
		change      registry.Change
		readsA      int
		readsB      int
		policyReads int
		explainWhy  string
	}{
		{registry.Change{Scope: scope1, Kind: registry.ChangePolicy, Name: "pa"}, 1, 1, 1, "a's policy changed"},
		{registry.Change{Scope: other, Kind: registry.ChangePolicy, Name: "pa"}, 1, 1, 1, "another account's policy of the same name"},
		{registry.Change{Scope: scope1, Kind: registry.ChangePrincipal, Name: scope1.CertificateARN(idB)}, 1, 2, 1, "b's certificate's attachments changed"},
		{registry.Change{Scope: scope1, Kind: registry.ChangeThing, Name: "thing-a"}, 2, 2, 1, "the thing a's client ID names changed"},
		{registry.Change{Scope: scope1, Kind: registry.ChangeThing, Name: "thing-c"}, 2, 2, 1, "a thing nobody's client ID names"},
	} {
		fake.change(tc.change)
		f.pass(ctx)
		fake.mu.Lock()
		policyReads := fake.policyReads
		fake.mu.Unlock()
		if a, b := counter.count(idA), counter.count(idB); a != tc.readsA || b != tc.readsB || policyReads != tc.policyReads {
			t.Errorf("%s: reads a %d, b %d, policy %d; want %d, %d, %d", tc.explainWhy, a, b, policyReads, tc.readsA, tc.readsB, tc.policyReads)
		}
	}
}

// TestPolicyChangeReachesEverySession: a policy's new default version is
// put in the grant of every session that holds it, and a policy that is
// gone grants nothing.
func TestPolicyChangeReachesEverySession(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	denyAll := mustPolicy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:*","Resource":"*"}]}`)
	fake := &fakeRegistry{stillAdmitted: stillAdmitted, admit: admitByName(map[string]iot.Scope{"a": scope1, "b": scope1}), policies: map[string]*policy.Policy{"shared": denyAll}}
	fake.grants = func(context.Context, iot.Scope, string, string) (*registry.Grants, error) {
		return &registry.Grants{Policies: []*policy.Policy{allowAll}, PolicyNames: []string{"shared"}}, nil
	}
	s, _ := newTestServer(t, Options{Registry: fake})
	ctx := context.Background()
	f := s.hook.feed
	f.pass(ctx)
	a := connectOne(t, s, "a", p.device(t, "a"))
	b := connectOne(t, s, "b", p.device(t, "b"))
	for _, d := range []*pipeDevice{a, b} {
		if !s.hook.allowed(s.hook.session(d.cl), policy.Publish, resourceTopic, "x") {
			t.Fatal("the first version does not allow the publish")
		}
	}
	fake.change(registry.Change{Scope: scope1, Kind: registry.ChangePolicy, Name: "shared"})
	f.pass(ctx)
	for _, d := range []*pipeDevice{a, b} {
		if s.hook.allowed(s.hook.session(d.cl), policy.Publish, resourceTopic, "x") {
			t.Fatal("the new version's deny did not reach a session")
		}
	}
	fake.mu.Lock()
	delete(fake.policies, "shared")
	fake.mu.Unlock()
	fake.change(registry.Change{Scope: scope1, Kind: registry.ChangePolicy, Name: "shared"})
	f.pass(ctx)
	sess := s.hook.session(a.cl)
	if g := sess.grant.Load(); len(g.policies) != 0 || !slices.Equal(g.unparsable, []string{"shared"}) {
		t.Fatalf("after the policy went: %d policies, unparsable %v", len(g.policies), g.unparsable)
	}
	// Still indexed by it, so that a version that parses reaches it.
	fake.mu.Lock()
	fake.policies["shared"] = allowAll
	fake.mu.Unlock()
	fake.change(registry.Change{Scope: scope1, Kind: registry.ChangePolicy, Name: "shared"})
	f.pass(ctx)
	if !s.hook.allowed(sess, policy.Publish, resourceTopic, "x") {
		t.Fatal("a version that parses again did not reach the session")
	}
}

// TestFollowerWaitsForGaps: on PostgreSQL a change numbered below one
// already read can commit later; the follower reads it when it appears.
func TestFollowerWaitsForGaps(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cert := p.device(t, "a")
	id := certificateID(cert)
	counter := &grantCounter{policy: map[string]string{id: "pa"}, reads: map[string]int{}}
	fake := &fakeRegistry{stillAdmitted: stillAdmitted, admit: admitByName(map[string]iot.Scope{"a": scope1}), grants: counter.grants}
	fake.policies = map[string]*policy.Policy{"pa": allowAll}
	s, _ := newTestServer(t, Options{Registry: fake})
	ctx := context.Background()
	f := s.hook.feed
	f.pass(ctx)
	connectOne(t, s, "thing-a", cert)
	fake.addChange(registry.Change{Seq: 1, Scope: scope1, Kind: registry.ChangeThing, Name: "elsewhere"})
	fake.addChange(registry.Change{Seq: 3, Scope: scope1, Kind: registry.ChangeThing, Name: "elsewhere"})
	f.pass(ctx)
	if f.last != 3 || counter.count(id) != 1 {
		t.Fatalf("last %d, reads %d; want 3, 1", f.last, counter.count(id))
	}
	// Number 2 commits late, and concerns the device's certificate.
	fake.addChange(registry.Change{Seq: 2, Scope: scope1, Kind: registry.ChangePrincipal, Name: scope1.CertificateARN(id)})
	f.pass(ctx)
	if counter.count(id) != 2 {
		t.Fatalf("the late change was not applied: reads %d, want 2", counter.count(id))
	}
	// Read once, it is not applied again.
	f.pass(ctx)
	if counter.count(id) != 2 {
		t.Fatalf("a change was applied twice: reads %d, want 2", counter.count(id))
	}
}

// TestGrantReadBeforeAChangeIsReadAgain: a device whose grant was read
// before a change the follower applied before the session was indexed is
// read again, so that no change falls between admission and the index.
func TestGrantReadBeforeAChangeIsReadAgain(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	cert := p.device(t, "a")
	id := certificateID(cert)
	counter := &grantCounter{policy: map[string]string{id: "pa"}, reads: map[string]int{}}
	fake := &fakeRegistry{stillAdmitted: stillAdmitted, admit: admitByName(map[string]iot.Scope{"a": scope1}), grants: counter.grants}
	s, _ := newTestServer(t, Options{Registry: fake})
	f := s.hook.feed
	f.pass(context.Background())
	// The change lands while the device is being admitted: the grant says
	// it was read at position 0, and the follower is at 1 by the time the
	// session is indexed.
	fake.change(registry.Change{Scope: scope1, Kind: registry.ChangePolicy, Name: "pa"})
	var once sync.Once
	fake.mu.Lock()
	inner := fake.grants
	fake.grants = func(ctx context.Context, scope iot.Scope, certificateID, clientID string) (*registry.Grants, error) {
		g, err := inner(ctx, scope, certificateID, clientID)
		once.Do(func() { f.pass(ctx) })
		return g, err
	}
	fake.mu.Unlock()
	connectOne(t, s, "thing-a", cert)
	f.pass(context.Background())
	if n := counter.count(id); n != 2 {
		t.Fatalf("reads %d, want 2: the grant read before the change was kept", n)
	}
}

// TestLateChangesAreWaitedFor: a change numbered below what the follower
// has read, committed while a device is admitted (a gap filled late), or
// in flight when the follower started (numbered but not in the feed yet),
// reaches the device.
func TestLateChangesAreWaitedFor(t *testing.T) {
	t.Parallel()
	for _, atStart := range []bool{false, true} {
		p := newPKI(t)
		cert := p.device(t, "a")
		id := certificateID(cert)
		counter := &grantCounter{policy: map[string]string{id: "pa"}, reads: map[string]int{}}
		fake := &fakeRegistry{stillAdmitted: stillAdmitted, admit: admitByName(map[string]iot.Scope{"a": scope1}), grants: counter.grants}
		fake.addChange(registry.Change{Seq: 1, Scope: scope1, Kind: registry.ChangeThing, Name: "elsewhere"})
		if atStart {
			// Numbers 2 and 3 were given to transactions still in flight.
			fake.given = 3
		} else {
			fake.addChange(registry.Change{Seq: 3, Scope: scope1, Kind: registry.ChangeThing, Name: "elsewhere"})
		}
		s, _ := newTestServer(t, Options{Registry: fake})
		f := s.hook.feed
		f.pass(context.Background())
		// Number 2 commits while the device is admitted, after its grant
		// was read and before it is indexed.
		var once sync.Once
		fake.mu.Lock()
		inner := fake.grants
		fake.grants = func(ctx context.Context, scope iot.Scope, certificateID, clientID string) (*registry.Grants, error) {
			g, err := inner(ctx, scope, certificateID, clientID)
			once.Do(func() {
				fake.addChange(registry.Change{Seq: 2, Scope: scope1, Kind: registry.ChangePrincipal, Name: scope1.CertificateARN(id)})
				f.pass(ctx)
			})
			return g, err
		}
		fake.mu.Unlock()
		connectOne(t, s, "thing-a", cert)
		f.pass(context.Background())
		if n := counter.count(id); n != 2 {
			t.Errorf("at start %v: reads %d, want 2: the late change did not reach the device", atStart, n)
		}
	}
}

// TestReceiveFollowsTheGrant: deliveries are checked against the grant in
// force when they are made, and a new grant applies to the live session.
func TestReceiveFollowsTheGrant(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	fake := &fakeRegistry{stillAdmitted: stillAdmitted, admit: admitByName(map[string]iot.Scope{"sub": scope1, "pub": scope1})}
	allowed := mustPolicy(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"},
		{"Effect":"Deny","Action":"iot:Receive","Resource":"arn:aws:iot:*:*:topic/secret/*"}]}`)
	fake.grants = func(context.Context, iot.Scope, string, string) (*registry.Grants, error) {
		return &registry.Grants{Policies: []*policy.Policy{allowed}, PolicyNames: []string{"p"}}, nil
	}
	s, _ := newTestServer(t, Options{Registry: fake})
	sub := connectOne(t, s, "sub", p.device(t, "sub"))
	pub := connectOne(t, s, "pub", p.device(t, "pub"))
	if codes := sub.subscribe(t, "secret/#", "open/#"); !slices.Equal(codes, []byte{1, 1}) {
		t.Fatalf("SUBACK %v", codes)
	}
	if err := pub.publish("secret/x", []byte("hidden")); err != nil {
		t.Fatal(err)
	}
	sub.quiet(t)
	if err := pub.publish("open/x", []byte("seen")); err != nil {
		t.Fatal(err)
	}
	if pk := sub.next(t); pk.TopicName != "open/x" {
		t.Fatalf("delivered %q, want open/x", pk.TopicName)
	}
	// A new grant without the deny reaches the live session.
	sess := s.hook.session(sub.cl)
	sess.grant.Store(&grant{conn: sess.grant.Load().conn, policies: []*policy.Policy{allowAll}, names: []string{"all"}})
	if err := pub.publish("secret/y", []byte("now seen")); err != nil {
		t.Fatal(err)
	}
	if pk := sub.next(t); pk.TopicName != "secret/y" {
		t.Fatalf("delivered %q, want secret/y", pk.TopicName)
	}
}

func mustPolicy(t *testing.T, doc string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestStatusChangeEvictsTheDevicesItConcerns: a certificate's or CA's new
// status reaches, through the change feed, exactly the sessions of that
// certificate or CA: they are checked against the admission rules again,
// and those no longer admitted are disconnected, without a sweep.
func TestStatusChangeEvictsTheDevicesItConcerns(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	certA, certB, certC := p.device(t, "a"), p.device(t, "b"), p.device(t, "c")
	idA, idB, idC := certificateID(certA), certificateID(certB), certificateID(certC)
	var mu sync.Mutex
	active := map[string]bool{idA: true, idB: true, idC: true}
	checked := map[string]int{}
	fake := &fakeRegistry{
		admit: func(ctx context.Context, leaf *x509.Certificate, sni string) (registry.Admission, error) {
			adm, err := admitByName(map[string]iot.Scope{"a": scope1, "b": scope1, "c": scope1})(ctx, leaf, sni)
			if adm.Certificate != nil && leaf.Subject.CommonName == "c" {
				adm.Certificate.CACertificateID = "ca-1"
			}
			return adm, err
		},
		stillAdmitted: func(_ context.Context, _ *registry.SweepPass, _ iot.Scope, id string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			checked[id]++
			return active[id], nil
		},
	}
	s, _ := newTestServer(t, Options{Registry: fake})
	ctx := context.Background()
	f := s.hook.feed
	f.pass(ctx)
	a := connectOne(t, s, "a", certA)
	b := connectOne(t, s, "b", certB)
	c := connectOne(t, s, "c", certC)
	f.pass(ctx)

	mu.Lock()
	active[idA] = false
	mu.Unlock()
	fake.change(registry.Change{Scope: scope1, Kind: registry.ChangeCertificate, Name: idA})
	f.pass(ctx)
	if !a.cl.Closed() || b.cl.Closed() || c.cl.Closed() {
		t.Fatalf("after a's certificate changed: closed a %v, b %v, c %v; want a only", a.cl.Closed(), b.cl.Closed(), c.cl.Closed())
	}
	mu.Lock()
	if checked[idB] != 0 || checked[idC] != 0 {
		t.Errorf("devices the change does not concern were checked: %v", checked)
	}
	active[idC] = false
	mu.Unlock()
	// A CA's change reaches the devices admitted under it.
	fake.change(registry.Change{Scope: scope1, Kind: registry.ChangeCA, Name: "ca-1"})
	f.pass(ctx)
	if b.cl.Closed() || !c.cl.Closed() {
		t.Fatalf("after the CA changed: closed b %v, c %v; want c only", b.cl.Closed(), c.cl.Closed())
	}
	if s.hook.session(a.cl) != nil || s.hook.session(c.cl) != nil {
		t.Error("an evicted device's session is still recorded")
	}
}

// TestAdmissionLapses: a device admitted until a time (a provisioning
// claim's expiry) is checked again once it passes, and disconnected when
// it is no longer admitted, without a sweep or a change; a device whose
// admission does not lapse is not checked. A session forgotten before its
// admission lapses leaves no check behind.
func TestAdmissionLapses(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	claimCert, deviceCert, goneCert := p.device(t, "claim"), p.device(t, "device"), p.device(t, "gone")
	claimID, goneID := certificateID(claimCert), certificateID(goneCert)
	expires := time.Now().Add(300 * time.Millisecond)
	var mu sync.Mutex
	checked := map[string]int{}
	fake := &fakeRegistry{
		admit: func(ctx context.Context, leaf *x509.Certificate, sni string) (registry.Admission, error) {
			adm, err := admitByName(map[string]iot.Scope{"claim": scope1, "device": scope1, "gone": scope1})(ctx, leaf, sni)
			if leaf.Subject.CommonName != "device" {
				adm.ExpiresAt = expires
			}
			return adm, err
		},
		stillAdmitted: func(_ context.Context, _ *registry.SweepPass, _ iot.Scope, id string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			checked[id]++
			return id != claimID || time.Now().Before(expires), nil
		},
	}
	s, _ := newTestServer(t, Options{Registry: fake})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	claim, claimLost, err := dialPaho(t, s, claimCert, "claim")
	if err != nil {
		t.Fatal(err)
	}
	device, deviceLost, err := dialPaho(t, s, deviceCert, "device")
	if err != nil {
		t.Fatal(err)
	}
	gone, _, err := dialPaho(t, s, goneCert, "gone")
	if err != nil {
		t.Fatal(err)
	}
	gone.Disconnect(0)
	select {
	case <-claimLost:
	case <-time.After(waitLimit):
		t.Fatal("the device whose admission lapsed is still connected")
	}
	if claim.IsConnectionOpen() {
		t.Error("the claim's connection is open")
	}
	// Past the lapse of the session forgotten on its disconnect.
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-deviceLost:
		t.Fatalf("the device whose admission does not lapse lost its connection: %v", err)
	default:
	}
	if !device.IsConnectionOpen() {
		t.Fatal("the device whose admission does not lapse is disconnected")
	}
	mu.Lock()
	defer mu.Unlock()
	if checked[claimID] == 0 || checked[certificateID(deviceCert)] != 0 || checked[goneID] != 0 {
		t.Errorf("checked %v: want the claim's certificate only", checked)
	}
}

// TestFeedOutOfReachChecksEverything: a replica that could not read the
// change feed for longer than the feed keeps changes may have missed some,
// so once it reads the feed again it checks every session and reads every
// grant again; a replica that reads it steadily checks nothing.
func TestFeedOutOfReachChecksEverything(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	certA, certB := p.device(t, "a"), p.device(t, "b")
	var mu sync.Mutex
	checked := map[string]int{}
	fake := &fakeRegistry{
		admit: admitByName(map[string]iot.Scope{"a": scope1, "b": scope2}),
		stillAdmitted: func(_ context.Context, _ *registry.SweepPass, _ iot.Scope, id string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			checked[id]++
			return true, nil
		},
	}
	s, logs := newTestServer(t, Options{Registry: fake})
	ctx := context.Background()
	f := s.hook.feed
	f.pass(ctx)
	connectOne(t, s, "a", certA)
	connectOne(t, s, "b", certB)
	f.pass(ctx)
	f.pass(ctx)
	mu.Lock()
	steady := maps.Clone(checked)
	mu.Unlock()
	grantsBefore := fake.grantCount()

	f.lastRead = time.Now().Add(-cutOff - time.Minute)
	f.pass(ctx)
	mu.Lock()
	defer mu.Unlock()
	for _, id := range []string{certificateID(certA), certificateID(certB)} {
		if checked[id] != steady[id]+1 {
			t.Errorf("%s checked %d times after the feed was out of reach, %d before; want one more", id, checked[id], steady[id])
		}
	}
	if n := fake.grantCount() - grantsBefore; n != 2 {
		t.Errorf("grants read %d times after the feed was out of reach, want 2", n)
	}
	if r := logs.find("the change feed was out of reach for longer than it keeps changes; checking every connected device again"); len(r) != 1 || r[0].level != slog.LevelWarn {
		t.Errorf("logged %+v, want one warning", r)
	}
}

func (f *fakeRegistry) grantCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.grantCalls
}

// TestRecheckStopsAtFirstFailure: once a check fails, a pass makes no more
// (a failing database would otherwise hold it up for a second a session);
// every session not checked waits for the next pass, which checks them.
func TestRecheckStopsAtFirstFailure(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	var mu sync.Mutex
	failing := true
	fake := &fakeRegistry{
		admit: admitByName(map[string]iot.Scope{"a": scope1, "b": scope1, "c": scope1}),
		stillAdmitted: func(context.Context, *registry.SweepPass, iot.Scope, string) (bool, error) {
			mu.Lock()
			defer mu.Unlock()
			if failing {
				return false, errors.New("database is down")
			}
			return true, nil
		},
	}
	s, _ := newTestServer(t, Options{Registry: fake})
	ctx := context.Background()
	f := s.hook.feed
	f.pass(ctx)
	var devices []*pipeDevice
	for _, name := range []string{"a", "b", "c"} {
		devices = append(devices, connectOne(t, s, name, p.device(t, name)))
	}
	f.pass(ctx)
	before := len(calls(fake, &fake.stillCalls))
	for _, d := range devices {
		f.recheckLater(d.cl)
	}
	f.pass(ctx)
	if n := len(calls(fake, &fake.stillCalls)) - before; n != 1 {
		t.Fatalf("a pass whose first check failed made %d checks, want 1", n)
	}
	f.mu.Lock()
	waiting := len(f.recheck)
	f.mu.Unlock()
	if waiting != 3 {
		t.Fatalf("%d sessions wait for the next pass, want 3", waiting)
	}
	mu.Lock()
	failing = false
	mu.Unlock()
	f.pass(ctx)
	if n := len(calls(fake, &fake.stillCalls)) - before; n != 4 {
		t.Fatalf("%d checks after the database came back, want 4", n)
	}
	for _, d := range devices {
		if d.cl.Closed() {
			t.Error("a device was disconnected by a failed check")
		}
	}
}
