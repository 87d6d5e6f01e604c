package contacts_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/callpop/callpop/contacts"
)

func ExampleChain() {
	// The customer's CRM knows one number (and answers like the PBX's own
	// contact answer); the built-in directory knows another.
	crmSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("phone") == "79101234567" {
			_, _ = io.WriteString(w, `{"contact_name":"Рога и Копыта","responsible":"andy"}`)
			return
		}
		_, _ = io.WriteString(w, `{}`)
	}))
	defer crmSrv.Close()

	crm, err := contacts.NewCRM(contacts.CRMConfig{URLTemplate: crmSrv.URL + "/api/contact?phone={phone}"}, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer crm.Close()
	csv, _ := contacts.Load(strings.NewReader("phone,name,responsible\n74950000000,Globex,mike\n"))
	dir := contacts.Chain(crm, csv)

	for _, phone := range []string{"+7 (910) 123-45-67", "84950000000", "79990000000"} {
		c, ok, err := dir.Lookup(context.Background(), phone)
		fmt.Printf("%q %q %v %v\n", c.Name, c.Responsible, ok, err)
	}
	// Output:
	// "Рога и Копыта" "andy" true <nil>
	// "Globex" "mike" true <nil>
	// "" "" false <nil>
}
