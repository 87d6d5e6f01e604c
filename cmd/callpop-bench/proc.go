//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// raiseNoFile lifts the soft open-files limit to the hard one.
func raiseNoFile() (uint64, error) {
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	if l.Cur < l.Max {
		l.Cur = l.Max
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &l); err != nil {
			return 0, err
		}
	}
	return l.Cur, nil
}

// procRSS returns a process's resident set in KiB (VmRSS of /proc/<pid>/status).
func procRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("pid %d: no VmRSS", pid)
}

// clockTick is USER_HZ, 100 on every Linux architecture Go runs on.
const clockTick = 100

// procCPU returns a process's user+system CPU time, all threads.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may hold spaces: fields count from the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("pid %d: unreadable stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("pid %d: short stat", pid)
	}
	// After ')': state(3) ... utime is field 14, stime 15 → f[11], f[12].
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("pid %d: unreadable cpu times", pid)
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// serverProbe reads the servers' memory and CPU, from /proc when their pids
// are known, else from their /metrics (process_resident_memory_bytes,
// process_cpu_seconds_total). All figures are summed over the servers.
type serverProbe struct {
	pids    []int
	metrics []string
	client  *http.Client
}

func (p *serverProbe) enabled() bool { return len(p.pids) > 0 || len(p.metrics) > 0 }

// sample returns RSS in KiB and CPU time; ok=false when not configured.
func (p *serverProbe) sample(ctx context.Context) (rssKiB int64, cpu time.Duration, err error) {
	if len(p.pids) > 0 {
		for _, pid := range p.pids {
			r, err := procRSS(pid)
			if err != nil {
				return 0, 0, err
			}
			c, err := procCPU(pid)
			if err != nil {
				return 0, 0, err
			}
			rssKiB += r
			cpu += c
		}
		return rssKiB, cpu, nil
	}
	for _, u := range p.metrics {
		r, c, err := p.scrape(ctx, u)
		if err != nil {
			return 0, 0, err
		}
		rssKiB += r
		cpu += c
	}
	return rssKiB, cpu, nil
}

func (p *serverProbe) scrape(ctx context.Context, u string) (rssKiB int64, cpu time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, fmt.Errorf("%s: HTTP %d", u, resp.StatusCode)
	}
	var gotRSS bool
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				rssKiB, gotRSS = int64(f/1024), true
			}
		}
		if v, ok := strings.CutPrefix(line, "process_cpu_seconds_total "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				cpu = time.Duration(f * float64(time.Second))
			}
		}
	}
	if !gotRSS {
		return 0, 0, fmt.Errorf("%s: no process_resident_memory_bytes", u)
	}
	return rssKiB, cpu, sc.Err()
}

// machineCPU returns the CPU time all cores spent busy (not idle or waiting
// for I/O), from /proc/stat: with the server's and the tool's own, it tells
// how much of the machine other processes took during a measurement.
func machineCPU() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 6 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: unexpected %q", line)
	}
	var busy uint64
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, err
		}
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTick, nil
}

// loadAvg returns the 1-minute load average.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// runqWait returns how long a process's threads (those alive now) waited
// runnable for a CPU (the second field of /proc/<pid>/task/*/schedstat): on
// a shared machine, the share of a measurement the process was starved.
func runqWait(pid int) time.Duration {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total uint64
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/schedstat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) < 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			total += v
		}
	}
	return time.Duration(total)
}

// namedPID is a --watch-pid process.
type namedPID struct {
	name string
	pid  int
}

// watchCPU returns each process's CPU time, by name; a process that cannot
// be read is left out.
func watchCPU(ps []namedPID) map[string]time.Duration {
	out := make(map[string]time.Duration, len(ps))
	for _, p := range ps {
		if c, err := procCPU(p.pid); err == nil {
			out[p.name] = c
		}
	}
	return out
}
