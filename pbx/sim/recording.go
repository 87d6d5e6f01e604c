package sim

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/http"
	"path"
	"strings"
	"sync"
	"time"
)

// recordingRate and recordingLength shape the recording every answered
// call gets: 8 kHz, as telephony records, and long enough to hear.
const (
	recordingRate   = 8000
	recordingLength = 3 * time.Second
)

// recording is the WAV every answered call plays: a quiet two-tone chime,
// PCM 16-bit mono, made once (48 KB) so the simulator needs no files.
var recording = sync.OnceValue(func() []byte {
	n := int(recordingLength / time.Second * recordingRate)
	pcm := make([]int16, n)
	for i := range pcm {
		t := float64(i) / recordingRate
		f := 440.0 // A4, then E5 for the second half
		if i >= n/2 {
			f = 659.25
		}
		// fade each half in and out over 50 ms so it does not click
		k := i % (n / 2)
		env := math.Min(1, math.Min(float64(k), float64(n/2-k))/(0.05*recordingRate))
		pcm[i] = int16(0.15 * math.MaxInt16 * env * math.Sin(2*math.Pi*f*t))
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	data := uint32(2 * n)
	b.WriteString("RIFF")
	_ = binary.Write(&b, le, 36+data)
	b.WriteString("WAVEfmt ")
	_ = binary.Write(&b, le, struct {
		Size                      uint32
		Format, Channels          uint16
		Rate, ByteRate            uint32
		BlockAlign, BitsPerSample uint16
	}{16, 1, 1, recordingRate, 2 * recordingRate, 2, 16})
	b.WriteString("data")
	_ = binary.Write(&b, le, data)
	_ = binary.Write(&b, le, pcm)
	return b.Bytes()
})

// Recordings serves the recording of every answered call the simulator
// played, at <callid>.wav under wherever it is mounted (the last path
// element is the file), as audio/wav with range requests, so a CRM page of
// any origin can play the history's link. Anything else answers 404.
func (p *PBX) Recordings() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		id, ok := strings.CutSuffix(path.Base(r.URL.Path), ".wav")
		if !ok || !p.answered(id) {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "audio/wav")
		w.Header().Set("Cache-Control", "public, max-age=86400")
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(recording()))
	})
}

// answered reports whether callid is a leg the history lists as answered.
func (p *PBX) answered(callid string) bool {
	if callid == "" {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.history {
		if r.UID == callid && r.Record != "" {
			return true
		}
	}
	return false
}
