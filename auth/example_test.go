package auth_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/callpop/callpop/auth"
)

func ExampleJWT() {
	j, err := auth.NewJWT("0123456789abcdef0123456789abcdef") // CALLPOP_JWT_SECRET, ≥ 32 bytes
	if err != nil {
		fmt.Println(err)
		return
	}
	tok, _ := j.Mint("Andy@Acme", time.Hour) // what the CRM backend hands to the page
	id, err := j.Verify(tok)
	fmt.Println(id.User, id.Key, err)
	// Output:
	// Andy@Acme andy <nil>
}

func ExampleParseOrigins() {
	o, err := auth.ParseOrigins("https://crm.example.com, https://*.example.org")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, origin := range []string{"https://crm.example.com", "https://shop.example.org", "https://evil.com", "http://crm.example.com"} {
		fmt.Println(origin, o.Allow(origin))
	}
	// A page of callpop's own origin needs no entry: the scheme it was
	// reached by and its Host (auth.SameOrigin).
	r := httptest.NewRequest(http.MethodGet, "https://callpop.example.net/ws", nil)
	for _, origin := range []string{"https://callpop.example.net", "http://callpop.example.net"} {
		r.Header.Set("Origin", origin)
		fmt.Println(origin, o.AllowRequest(r))
	}
	// Output:
	// https://crm.example.com true
	// https://shop.example.org true
	// https://evil.com false
	// http://crm.example.com false
	// https://callpop.example.net true
	// http://callpop.example.net false
}
