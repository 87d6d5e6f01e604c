package widget_test

import (
	"net/http"
	"strings"

	"github.com/callpop/callpop/widget"
)

// The server mounts the widget, its panel and its stylesheet for the CRM
// origins it trusts (widget.js imports the panel from
// <its server>/widget-panel.js, with CORS when the page is on another origin,
// and links <its server>/widget.css where it cannot adopt its built-in
// styles), and the demo page in demo mode.
func ExampleHandler() {
	allowed := func(origin string) bool { return strings.HasSuffix(origin, ".crm.example.com") }
	mux := http.NewServeMux()
	mux.Handle("GET /widget.js", widget.Handler(allowed))
	mux.Handle("GET /widget-panel.js", widget.PanelHandler(allowed))
	mux.Handle("GET /widget.css", widget.StyleHandler(allowed))
	mux.Handle("GET /demo", widget.DemoHandler())
	_ = http.ListenAndServe // e.g. http.ListenAndServe(":8080", mux)
}
