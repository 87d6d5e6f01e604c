//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
)

// report is one run's figures: printed as a table and as one JSON line.
type report struct {
	Server      string   `json:"server"`
	Mode        string   `json:"mode"`
	Targets     []string `json:"targets"`
	Sessions    int      `json:"sessions"`
	Connected   int      `json:"connected"`
	Users       int      `json:"users"`
	Tenants     int      `json:"tenants,omitempty"`
	Group       int      `json:"group,omitempty"`
	SourceIPs   int      `json:"source_ips"`
	NoFileLimit uint64   `json:"nofile_limit"`

	ConnectSeconds float64        `json:"connect_s"`
	HelloLatency   latencySummary `json:"hello_latency"`
	DialErrors     int64          `json:"dial_errors"`
	NoHello        int64          `json:"no_hello"`

	Rate           float64          `json:"rate"`
	Duration       float64          `json:"duration_s"`
	Webhooks       int64            `json:"webhooks"`
	AchievedRate   float64          `json:"achieved_rate"`
	CallsPerSecond float64          `json:"calls_per_s,omitempty"`
	HTTPErrors     map[string]int64 `json:"http_errors"`
	PostRTT        latencySummary   `json:"post_rtt"`
	SendLag        latencySummary   `json:"send_lag"`

	Latency       latencySummary      `json:"latency"`
	AcceptLatency *latencySummary     `json:"accept_latency,omitempty"`
	Expected      int64               `json:"expected"`
	Delivered     int64               `json:"delivered"`
	Lost          int64               `json:"lost"`
	Duplicated    int64               `json:"duplicated"`
	OutOfOrder    int64               `json:"out_of_order"`
	Unexpected    int64               `json:"unexpected"`
	Misrouted     int64               `json:"misrouted"`
	Foreign       int64               `json:"foreign"`
	Frames        int64               `json:"frames"`
	ByEvent       map[string][2]int64 `json:"by_event"`
	Disconnects   int64               `json:"disconnects"`
	Codes         map[string]int64    `json:"codes"`

	ServerRSSBeforeKiB  int64   `json:"server_rss_before_kib,omitempty"`
	ServerRSSAfterKiB   int64   `json:"server_rss_after_kib,omitempty"`
	ServerKiBPerSession float64 `json:"server_kib_per_session,omitempty"`
	ServerRSSIdleKiB    int64   `json:"server_rss_idle_kib,omitempty"`
	ServerRSSEndKiB     int64   `json:"server_rss_end_kib,omitempty"`
	ServerIdleCPUPct    float64 `json:"server_idle_cpu_pct,omitempty"`
	ServerLoadCPUPct    float64 `json:"server_load_cpu_pct,omitempty"`
	ToolRSSBeforeKiB    int64   `json:"tool_rss_before_kib"`
	ToolRSSAfterKiB     int64   `json:"tool_rss_after_kib"`
	ToolKiBPerSession   float64 `json:"tool_kib_per_session"`
	ToolLoadCPUPct      float64 `json:"tool_load_cpu_pct"`
	MachineLoadCPUPct   float64 `json:"machine_load_cpu_pct"`
	OtherLoadCPUPct     float64 `json:"other_load_cpu_pct,omitempty"`
	// WatchLoadCPUPct is each --watch-pid process's CPU under load, in % of
	// a core, by its name; part of OtherLoadCPUPct.
	WatchLoadCPUPct   map[string]float64 `json:"watch_load_cpu_pct,omitempty"`
	ServerRunqWaitPct float64            `json:"server_runq_wait_pct,omitempty"`
	ToolRunqWaitPct   float64            `json:"tool_runq_wait_pct"`
	LoadAvgStart      float64            `json:"loadavg_start"`
	LoadAvgEnd        float64            `json:"loadavg_end"`

	StormDropSeconds      float64        `json:"storm_drop_s,omitempty"`
	StormSeconds          float64        `json:"storm_s,omitempty"`
	StormReconnectSeconds float64        `json:"storm_reconnect_s,omitempty"`
	StormReconnected      int            `json:"storm_reconnected,omitempty"`
	StormHelloLatency     latencySummary `json:"storm_hello_latency,omitzero"`
	StormEvents           int64          `json:"storm_events,omitempty"`
	StormExpected         int64          `json:"storm_expected,omitempty"`
	StormDelivered        int64          `json:"storm_delivered,omitempty"`
	StormLost             int64          `json:"storm_lost,omitempty"`
	ResumeMisses          int64          `json:"resume_misses"`
	NoResumePoint         int64          `json:"no_resume_point"`

	OK bool `json:"ok"`
}

func (r *report) writeJSON(w io.Writer) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func fmtLat(l latencySummary) string {
	if l.N == 0 {
		return "-"
	}
	return fmt.Sprintf("p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f ms  (n=%d)", l.P50, l.P90, l.P99, l.P999, l.Max, l.N)
}

func fmtMap(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s: %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

func (r *report) writeTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	mode := r.Mode
	if r.Group > 0 {
		mode = fmt.Sprintf("%s (G=%d)", mode, r.Group)
	}
	row("mode", "%s on %s  targets %s", mode, r.Server, strings.Join(r.Targets, ","))
	row("sessions", "%d of %d connected over %d users in %.2f s; dial errors %d, no hello %d", r.Connected, r.Sessions, r.Users, r.ConnectSeconds, r.DialErrors, r.NoHello)
	row("hello latency", "%s", fmtLat(r.HelloLatency))
	row("webhooks", "%d sent, %.1f/s achieved of %.0f/s asked", r.Webhooks, r.AchievedRate, r.Rate)
	if r.CallsPerSecond > 0 {
		row("group calls", "%.1f calls/s", r.CallsPerSecond)
	}
	row("HTTP errors", "%s", fmtMap(r.HTTPErrors))
	row("webhook POST round trip", "%s", fmtLat(r.PostRTT))
	row("sender lag", "%s", fmtLat(r.SendLag))
	row("webhook → frame", "%s", fmtLat(r.Latency))
	if r.AcceptLatency != nil {
		row("ACCEPTED → frames", "%s", fmtLat(*r.AcceptLatency))
	}
	row("frames delivered/expected", "%d / %d", r.Delivered, r.Expected)
	row("lost", "%d", r.Lost)
	row("duplicated", "%d", r.Duplicated)
	row("out of order, unexpected, misrouted", "%d, %d, %d", r.OutOfOrder, r.Unexpected, r.Misrouted)
	row("disconnects", "%d  (%s)", r.Disconnects, fmtMap(r.Codes))
	if r.ServerRSSAfterKiB > 0 {
		row("server RSS", "%d KiB before, %d KiB after connecting: %.1f KiB/session", r.ServerRSSBeforeKiB, r.ServerRSSAfterKiB, r.ServerKiBPerSession)
		if r.ServerRSSIdleKiB > 0 {
			row("server idle CPU", "%.1f %% of a core  (RSS %d KiB)", r.ServerIdleCPUPct, r.ServerRSSIdleKiB)
		}
		row("server CPU under load", "%.1f %% of a core  (RSS at end %d KiB)", r.ServerLoadCPUPct, r.ServerRSSEndKiB)
	}
	if len(r.WatchLoadCPUPct) > 0 {
		row("watched CPU under load", "%s (%% of a core)", fmtWatch(r.WatchLoadCPUPct))
	}
	row("tool", "RSS %d → %d KiB: %.1f KiB/session; CPU under load %.1f %% of a core", r.ToolRSSBeforeKiB, r.ToolRSSAfterKiB, r.ToolKiBPerSession, r.ToolLoadCPUPct)
	others, srvWait := "-", "-"
	if r.ServerRSSAfterKiB > 0 {
		others = fmt.Sprintf("%.1f %%", r.OtherLoadCPUPct)
	}
	if r.ServerRunqWaitPct > 0 {
		srvWait = fmt.Sprintf("%.1f %%", r.ServerRunqWaitPct)
	}
	row("machine CPU under load", "%.1f %% of a core, all processes (others than server and tool: %s); load average %.2f → %.2f", r.MachineLoadCPUPct, others, r.LoadAvgStart, r.LoadAvgEnd)
	row("waiting for a CPU under load", "server %s, tool %.1f %% of the time (run-queue wait, all threads)", srvWait, r.ToolRunqWaitPct)
	if r.Mode == modeStorm {
		row("reconnect storm", "%d back in %.3f s from the drop (%.3f s from the first redial; drop took %.3f s)", r.StormReconnected, r.StormSeconds, r.StormReconnectSeconds, r.StormDropSeconds)
		row("storm hello latency", "%s", fmtLat(r.StormHelloLatency))
		row("storm events", "%d posted: frames %d / %d delivered, %d lost; resume misses %d, no resume point %d", r.StormEvents, r.StormDelivered, r.StormExpected, r.StormLost, r.ResumeMisses, r.NoResumePoint)
	}
	verdict := "OK: nothing lost or duplicated"
	if !r.OK {
		verdict = "FAIL: frames lost or duplicated"
	}
	row("result", "%s", verdict)
	tw.Flush()
}

// fmtWatch prints name=pct pairs in name order.
func fmtWatch(m map[string]float64) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = fmt.Sprintf("%s %.1f", n, m[n])
	}
	return strings.Join(parts, ", ")
}
