package pbx

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
)

// HistoryRecord is one row of the history CSV (docs/pbx-api.md, history).
type HistoryRecord struct {
	// UID is the call id.
	UID string
	// Type is TypeIn, TypeOut or TypeMissed, lower-cased.
	Type string
	// Client is the client's number.
	Client string
	// Account is the employee's login, or a group's name, or "ivr" / "fax"
	// when the call reached nobody.
	Account string
	// Via is the number an incoming call came through, or the caller id of
	// an outgoing one.
	Via string
	// Start is when the call started, in UTC; zero when the row has none.
	Start time.Time
	// Wait is the seconds the client waited for an answer.
	Wait int
	// Duration is the seconds of talk.
	Duration int
	// Record is the recording's URL; empty when there is none.
	Record string
}

// historyColumns is the documented column order, also the header row.
var historyColumns = [...]string{"UID", "type", "client", "account", "via", "start", "wait", "duration", "record"}

// The positions of historyColumns.
const (
	colUID = iota
	colType
	colClient
	colAccount
	colVia
	colStart
	colWait
	colDuration
	colRecord
	numColumns
)

// ParseHistory reads a history CSV answer. It is lenient where PBXs differ:
// a UTF-8 byte order mark is dropped; lines may end in CRLF, LF or a lone CR
// (a lone CR inside a quoted field therefore reads as LF); quoted fields may
// hold commas, doubled quotes and line breaks; an optional first row with a
// field "UID" (any case) is the header: it names the columns, which may then come in any order
// and extra columns are ignored — without one, the documented order is
// assumed; short rows leave the missing fields empty; blank lines are
// skipped; fields are trimmed of white space; empty wait, duration and start
// are zero; start may also be RFC 3339 or "2006-01-02 15:04:05" (UTC); wait
// and duration may be fractional or h:mm:ss. A row without a UID, or with a
// field that cannot be read, fails the whole answer with its line number.
func ParseHistory(r io.Reader) ([]HistoryRecord, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("pbx: history: %w", err)
	}
	data = normalizeNewlines(bytes.TrimPrefix(data, bom))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	index := [numColumns]int{}
	for i := range index {
		index[i] = i
	}
	var recs []HistoryRecord
	for first := true; ; first = false {
		row, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return recs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("pbx: history: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if first && isHeader(row) {
			index = headerIndex(row)
			continue
		}
		if blankRow(row) {
			continue
		}
		rec, err := parseRow(row, &index)
		if err != nil {
			return nil, fmt.Errorf("pbx: history line %d: %w", line, err)
		}
		recs = append(recs, rec)
	}
}

// normalizeNewlines turns CRLF and lone CR into LF, which encoding/csv reads.
func normalizeNewlines(b []byte) []byte {
	if bytes.IndexByte(b, '\r') < 0 {
		return b
	}
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(b, []byte("\r"), []byte("\n"))
}

// isHeader reports whether row names the columns: one of its fields is
// "UID", in any case.
func isHeader(row []string) bool {
	for _, f := range row {
		if strings.EqualFold(strings.TrimSpace(f), "uid") {
			return true
		}
	}
	return false
}

// headerIndex maps each documented column to its position in the header
// row, or -1 when the row lacks it.
func headerIndex(header []string) [numColumns]int {
	var index [numColumns]int
	for c, name := range historyColumns {
		index[c] = -1
		for i, h := range header {
			if strings.EqualFold(strings.TrimSpace(h), name) {
				index[c] = i
				break
			}
		}
	}
	return index
}

func blankRow(row []string) bool {
	for _, f := range row {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// parseRow reads one data row through index.
func parseRow(row []string, index *[numColumns]int) (HistoryRecord, error) {
	get := func(c int) string {
		i := index[c]
		if i < 0 || i >= len(row) {
			return ""
		}
		return strings.TrimSpace(row[i])
	}
	rec := HistoryRecord{
		UID:     get(colUID),
		Type:    strings.ToLower(get(colType)),
		Client:  get(colClient),
		Account: get(colAccount),
		Via:     get(colVia),
		Record:  get(colRecord),
	}
	if rec.UID == "" {
		return HistoryRecord{}, errors.New("no UID")
	}
	var err error
	if s := get(colStart); s != "" {
		if rec.Start, err = parseStart(s); err != nil {
			return HistoryRecord{}, err
		}
	}
	if rec.Wait, err = parseSeconds(get(colWait)); err != nil {
		return HistoryRecord{}, fmt.Errorf("wait: %w", err)
	}
	if rec.Duration, err = parseSeconds(get(colDuration)); err != nil {
		return HistoryRecord{}, fmt.Errorf("duration: %w", err)
	}
	return rec, nil
}

// maxSeconds bounds a wait or duration: a year, far beyond any call.
const maxSeconds = 366 * 24 * 3600

// parseSeconds reads whole seconds: "" is 0, "12", "12.6" (rounded) and
// "1:02:03" / "02:03" are accepted; negative values are not.
func parseSeconds(s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	if strings.Contains(s, ":") {
		total := 0
		parts := strings.Split(s, ":")
		if len(parts) > 3 {
			return 0, fmt.Errorf("%q is no duration", s)
		}
		for _, p := range parts {
			n, err := strconv.Atoi(p)
			if err != nil || n < 0 || n > maxSeconds {
				return 0, fmt.Errorf("%q is no duration", s)
			}
			total = total*60 + n
		}
		if total > maxSeconds {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		return total, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > maxSeconds {
			return 0, fmt.Errorf("%q is out of range", s)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > maxSeconds {
		return 0, fmt.Errorf("%q is no number of seconds", s)
	}
	return int(math.Round(f)), nil
}

// WriteHistory writes recs as the PBX's history CSV: the header row, then
// one row per record, start as TimeFormat (empty when zero), LF line ends.
func WriteHistory(w io.Writer, recs []HistoryRecord) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(historyColumns[:]); err != nil {
		return fmt.Errorf("pbx: history: %w", err)
	}
	for _, r := range recs {
		start := ""
		if !r.Start.IsZero() {
			start = FormatTime(r.Start)
		}
		row := []string{r.UID, r.Type, r.Client, r.Account, r.Via, start, strconv.Itoa(r.Wait), strconv.Itoa(r.Duration), r.Record}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("pbx: history: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("pbx: history: %w", err)
	}
	return nil
}
