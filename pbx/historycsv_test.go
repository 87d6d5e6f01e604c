package pbx_test

import (
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/callpop/callpop/pbx"
)

const header = "UID,type,client,account,via,start,wait,duration,record"

var start = time.Date(2017, 7, 3, 12, 11, 10, 0, time.UTC)

func rec(uid, typ, client, account, via string, wait, duration int, record string) pbx.HistoryRecord {
	return pbx.HistoryRecord{UID: uid, Type: typ, Client: client, Account: account, Via: via, Start: start, Wait: wait, Duration: duration, Record: record}
}

func TestParseHistoryReadsEdgeCases(t *testing.T) {
	t.Parallel()
	a := rec("A-1", "in", "79101234567", "andy", "74951234567", 5, 124, "https://link/a.mp3")
	b := rec("B-2", "missed", "89101234567", "sales", "74951234567", 20, 0, "")
	rowA := "A-1,in,79101234567,andy,74951234567,20170703T121110Z,5,124,https://link/a.mp3"
	rowB := "B-2,missed,89101234567,sales,74951234567,20170703T121110Z,20,0,"
	for _, tc := range []struct {
		name string
		in   string
		want []pbx.HistoryRecord
	}{
		{"LF", header + "\n" + rowA + "\n" + rowB + "\n", []pbx.HistoryRecord{a, b}},
		{"CRLF", header + "\r\n" + rowA + "\r\n" + rowB + "\r\n", []pbx.HistoryRecord{a, b}},
		{"CR", header + "\r" + rowA + "\r" + rowB + "\r", []pbx.HistoryRecord{a, b}},
		{"no final newline", header + "\n" + rowA + "\n" + rowB, []pbx.HistoryRecord{a, b}},
		{"BOM", "\ufeff" + header + "\r\n" + rowA + "\r\n", []pbx.HistoryRecord{a}},
		{"no header", rowA + "\n" + rowB + "\n", []pbx.HistoryRecord{a, b}},
		{"header only", header + "\r\n", nil},
		{"empty", "", nil},
		{"blank lines", header + "\n\n" + rowA + "\n\n\n" + rowB + "\n\n", []pbx.HistoryRecord{a, b}},
		{"empty record link", header + "\n" + rowB + "\n", []pbx.HistoryRecord{b}},
		{
			"quoted fields with commas, quotes and line breaks",
			header + "\r\n" + `"A-1","in","79101234567","Petrov, ""Andy""","74951234567","20170703T121110Z","5","124","https://link/a.mp3?x=1,2"` + "\r\n",
			[]pbx.HistoryRecord{rec("A-1", "in", "79101234567", `Petrov, "Andy"`, "74951234567", 5, 124, "https://link/a.mp3?x=1,2")},
		},
		{
			"quoted field with a line break",
			header + "\r\n" + `A-1,in,79101234567,"two` + "\r\n" + `lines",74951234567,20170703T121110Z,5,124,` + "\r\n",
			[]pbx.HistoryRecord{rec("A-1", "in", "79101234567", "two\nlines", "74951234567", 5, 124, "")},
		},
		{"short row", header + "\nA-1,in,79101234567\n", []pbx.HistoryRecord{{UID: "A-1", Type: "in", Client: "79101234567"}}},
		{
			"header in another order with an extra column",
			"record,UID,extra,client,type,start,duration\nhttps://r,A-1,zzz,79101234567,OUT,20170703T121110Z,7\n",
			[]pbx.HistoryRecord{{UID: "A-1", Type: "out", Client: "79101234567", Start: start, Duration: 7, Record: "https://r"}},
		},
		{"upper-case type and spaces", header + "\n A-1 , Missed ,79101234567,,, 20170703T121110Z , 3 , 0 ,\n", []pbx.HistoryRecord{rec("A-1", "missed", "79101234567", "", "", 3, 0, "")}},
		{"other start layouts and durations", header + "\nA-1,in,1,,,2017-07-03 12:11:10,4.6,0:02:04,\nA-2,in,1,,,2017-07-03T12:11:10Z,,,\n", []pbx.HistoryRecord{
			rec("A-1", "in", "1", "", "", 5, 124, ""),
			rec("A-2", "in", "1", "", "", 0, 0, ""),
		}},
		{"empty start", header + "\nA-1,in,1,,,,1,2,\n", []pbx.HistoryRecord{{UID: "A-1", Type: "in", Client: "1", Wait: 1, Duration: 2}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := pbx.ParseHistory(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("ParseHistory: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseHistoryRefusesUnreadableRowsWithLineNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"no UID", header + "\nA-1,in,1,,,,,,\n,in,2,,,,,,\n", "line 3: no UID"},
		{"bad start", header + "\nA-1,in,1,,,yesterday,,,\n", "line 2: start"},
		{"bad wait", header + "\r\nA-1,in,1,,,,ten,,\r\n", "line 2: wait"},
		{"negative duration", header + "\rA-1,in,1,,,,,-5,\r", "line 2: duration"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := pbx.ParseHistory(strings.NewReader(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestWriteHistoryRoundTrips(t *testing.T) {
	t.Parallel()
	recs := []pbx.HistoryRecord{
		rec("A-1", "in", "79101234567", `Petrov, "Andy"`, "74951234567", 5, 124, "https://link/a.mp3"),
		rec("B-2", "missed", "+79101234567", "ivr", "", 30, 0, ""),
		{UID: "C-3", Type: "out", Account: "multi\nline"},
	}
	var buf bytes.Buffer
	if err := pbx.WriteHistory(&buf, recs); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(buf.String(), header+"\n") {
		t.Errorf("no header row: %q", buf.String())
	}
	got, err := pbx.ParseHistory(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, recs) {
		t.Errorf("got  %+v\nwant %+v", got, recs)
	}
}

func FuzzParseHistory(f *testing.F) {
	f.Add([]byte(header + "\r\nA-1,in,79101234567,andy,74951234567,20170703T121110Z,5,124,https://link/a.mp3\r\n"))
	f.Add([]byte("\ufeff" + header + "\r" + `"A,1","in","7""9",,,,1:2:3,4.5,` + "\r"))
	f.Add([]byte("record,UID\nx,y\n"))
	f.Add([]byte("\"unterminated\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := pbx.ParseHistory(bytes.NewReader(data))
		if err != nil {
			return
		}
		// What was read must survive a write and a second read.
		var buf bytes.Buffer
		if err := pbx.WriteHistory(&buf, recs); err != nil {
			t.Fatalf("WriteHistory: %v", err)
		}
		again, err := pbx.ParseHistory(&buf)
		if err != nil {
			t.Fatalf("reparse: %v\n%q", err, buf.String())
		}
		if len(again) != len(recs) {
			t.Fatalf("reparse gave %d records, want %d", len(again), len(recs))
		}
		for i := range recs {
			if again[i].UID != recs[i].UID || again[i].Duration != recs[i].Duration || !again[i].Start.Equal(recs[i].Start) {
				t.Fatalf("record %d: %+v != %+v", i, again[i], recs[i])
			}
		}
	})
}

func TestClientHistoryReadsEdgeCasesOverHTTP(t *testing.T) {
	t.Parallel()
	rows := []string{
		header,
		`"A-1",in,79101234567,"Petrov, ""Andy""",74951234567,20170703T121110Z,5,124,"https://link/a.mp3?x=1,2"`,
		`B-2,missed,89101234567,sales,74951234567,20170703T121110Z,20,0,`,
	}
	want := []pbx.HistoryRecord{
		rec("A-1", "in", "79101234567", `Petrov, "Andy"`, "74951234567", 5, 124, "https://link/a.mp3?x=1,2"),
		rec("B-2", "missed", "89101234567", "sales", "74951234567", 20, 0, ""),
	}
	for name, body := range map[string]string{
		"LF":       strings.Join(rows, "\n") + "\n",
		"CRLF":     strings.Join(rows, "\r\n") + "\r\n",
		"CR":       strings.Join(rows, "\r"),
		"BOM CRLF": "\ufeff" + strings.Join(rows, "\r\n"),
	} {
		srv, _ := countingServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/csv")
			io.WriteString(w, body)
		})
		got, err := newClient(t, srv.URL, pbx.Config{}).History(t.Context(), pbx.HistoryQuery{})
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %+v, %v", name, got, err)
		}
	}
}
