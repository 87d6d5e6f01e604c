package auth_test

import (
	"fmt"
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
	const host = "callpop.example.net"
	for _, origin := range []string{"https://crm.example.com", "https://shop.example.org", "https://evil.com", "https://callpop.example.net"} {
		fmt.Println(origin, o.Allow(origin, host))
	}
	// Output:
	// https://crm.example.com true
	// https://shop.example.org true
	// https://evil.com false
	// https://callpop.example.net true
}
