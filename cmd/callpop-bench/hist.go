//go:build linux

package main

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a lock-free log-linear latency histogram: each power-of-two range
// of nanoseconds is cut into 64 buckets, so a quantile is exact to within
// 1/64 (1.6 %) of its value. Many reader goroutines record into one.
type hist struct {
	counts [64 * 64]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64
	max    atomic.Int64
}

const subBits = 6 // 64 sub-buckets per power of two

func bucketOf(v int64) int {
	if v < 1<<subBits {
		if v < 0 {
			return 0
		}
		return int(v)
	}
	exp := bits.Len64(uint64(v)) - 1 // ≥ subBits
	sub := int(uint64(v)>>(exp-subBits)) & (1<<subBits - 1)
	return (exp-subBits+1)<<subBits | sub
}

// lowOf returns the smallest value of bucket b; upper bound is lowOf(b+1).
func lowOf(b int) int64 {
	if b < 1<<subBits {
		return int64(b)
	}
	exp := b>>subBits + subBits - 1
	sub := int64(b & (1<<subBits - 1))
	return (1<<subBits | sub) << (exp - subBits)
}

func (h *hist) record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	b := bucketOf(v)
	if b >= len(h.counts) {
		b = len(h.counts) - 1
	}
	h.counts[b].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// quantile returns the value at q (0..1): the midpoint of its bucket, never
// above the maximum seen.
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for b := range h.counts {
		seen += h.counts[b].Load()
		if seen >= rank {
			lo, hi := lowOf(b), lowOf(b+1)
			v := lo + (hi-lo)/2
			if m := h.max.Load(); v > m {
				v = m
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max.Load())
}

func (h *hist) mean() time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(h.sum.Load() / n)
}

// latencySummary is a histogram's figures, in milliseconds for the report.
type latencySummary struct {
	N    uint64  `json:"n"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
	Mean float64 `json:"mean_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func (h *hist) summary() latencySummary {
	return latencySummary{
		N: h.n.Load(), P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)),
		P999: ms(h.quantile(0.999)), Max: ms(time.Duration(h.max.Load())), Mean: ms(h.mean()),
	}
}
