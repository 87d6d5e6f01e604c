package pbx_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/callpop/callpop/pbx"
	"github.com/callpop/callpop/pbx/sim"
)

func ExampleClient_MakeCall() {
	pbxSim := sim.New(sim.Config{
		Token:    "pbx-token",
		Accounts: []sim.Account{{Name: "andy", RealName: "Andrey Petrov", Ext: "708"}},
	}, nil)
	defer pbxSim.Close()
	srv := httptest.NewServer(pbxSim)
	defer srv.Close()

	c, err := pbx.New(pbx.Config{URL: srv.URL + "/sys/crm_api.wcgp", Token: "pbx-token"})
	if err != nil {
		panic(err)
	}
	id, err := c.MakeCall(context.Background(), "andy", "79101234567")
	fmt.Println(id != "", err)

	_, err = c.MakeCall(context.Background(), "nobody", "79101234567")
	fmt.Println(errors.Is(err, pbx.ErrInvalidParameters), errors.Is(err, pbx.ErrUnavailable))
	// Output:
	// true <nil>
	// true false
}

func ExampleParseHistory() {
	csv := "UID,type,client,account,via,start,wait,duration,record\r\n" +
		"B10D0EB124F4E64AFAEA-1511,in,79101234567,\"Petrov, Andy\",74951234567,20170703T121110Z,5,124,\r\n"
	recs, err := pbx.ParseHistory(stringReader(csv))
	if err != nil {
		panic(err)
	}
	r := recs[0]
	fmt.Println(r.UID, r.Type, r.Account, r.Start, r.Duration, r.Record == "")
	// Output: B10D0EB124F4E64AFAEA-1511 in Petrov, Andy 2017-07-03 12:11:10 +0000 UTC 124 true
}
