package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"
	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/pbx/sim"
)

// syncBuffer is an io.Writer safe to read while run writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoShowsPopupsWithinSeconds runs `callpop demo` as a newcomer would and
// watches as andy, the demo page's default manager: the printed URL serves
// the page, its token endpoint works, and call frames arrive within seconds.
func TestDemoShowsPopupsWithinSeconds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"demo", "--addr", "127.0.0.1:0"}, envOf(nil), &out, io.Discard) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo ended with %v", err)
		}
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := regexp.MustCompile(`open (http://\S+)/demo`).FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no URL printed: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(base + "/demo")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /demo: %v %v", resp, err)
	}
	resp.Body.Close()
	resp, err = http.Get(base + "/demo/token?user=andy")
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
	defer dcancel()
	conn, _, err := websocket.Dial(dctx, strings.Replace(base, "http", "ws", 1)+"/ws?token="+tok.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	defer rcancel()
	for {
		_, data, err := conn.Read(rctx)
		if err != nil {
			t.Fatalf("no call frame for andy within 30 s: %v", err)
		}
		var f map[string]any
		json.Unmarshal(data, &f)
		if f["type"] == "call" && f["event"] == "INCOMING" || f["type"] == "call" && f["event"] == "OUTGOING" {
			t.Logf("first popup: %s", data)
			return
		}
	}
}

// TestDemoContactsListTheDirectoryThePopupsUse runs `callpop demo` and
// checks the page's contacts (/demo/contacts) against what the node tells
// the PBX about each caller (cmd=contact, the popup's contact): the same
// numbers, names and managers, and never the company's own number.
func TestDemoContactsListTheDirectoryThePopupsUse(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--addr", "127.0.0.1:0", "--crm-token", testCRMToken}, envOf(nil), &out, io.Discard)
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("demo ended with %v", err)
		}
	}()
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := regexp.MustCompile(`open (http://\S+)/demo`).FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("no URL printed: %q", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(base + "/demo/contacts")
	if err != nil {
		t.Fatal(err)
	}
	var list []struct{ Phone, Name, Responsible string }
	err = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("GET /demo/contacts: %d %q %v", resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	if len(list) < 3 {
		t.Fatalf("contacts %v", list)
	}
	lookup := func(phone string) (name, responsible string) {
		t.Helper()
		form := url.Values{"crm_token": {testCRMToken}, "cmd": {"contact"}, "phone": {phone}, "callid": {"c1"}}
		resp, err := http.PostForm(base+"/webhook", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var c struct {
			Name        string `json:"contact_name"`
			Responsible string `json:"responsible"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("contact %s: %d %v", phone, resp.StatusCode, err)
		}
		return c.Name, c.Responsible
	}
	listed := map[string]bool{}
	for _, c := range list {
		listed[c.Phone] = true
		if name, resp := lookup(c.Phone); name != c.Name || resp != c.Responsible {
			t.Errorf("page lists %s as %q (%s), the popup shows %q (%s)", c.Phone, c.Name, c.Responsible, name, resp)
		}
	}
	// Every known caller the demo plays is on the page.
	for _, phone := range demoPhones() {
		if !listed[phone] {
			t.Errorf("demo calls come from %s, which the page does not list", phone)
		}
	}
	// The number clients dial, and the managers' own, are no clients.
	own := []string{sim.DefaultDiversion}
	for _, m := range demoManagers {
		own = append(own, m.Telnum)
	}
	for _, phone := range own {
		if phone == "" {
			continue
		}
		if listed[phone] {
			t.Errorf("the company's own number %s is listed as a client", phone)
		}
		if name, _ := lookup(phone); name != "" {
			t.Errorf("the company's own number %s pops up as %q", phone, name)
		}
	}
}

// TestDemoAnsweredCallsLinkARecordingTheDemoServes plays an answered call on
// the demo's wiring (at a test's pace) and follows its history's link.
func TestDemoAnsweredCallsLinkARecordingTheDemoServes(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ms := sim.Span{Min: time.Millisecond, Max: 3 * time.Millisecond}
	s, pbxSim, err := newDemo(testConfig(t), zaptest.NewLogger(t), base,
		demoPace{ring: ms, talk: ms, step: time.Millisecond, between: time.Millisecond})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(pbxSim.Close) // runs before the node stops: its calls post to it
	n := serveNode(t, s, ln)
	a := n.dial("andy", "")
	a.hello()

	id, err := pbxSim.DirectCall(t.Context(), "andy", "79101234567")
	if err != nil {
		t.Fatal(err)
	}
	var link string
	for link == "" {
		f := a.next()
		if f["type"] == "history" && f["callid"] == id {
			link, _ = f["link"].(string)
			if link == "" {
				t.Fatalf("history frame without a link: %v", f)
			}
		}
	}
	if link != base+"/pbx/records/"+id+".wav" {
		t.Fatalf("link %q", link)
	}
	req, _ := http.NewRequest(http.MethodGet, link, nil)
	req.Header.Set("Origin", "https://crm.example") // a CRM page of another origin
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "audio/wav" ||
		len(body) < 44 || string(body[:4]) != "RIFF" || string(body[8:12]) != "WAVE" {
		t.Fatalf("GET %s: %d %q % x", link, resp.StatusCode, resp.Header.Get("Content-Type"), body[:min(len(body), 16)])
	}
}

// TestBrowserDemoPageListsTheDirectoryAndFindsTheCaller opens the demo page
// as the widget's "open in CRM" link does, for each client, in the form the
// PBX may send the number, and checks the page lists the directory's
// clients and highlights that caller under the name the popup shows.
func TestBrowserDemoPageListsTheDirectoryAndFindsTheCaller(t *testing.T) {
	t.Parallel()
	tab := startChromium(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	s, pbxSim, err := newDemo(testConfig(t), zaptest.NewLogger(t), base, demoPace{step: time.Millisecond})
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	t.Cleanup(pbxSim.Close)
	serveNode(t, s, ln)

	clients := demoClients()
	for _, c := range clients {
		phone := "8" + strings.TrimPrefix(c.Phone, "7") // as Russian PBXs often send it
		ctx, cancel := context.WithTimeout(tab, browserWait)
		_, err := chromedp.Run(ctx, chromedp.Navigate(base+"/demo?phone="+url.QueryEscape(phone)))
		if err == nil {
			_, err = chromedp.Run(ctx, chromedp.WaitVisible("#contacts tr.hit"))
		}
		var rows int
		if err == nil {
			rows, err = chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#contacts tr').length`))
		}
		var hit []string
		if err == nil {
			hit, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#contacts tr.hit td')].map(td => td.textContent)`))
		}
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", phone, err)
		}
		if rows != len(clients) {
			t.Errorf("%s: the page lists %d contacts, the directory %d", phone, rows, len(clients))
		}
		if len(hit) != 3 || hit[0] != c.Name || hit[2] != c.Responsible {
			t.Errorf("%s: highlighted %q, the popup shows %q (%s)", phone, hit, c.Name, c.Responsible)
		}
	}
}
