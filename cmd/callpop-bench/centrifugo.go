//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Centrifugo mode (--server centrifugo) runs the same direct-mode load
// against a Centrifugo server, so the two can be compared on one machine with
// one tool: each session speaks Centrifugo's JSON client protocol (a connect
// command carrying an HS256 connection JWT, then a subscribe to its user's
// personal channel), and every event is published through Centrifugo's HTTP
// server API. The published data is a call frame shaped like callpop's, so
// the runner's accounting (latency from the callid, lost, duplicated, order,
// routing) reads both servers' frames alike.

// Servers under test.
const (
	serverCallpop    = "callpop"
	serverCentrifugo = "centrifugo"
)

const (
	centrifugoWSPath      = "/connection/websocket"
	centrifugoPublishPath = "/api/publish"
	// Command ids of the handshake; replies carry them back.
	centrifugoConnectID   = 1
	centrifugoSubscribeID = 2
)

// checkCentrifugo refuses what centrifugo mode cannot measure: group calls,
// storms and acks are callpop's own semantics (answered_elsewhere, resume
// from an id, the widget's ack), which a relay does not have.
func (o *options) checkCentrifugo() error {
	switch {
	case o.mode != modeDirect:
		return fmt.Errorf("--server centrifugo: --mode %s is callpop's own; only direct", o.mode)
	case o.ack:
		return errors.New("--server centrifugo: --ack is callpop's widget protocol")
	case o.apiKey == "":
		return errors.New("--server centrifugo: --api-key (or CALLPOP_BENCH_CENTRIFUGO_API_KEY) is required")
	}
	return nil
}

// centrifugoChannel is user's personal channel: namespace "user", and the
// "#" boundary lets only that user subscribe.
func centrifugoChannel(user string) string { return "user:#" + user }

type cfConnectCmd struct {
	ID      uint32 `json:"id"`
	Connect struct {
		Token string `json:"token"`
		Name  string `json:"name"`
	} `json:"connect"`
}

type cfSubscribeCmd struct {
	ID        uint32 `json:"id"`
	Subscribe struct {
		Channel string `json:"channel"`
	} `json:"subscribe"`
}

// centrifugoConnect is the first command of a session:
// {"id":1,"connect":{"token":"<JWT>","name":"callpop-bench"}}.
func centrifugoConnect(token string) []byte {
	var c cfConnectCmd
	c.ID = centrifugoConnectID
	c.Connect.Token = token
	c.Connect.Name = "callpop-bench"
	b, _ := json.Marshal(c)
	return b
}

// centrifugoSubscribe is {"id":2,"subscribe":{"channel":"user:#<user>"}}.
func centrifugoSubscribe(user string) []byte {
	var c cfSubscribeCmd
	c.ID = centrifugoSubscribeID
	c.Subscribe.Channel = centrifugoChannel(user)
	b, _ := json.Marshal(c)
	return b
}

// cfCall is the published data: the fields of callpop's call frame the
// runner reads. id is "<seq+1>-0": unique per call and ascending per user in
// publish order, as callpop's log ids are.
type cfCall struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	Event     string `json:"event"`
	CallID    string `json:"callid"`
	Phone     string `json:"phone"`
	User      string `json:"user"`
	Direction string `json:"direction"`
}

type cfPublish struct {
	Channel string `json:"channel"`
	Data    cfCall `json:"data"`
}

// centrifugoPublishBody is the body of POST /api/publish:
// {"channel":"user:#<user>","data":{"type":"call",…}}.
func centrifugoPublishBody(user string, seq int, callid string) []byte {
	b, _ := json.Marshal(cfPublish{Channel: centrifugoChannel(user), Data: cfCall{
		Type: "call", ID: strconv.Itoa(seq+1) + "-0", Event: "INCOMING", CallID: callid,
		Phone: "79" + strconv.Itoa(100000000+seq%900000000), User: user, Direction: "in",
	}})
	return b
}

// publish sends one INCOMING through Centrifugo's HTTP API and returns the
// HTTP status (0 when none). Errors come back as HTTP statuses (the
// "transport" error mode), so 200 means published.
func (s *sender) publish(ctx context.Context, user, seq int, callid string, sched time.Time) int {
	u := s.urls[0][int(s.rr.Add(1)%uint64(len(s.urls[0])))]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u,
		bytes.NewReader(centrifugoPublishBody(s.r.userName(user), seq, callid)))
	if err != nil {
		s.transport.Add(1)
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", s.o.apiKey)
	req.Header.Set("X-Centrifugo-Error-Mode", "transport")
	return s.do(req, sched)
}

// cfReply is what the handshake reads of a reply or push.
type cfReply struct {
	ID    uint32 `json:"id"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Connect *struct {
		Pong bool `json:"pong"`
	} `json:"connect"`
	Subscribe json.RawMessage `json:"subscribe"`
	Push      *struct {
		Disconnect *struct {
			Code int `json:"code"`
		} `json:"disconnect"`
	} `json:"push"`
}

var (
	cfPing    = []byte("{}")
	cfPubHead = []byte(`{"push":{"channel":"`)
	cfPubData = []byte(`"pub":{"data":`)
)

// cfSession is one Centrifugo session's protocol state, owned by its reader.
type cfSession struct {
	state   int // 0: awaiting the connect reply, 1: the subscribe reply, 2: live
	pong    bool
	channel string
}

// errCentrifugo is an error reply or a disconnect push.
type errCentrifugo struct {
	what string
	code int
}

func (e errCentrifugo) Error() string { return fmt.Sprintf("centrifugo %s %d", e.what, e.code) }

// readCentrifugo is a Centrifugo session's one goroutine: connect, subscribe
// (its "hello"), then publications until the socket ends. A message may hold
// several replies, one per line.
func (r *runner) readCentrifugo(s *session, start time.Time, helloDone func()) {
	defer close(s.done)
	cs := &cfSession{channel: centrifugoChannel(s.name)}
	hello := false
	end := func(err error) {
		s.err = err
		var ce errCentrifugo
		if errors.As(err, &ce) {
			r.countCode(ce.what + "_" + strconv.Itoa(ce.code))
			if !s.dropping.Load() {
				r.disconnects.Add(1)
			}
			s.ws.close()
		} else {
			r.classifyEnd(s, err)
		}
		if !hello {
			r.noHello.Add(1)
			helloDone()
		}
	}
	if err := s.ws.write(1, centrifugoConnect(r.tokens[s.user])); err != nil {
		end(err)
		return
	}
	for {
		msg, err := s.ws.next()
		if err != nil {
			end(err)
			return
		}
		now := time.Now()
		for len(msg) > 0 {
			line := msg
			if i := bytes.IndexByte(msg, '\n'); i >= 0 {
				line, msg = msg[:i], msg[i+1:]
			} else {
				msg = nil
			}
			if len(line) == 0 {
				continue
			}
			subscribed, err := r.cfLine(s, cs, line, now)
			if err != nil {
				end(err)
				return
			}
			if subscribed {
				hello = true
				r.cfHello(s, start, now)
				helloDone()
			}
		}
	}
}

// cfLine handles one reply or push; subscribed reports the subscribe reply.
func (r *runner) cfLine(s *session, cs *cfSession, line []byte, now time.Time) (subscribed bool, err error) {
	if bytes.Equal(line, cfPing) {
		if cs.pong {
			return false, s.ws.write(1, cfPing)
		}
		return false, nil
	}
	if cs.state == 2 && bytes.HasPrefix(line, cfPubHead) {
		if i := bytes.Index(line, cfPubData); i >= 0 {
			if string(field(line, "channel")) != cs.channel {
				r.misrouted.Add(1)
				return false, nil
			}
			r.frame(s, line[i+len(cfPubData):], now)
			return false, nil
		}
	}
	var rep cfReply
	if err := json.Unmarshal(line, &rep); err != nil {
		return false, fmt.Errorf("centrifugo: not a reply: %.80s", line)
	}
	switch {
	case rep.Error != nil:
		return false, errCentrifugo{"error", rep.Error.Code}
	case rep.Push != nil && rep.Push.Disconnect != nil:
		return false, errCentrifugo{"disconnect", rep.Push.Disconnect.Code}
	case cs.state == 0 && rep.ID == centrifugoConnectID && rep.Connect != nil:
		cs.pong = rep.Connect.Pong
		cs.state = 1
		return false, s.ws.write(1, centrifugoSubscribe(s.name))
	case cs.state == 1 && rep.ID == centrifugoSubscribeID && rep.Subscribe != nil:
		cs.state = 2
		return true, nil
	}
	r.frames.Add(1) // anything else (join/leave, other pushes) is not measured
	return false, nil
}

// cfHello marks a session live, as callpop's hello does.
func (r *runner) cfHello(s *session, start, now time.Time) {
	r.helloLat[0].record(now.Sub(start))
	s.up.Store(true)
	for {
		v := r.lastHello.Load()
		if now.UnixNano() <= v || r.lastHello.CompareAndSwap(v, now.UnixNano()) {
			break
		}
	}
}
