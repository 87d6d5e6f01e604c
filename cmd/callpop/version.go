package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
)

// version and revision may be stamped at build time:
// -ldflags "-X main.version=v1.2.3 -X main.revision=…" (deploy/docker/Dockerfile
// builds without .git). Empty: what Go recorded in the binary's build info —
// the module version and the VCS revision of a `go build` in a checkout.
var version, revision string

// buildInfo is what `callpop version` prints and callpop_build_info exports.
type buildInfo struct {
	Version   string // v1.2.3, a pseudo-version, or "(devel)"
	GoVersion string // go1.26.8
	Revision  string // the VCS commit, "+dirty" when the tree had changes; "unknown" when none was recorded
}

// readBuildInfo reads the binary's build info; an -ldflags stamp wins.
func readBuildInfo() buildInfo {
	b := buildInfo{Version: "(devel)", GoVersion: runtime.Version(), Revision: "unknown"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			b.Version = bi.Main.Version
		}
		var dirty bool
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && b.Revision != "unknown" {
			b.Revision += "+dirty"
		}
	}
	if version != "" {
		b.Version = version
	}
	if revision != "" {
		b.Revision = revision
	}
	return b
}

// printVersion answers `callpop version` and `callpop --version`.
func printVersion(w io.Writer) {
	b := readBuildInfo()
	fmt.Fprintf(w, "callpop %s (%s, revision %s)\n", b.Version, b.GoVersion, b.Revision)
}

// newBuildInfo is callpop_build_info: always 1, its labels say which build
// runs, so a dashboard can tell a half-finished rollout at a glance.
func newBuildInfo() prometheus.Collector {
	b := readBuildInfo()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "callpop_build_info",
		Help: "Always 1; the labels name the running build (version, Go version, VCS revision).",
		ConstLabels: prometheus.Labels{
			"version": b.Version, "goversion": b.GoVersion, "revision": b.Revision,
		},
	})
	g.Set(1)
	return g
}
