package main

import (
	"context"
	"errors"
	"io"
)

// runDemo runs a node on the embedded broker with a simulated PBX and the
// demo CRM page. (Filled in by the widget work.)
func runDemo(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return errors.New("demo: not built yet")
}
