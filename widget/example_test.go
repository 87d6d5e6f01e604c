package widget_test

import (
	"net/http"
	"strings"

	"github.com/callpop/callpop/widget"
)

// The server mounts the widget for the CRM origins it trusts, and the demo
// page in demo mode.
func ExampleHandler() {
	allowed := func(origin string) bool { return strings.HasSuffix(origin, ".crm.example.com") }
	mux := http.NewServeMux()
	mux.Handle("GET /widget.js", widget.Handler(allowed))
	mux.Handle("GET /demo", widget.DemoHandler())
	_ = http.ListenAndServe // e.g. http.ListenAndServe(":8080", mux)
}
