package main

import (
	"context"
	"crypto/rand"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/julienschmidt/httprouter"
	"go.uber.org/zap"

	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/internal/jsonhttp"
	"github.com/callpop/callpop/pbx/sim"
	"github.com/callpop/callpop/widget"
)

// The demo company: three managers, a sales department, and clients the
// built-in directory knows.
var (
	demoManagers = []sim.Account{
		{Name: "andy", RealName: "Андрей Смирнов", Ext: "701", Telnum: "79261234567"},
		{Name: "mike", RealName: "Михаил Иванов", Ext: "702"},
		{Name: "daria", RealName: "Дарья Кузнецова", Ext: "703"},
	}
	demoGroups = []sim.Group{{ID: "sales", RealName: "Отдел продаж", Ext: "700", Members: []string{"andy", "mike", "daria"}}}
)

// demoContacts is the demo directory, phone,name,responsible: the one the
// popups look callers up in, and the one the demo page lists (served at
// /demo/contacts), so "open in CRM" finds the caller. It holds clients
// only: never the company's own number (sim.DefaultDiversion, the number
// clients dial) nor a manager's.
const demoContacts = `phone,name,responsible
79101234567,ООО «Рога и Копыта»,andy
79165550101,ИП Петров А. В.,mike
74957654321,АО «Северный ветер»,daria
79857770077,Ольга Белова,andy
79031112233,ООО «Ромашка»,mike
`

// demoPBXPath is where the demo serves its simulated PBX API, so the
// node's own PBX client (click-to-call, DND) talks to it.
const demoPBXPath = "/pbx/sys/crm_api.wcgp"

// demoRecordsPath is where the simulated PBX serves its calls' recordings,
// <callid>.wav, the history's links.
const demoRecordsPath = "/pbx/records/"

// runDemo runs, in one process, a node on the embedded broker, a simulated
// PBX that plays calls to it, and the demo CRM page at /demo.
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := parseConfigHelp("demo", args, getenv, false, stdout)
	if err != nil {
		return err
	}
	cfg.RedisURL = "" // the demo is one node on the embedded broker
	if cfg.CRMToken == "" {
		cfg.CRMToken = randomHex(16)
	}
	if len(cfg.JWTSecret) < 32 {
		cfg.JWTSecret = randomHex(32)
	}
	log := newLogger(cfg.logLevel, stderr, isTerminal(stderr))
	defer func() { _ = log.Sync() }()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("--addr (CALLPOP_ADDR): %w", err)
	}
	if !isLoopback(ln.Addr()) {
		log.Warn("the demo listens beyond this machine: anyone who reaches it can take widget tokens at /demo/token",
			zap.String("addr", ln.Addr().String()))
	}
	base := "http://" + loopbackAddr(ln.Addr())
	if cfg.TLSCert != "" {
		base = "https://" + loopbackAddr(ln.Addr())
	}
	s, pbxSim, err := newDemo(cfg, log, base, officePace)
	if err != nil {
		ln.Close()
		return err
	}
	defer pbxSim.Close()
	fmt.Fprintf(stdout, "callpop demo: open %s/demo (calls start in a few seconds; Ctrl-C stops)\n", base)

	go func() {
		select { // let the page load before the first call rings
		case <-time.After(3 * time.Second):
		case <-ctx.Done():
			return
		}
		if err := pbxSim.Demo(ctx); err != nil {
			log.Error("demo PBX stopped", zap.Error(err))
		}
	}()
	return s.serve(ctx, ln)
}

// demoPace is how long the demo's calls ring and talk, the pause between a
// call's end and its history, and the pause between two calls.
type demoPace struct {
	ring, talk    sim.Span
	step, between time.Duration
}

// officePace paces the demo like an office, so a card rings and talks long
// enough to read.
var officePace = demoPace{ring: sim.DemoRing, talk: sim.DemoTalk, step: time.Second, between: 4 * time.Second}

// newDemo builds the demo node for cfg, reached at base: a simulated PBX
// playing calls at pace to its /webhook (not started: Demo does that), its
// API at demoPBXPath, its recordings at demoRecordsPath, the demo page, its
// directory and its tokens. The caller closes the PBX after the server.
func newDemo(cfg *config, log *zap.Logger, base string, pace demoPace) (*server, *sim.PBX, error) {
	pbxToken := randomHex(16)
	cfg.PBXURL, cfg.PBXToken = base+demoPBXPath, pbxToken
	dir, err := contacts.Load(strings.NewReader(demoContacts))
	if err != nil {
		return nil, nil, err
	}
	pbxSim := sim.New(sim.Config{
		Token: pbxToken, CRMURL: base + "/webhook", CRMToken: cfg.CRMToken,
		Accounts: demoManagers, Groups: demoGroups, Phones: demoPhones(), DemoFocus: "andy", // the page's default manager
		Ring: pace.ring, Talk: pace.talk, Step: pace.step, DemoPause: pace.between,
		RecordingsURL: base + demoRecordsPath,
	}, log)
	s, err := newServer(cfg, log, serverOptions{directory: dir, routes: func(s *server, r *httprouter.Router) {
		r.Handler(http.MethodGet, "/demo", widget.DemoHandler())
		r.HandlerFunc(http.MethodGet, "/demo/token", s.demoToken)
		r.HandlerFunc(http.MethodGet, "/demo/contacts", serveDemoContacts)
		r.Handler(http.MethodGet, demoRecordsPath+":file", pbxSim.Recordings())
		r.Handler(http.MethodPost, demoPBXPath, pbxSim)
		r.Handler(http.MethodGet, demoPBXPath, pbxSim)
	}})
	if err != nil {
		pbxSim.Close()
		return nil, nil, err
	}
	return s, pbxSim, nil
}

// demoToken mints a short-lived widget token for one of the demo managers:
// what a CRM backend does for its logged-in user.
func (s *server) demoToken(w http.ResponseWriter, r *http.Request) {
	user := event.UserKey(r.URL.Query().Get("user"))
	known := false
	for _, m := range demoManagers {
		known = known || m.Name == user
	}
	if !known {
		jsonhttp.Fail(w, jsonhttp.ErrInvalidParameters)
		return
	}
	tok, err := s.jwt.Mint(user, time.Hour)
	if err != nil {
		jsonhttp.Fail(w, jsonhttp.ErrUnavailable)
		return
	}
	jsonhttp.Write(w, http.StatusOK, map[string]string{"token": tok})
}

// demoContact is one client of the demo directory, as /demo/contacts
// lists it.
type demoContact struct {
	Phone       string `json:"phone"`
	Name        string `json:"name"`
	Responsible string `json:"responsible"`
}

// demoClients parses demoContacts (a constant the tests check loads).
func demoClients() []demoContact {
	rows, _ := csv.NewReader(strings.NewReader(demoContacts)).ReadAll()
	var cs []demoContact
	for _, r := range rows[1:] {
		cs = append(cs, demoContact{Phone: r[0], Name: r[1], Responsible: r[2]})
	}
	return cs
}

// serveDemoContacts lists the demo directory for the demo page's table.
func serveDemoContacts(w http.ResponseWriter, _ *http.Request) {
	jsonhttp.Write(w, http.StatusOK, demoClients())
}

// demoPhones lists the directory's numbers, so most demo calls come from
// known clients and show their names.
func demoPhones() []string {
	var phones []string
	for _, c := range demoClients() {
		phones = append(phones, c.Phone)
	}
	return phones
}

// loopbackAddr turns a wildcard listen address into one a browser on this
// machine can open.
func loopbackAddr(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return fmt.Sprintf("localhost:%d", tcp.Port)
}

// isLoopback reports whether a listener at a is reachable from this machine
// only.
func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	return ok && tcp.IP.IsLoopback()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
