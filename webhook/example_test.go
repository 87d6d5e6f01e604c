package webhook_test

import (
	"fmt"
	"strings"

	"github.com/callpop/callpop/webhook"
)

func ExampleParseBody() {
	body := "cmd=event&type=INCOMING&phone=79101234567&user=andy%40acme&callid=B10D0EB124F4E64AF4EA-1511"
	f, err := webhook.ParseBody("application/x-www-form-urlencoded", strings.NewReader(body), webhook.DefaultMaxBody)
	fmt.Println(f.Cmd(), f["user"], err)

	_, err = webhook.ParseBody("application/x-www-form-urlencoded", strings.NewReader("a=1&a=2"), webhook.DefaultMaxBody)
	fmt.Println(err)
	// Output:
	// event andy@acme <nil>
	// webhook: body not parseable: field "a" repeated
}
