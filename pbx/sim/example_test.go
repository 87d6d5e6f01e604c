package sim_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/callpop/callpop/pbx/sim"
)

func ExamplePBX_GroupCall() {
	// A stand-in for callpop's webhook endpoint that prints what it gets.
	var mu sync.Mutex
	crm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f, _ := url.ParseQuery(string(body))
		mu.Lock()
		fmt.Println(strings.TrimSpace(strings.Join([]string{f.Get("cmd"), f.Get("type"), f.Get("user"), f.Get("status")}, " ")))
		mu.Unlock()
		io.WriteString(w, "{}")
	}))
	defer crm.Close()

	p := sim.New(sim.Config{
		Token:    "pbx-token",
		CRMURL:   crm.URL,
		CRMToken: "crm-token",
		Accounts: []sim.Account{{Name: "andy", Ext: "708"}, {Name: "mike", Ext: "702"}},
		Groups:   []sim.Group{{ID: "sales", RealName: "Sales", Members: []string{"andy", "mike"}}},
		Step:     time.Millisecond,
	}, nil)
	defer p.Close()

	if _, err := p.GroupCall(context.Background(), "sales", "mike", "+79101234567"); err != nil {
		fmt.Println(err)
	}
	// Output:
	// contact
	// event INCOMING andy
	// event INCOMING mike
	// event ACCEPTED mike
	// event CANCELLED andy
	// event COMPLETED mike
	// history in mike Success
}
