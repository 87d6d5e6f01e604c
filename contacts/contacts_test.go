package contacts_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/callpop/callpop/contacts"
	"github.com/callpop/callpop/event"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in, want string
	}{
		{"InternationalFormIsKept", "79101234567", "79101234567"},
		{"TrunkPrefix8BecomesCountryCode7", "89101234567", "79101234567"},
		{"PlusIsDropped", "+79101234567", "79101234567"},
		{"PunctuationAndSpacesAreDropped", "+7 (910) 123-45-67", "79101234567"},
		{"DottedFormIsDigitsOnly", "8.910.123.45.67", "79101234567"},
		{"TenDigitMobileGetsCountryCode", "9101234567", "79101234567"},
		{"TenDigitMobileWithPunctuationGetsCountryCode", "(910) 123-45-67", "79101234567"},
		{"ShortInternalNumberIsKept", "101", "101"},
		{"FourDigitExtensionIsKept", "1234", "1234"},
		{"ForeignElevenDigitNumberIsKept", "+1 415 555 0100", "14155550100"},
		{"LongerNumberIsKept", "+44 20 7946 0958", "442079460958"},
		{"EmptyStaysEmpty", "", ""},
		{"NoDigitsIsEmpty", "anonymous", ""},
		{"NonASCIIDigitsAreDropped", "٧٩١٠", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := contacts.Normalize(tc.in); got != tc.want {
				t.Errorf("Normalize(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestNormalizeIsIdempotent(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"79101234567", "89101234567", "+7 (910) 123-45-67", "9101234567", "101", "8800", ""} {
		once := contacts.Normalize(in)
		if twice := contacts.Normalize(once); twice != once {
			t.Errorf("Normalize(Normalize(%q)) = %q, want %q", in, twice, once)
		}
	}
}

// entry is one expected look-up of a loaded directory.
type entry struct {
	phone string
	want  event.Contact
}

func TestLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		csv     string
		wantLen int
		want    []entry
	}{
		{
			name:    "HeaderRowIsSkipped",
			csv:     "phone,name,responsible\n79101234567,Acme,andy\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Acme", Responsible: "andy"}}},
		},
		{
			name:    "HeaderIsMatchedCaseInsensitively",
			csv:     "PHONE , Name,Responsible\n79101234567,Acme,andy\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Acme", Responsible: "andy"}}},
		},
		{
			name:    "FileWithoutHeaderLoadsFirstRow",
			csv:     "79101234567,Acme,andy\n74950000000,Globex,mike\n",
			wantLen: 2,
			want: []entry{
				{"79101234567", event.Contact{Name: "Acme", Responsible: "andy"}},
				{"74950000000", event.Contact{Name: "Globex", Responsible: "mike"}},
			},
		},
		{
			name:    "BOMBeforeHeaderIsIgnored",
			csv:     "\ufeffphone,name,responsible\n79101234567,Acme,andy\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Acme", Responsible: "andy"}}},
		},
		{
			// Spreadsheet exports that quote every cell write the BOM
			// right before the first quote.
			name:    "BOMBeforeQuotedHeaderIsIgnored",
			csv:     "\ufeff\"phone\",\"name\",\"responsible\"\n\"79101234567\",\"Acme\",\"andy\"\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Acme", Responsible: "andy"}}},
		},
		{
			name:    "BOMBeforeFirstDataRowIsIgnored",
			csv:     "\ufeff79101234567,Acme,andy\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Acme", Responsible: "andy"}}},
		},
		{
			name:    "QuotedNameKeepsItsCommas",
			csv:     "phone,name,responsible\n79101234567,\"Рога и Копыта, ООО\",andy\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Рога и Копыта, ООО", Responsible: "andy"}}},
		},
		{
			name:    "QuotedNameKeepsEscapedQuotes",
			csv:     "79101234567,\"ООО \"\"Ромашка\"\"\",andy\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "ООО \"Ромашка\"", Responsible: "andy"}}},
		},
		{
			name:    "PhonesInAnyFormAreNormalized",
			csv:     "+7 (910) 123-45-67,Acme,andy\n8 495 000-00-00,Globex,mike\n9031112233,Initech,\n",
			wantLen: 3,
			want: []entry{
				{"79101234567", event.Contact{Name: "Acme", Responsible: "andy"}},
				{"+79101234567", event.Contact{Name: "Acme", Responsible: "andy"}},
				{"89101234567", event.Contact{Name: "Acme", Responsible: "andy"}},
				{"74950000000", event.Contact{Name: "Globex", Responsible: "mike"}},
				{"79031112233", event.Contact{Name: "Initech"}},
			},
		},
		{
			name:    "ResponsibleIsOptional",
			csv:     "79101234567,Acme\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Acme"}}},
		},
		{
			name:    "ExtraColumnsAreIgnored",
			csv:     "phone,name,responsible,email\n79101234567,Acme,andy,info@acme.example\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Acme", Responsible: "andy"}}},
		},
		{
			name:    "RowsMayDifferInLength",
			csv:     "79101234567,Acme\n74950000000,Globex,mike,extra\n",
			wantLen: 2,
			want: []entry{
				{"79101234567", event.Contact{Name: "Acme"}},
				{"74950000000", event.Contact{Name: "Globex", Responsible: "mike"}},
			},
		},
		{
			name:    "SpacesAroundFieldsAreTrimmed",
			csv:     "79101234567,  Acme  , andy \n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Acme", Responsible: "andy"}}},
		},
		{
			name:    "CRLFLineEndingsAreRead",
			csv:     "phone,name,responsible\r\n79101234567,Acme,andy\r\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Acme", Responsible: "andy"}}},
		},
		{
			name:    "BlankLinesAreSkipped",
			csv:     "phone,name\n\n79101234567,Acme\n\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "Acme"}}},
		},
		{
			name:    "LaterRowForSameNumberWins",
			csv:     "79101234567,Old\n89101234567,New,andy\n",
			wantLen: 1,
			want:    []entry{{"79101234567", event.Contact{Name: "New", Responsible: "andy"}}},
		},
		{
			name:    "ShortInternalNumberIsLoaded",
			csv:     "101,Reception\n",
			wantLen: 1,
			want:    []entry{{"101", event.Contact{Name: "Reception"}}},
		},
		{
			name:    "EmptyFileIsAnEmptyDirectory",
			csv:     "",
			wantLen: 0,
		},
		{
			name:    "HeaderOnlyIsAnEmptyDirectory",
			csv:     "phone,name,responsible\n",
			wantLen: 0,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := contacts.Load(strings.NewReader(tc.csv))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if d.Len() != tc.wantLen {
				t.Errorf("Len() = %d, want %d", d.Len(), tc.wantLen)
			}
			for _, e := range tc.want {
				c, ok, err := d.Lookup(t.Context(), e.phone)
				if err != nil || !ok {
					t.Errorf("Lookup(%q) = ok %v, err %v; want found", e.phone, ok, err)
					continue
				}
				if c != e.want {
					t.Errorf("Lookup(%q) = %+v, want %+v", e.phone, c, e.want)
				}
			}
		})
	}
}

func TestLoadRejectsBadRowsNamingTheirLine(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		csv      string
		wantLine string // a substring the error must hold
	}{
		{"RowWithOneColumnIsRefused", "phone,name\n79101234567,Acme\n79101234568\n", "line 3"},
		{"FirstRowWithOneColumnIsRefused", "79101234567\n", "line 1"},
		{"RowWithoutDigitsIsRefused", "phone,name\n79101234567,Acme\nnot-a-phone,Globex\n", "line 3"},
		{"RowWithEmptyPhoneIsRefused", "79101234567,Acme\n,Globex\n", "line 2"},
		{"NameWithControlCharacterIsRefused", "79101234567,Ac\x07me\n", "line 1"},
		{"QuotedNameWithNewlineIsRefused", "79101234567,\"Ac\nme\"\n", "line 1"},
		{"UnterminatedQuoteIsRefused", "phone,name\n79101234567,\"Acme\n", "line 2"},
		{"BareQuoteIsRefused", "phone,name\n79101234567,Ac\"me\n", "line 2"},
		{"UnknownHeaderIsRefusedAsBadFirstRow", "telephone,name\n79101234567,Acme\n", "line 1"},
		// The line is the file's line, not the record's number: blank
		// lines (which encoding/csv skips) count.
		{"LineCountsBlankLines", "phone,name\n\n79101234567,Acme\n\nnot-a-phone,Globex\n", "line 5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := contacts.Load(strings.NewReader(tc.csv))
			if err == nil {
				t.Fatalf("Load succeeded with %d contacts, want an error", d.Len())
			}
			if !strings.Contains(err.Error(), tc.wantLine) {
				t.Errorf("Load error %q does not name %q", err, tc.wantLine)
			}
			if !strings.HasPrefix(err.Error(), "contacts: ") {
				t.Errorf("Load error %q lacks the package prefix", err)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	t.Parallel()
	t.Run("ExistingFileIsLoaded", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "contacts.csv")
		if err := os.WriteFile(path, []byte("phone,name,responsible\n89101234567,Acme,andy\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		d, err := contacts.LoadFile(path)
		if err != nil {
			t.Fatalf("LoadFile: %v", err)
		}
		if c, ok, _ := d.Lookup(t.Context(), "+79101234567"); !ok || c.Name != "Acme" {
			t.Errorf("Lookup = %+v, %v; want Acme", c, ok)
		}
	})
	t.Run("MissingFileIsAnError", func(t *testing.T) {
		t.Parallel()
		_, err := contacts.LoadFile(filepath.Join(t.TempDir(), "missing.csv"))
		if err == nil || !os.IsNotExist(unwrapAll(err)) {
			t.Errorf("LoadFile(missing) = %v, want a not-exist error", err)
		}
	})
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestZeroDirectoryKnowsNoNumber(t *testing.T) {
	t.Parallel()
	var d contacts.Directory
	if d.Len() != 0 {
		t.Errorf("Len() = %d, want 0", d.Len())
	}
	for _, phone := range []string{"79101234567", "", "anonymous"} {
		if c, ok, err := d.Lookup(t.Context(), phone); ok || err != nil || c != (event.Contact{}) {
			t.Errorf("Lookup(%q) = %+v, %v, %v; want unknown", phone, c, ok, err)
		}
	}
}

func TestLookupOfUnknownOrEmptyNumberIsNotFound(t *testing.T) {
	t.Parallel()
	d, err := contacts.Load(strings.NewReader("79101234567,Acme,andy\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, phone := range []string{"79101234568", "", "anonymous", "7910123456"} {
		if _, ok, err := d.Lookup(t.Context(), phone); ok || err != nil {
			t.Errorf("Lookup(%q) = ok %v, err %v; want not found", phone, ok, err)
		}
	}
}

func TestLookupIgnoresCancelledContext(t *testing.T) {
	t.Parallel()
	d, err := contacts.Load(strings.NewReader("79101234567,Acme,andy\n"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	// An in-memory look-up never blocks, so it answers even when the
	// caller's budget is already spent.
	if c, ok, err := d.Lookup(ctx, "79101234567"); !ok || err != nil || c.Name != "Acme" {
		t.Errorf("Lookup = %+v, %v, %v; want Acme", c, ok, err)
	}
}

func TestLookupIsSafeForConcurrentUse(t *testing.T) {
	t.Parallel()
	d, err := contacts.Load(strings.NewReader("79101234567,Acme,andy\n74950000000,Globex,mike\n"))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			phone := []string{"89101234567", "+74950000000"}[i%2]
			for range 100 {
				if _, ok, _ := d.Lookup(context.Background(), phone); !ok {
					t.Errorf("Lookup(%q) not found", phone)
					return
				}
			}
		})
	}
	wg.Wait()
}
