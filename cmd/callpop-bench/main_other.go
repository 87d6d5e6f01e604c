//go:build !linux

// The load tool reads /proc and binds source addresses with a Linux socket
// option; elsewhere it only says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "callpop-bench runs on Linux only (it reads /proc and uses IP_BIND_ADDRESS_NO_PORT)")
	os.Exit(1)
}
