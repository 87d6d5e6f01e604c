package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// DefaultMaxBody is the largest webhook body accepted: real PBX webhooks are
// under 1 KiB; 64 KiB leaves room for unannounced fields (docs/contract.md,
// "PBX → callpop").
const DefaultMaxBody = 64 << 10

// Parser errors. Each maps to one answer in the handler.
var (
	ErrTooLarge = errors.New("webhook: body too large")
	ErrBadBody  = errors.New("webhook: body not parseable")
)

// Form is a webhook's fields, one value per name.
type Form map[string]string

// ParseBody reads a webhook body of the given Content-Type: form-urlencoded
// (what the PBX sends; also assumed when no type is given), JSON (an object of
// scalars) or multipart/form-data. A repeated field, invalid UTF-8 or a body
// over max is an error: a PBX never sends those, and accepting them would make
// the meaning of a request depend on which copy a reader picks.
func ParseBody(contentType string, body io.Reader, max int64) (Form, error) {
	data, err := io.ReadAll(io.LimitReader(body, max+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, ErrTooLarge
		}
		return nil, fmt.Errorf("%w: %w", ErrBadBody, err)
	}
	if int64(len(data)) > max {
		return nil, ErrTooLarge
	}
	mt, params, err := mime.ParseMediaType(contentType)
	if contentType == "" {
		mt, err = "application/x-www-form-urlencoded", nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: content type: %w", ErrBadBody, err)
	}
	var f Form
	switch {
	case mt == "application/x-www-form-urlencoded":
		f, err = parseURLEncoded(data)
	case mt == "application/json" || strings.HasSuffix(mt, "+json"):
		f, err = parseJSON(data)
	case mt == "multipart/form-data":
		f, err = parseMultipart(data, params["boundary"])
	default:
		return nil, fmt.Errorf("%w: content type %q", ErrBadBody, mt)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadBody, err)
	}
	return f, nil
}

func (f Form) set(k, v string) error {
	if !utf8.ValidString(k) || !utf8.ValidString(v) {
		return errors.New("invalid UTF-8")
	}
	if _, dup := f[k]; dup {
		return fmt.Errorf("field %q repeated", k)
	}
	f[k] = v
	return nil
}

// parseURLEncoded reads a form body the way url.ParseQuery does (empty
// pairs skipped, a pair without "=" has an empty value, ";" refused), into
// the Form directly: no map of slices in between, and no copy of a key or
// value that has nothing to unescape.
func parseURLEncoded(data []byte) (Form, error) {
	body := string(data)
	f := make(Form, strings.Count(body, "&")+1)
	for body != "" {
		var pair string
		pair, body, _ = strings.Cut(body, "&")
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			return nil, errors.New("invalid semicolon separator in query")
		}
		k, v, _ := strings.Cut(pair, "=")
		k, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		v, err = url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		if err := f.set(k, v); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// parseJSON reads one object whose values are strings, numbers, booleans or
// null; it walks tokens rather than unmarshalling into a map so a repeated
// key is seen.
func parseJSON(data []byte) (Form, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("invalid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("want a JSON object")
	}
	f := Form{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, _ := kt.(string)
		vt, err := dec.Token()
		if err != nil {
			return nil, err
		}
		var v string
		switch x := vt.(type) {
		case string:
			v = x
		case json.Number:
			v = x.String()
		case bool:
			v = fmt.Sprint(x)
		case nil:
			continue
		default: // nested object or array: not a PBX field
			return nil, fmt.Errorf("field %q is not a scalar", k)
		}
		if err := f.set(k, v); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON object")
	}
	return f, nil
}

func parseMultipart(data []byte, boundary string) (Form, error) {
	if boundary == "" {
		return nil, errors.New("multipart without boundary")
	}
	mr := multipart.NewReader(bytes.NewReader(data), boundary)
	f := Form{}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return f, nil
		}
		if err != nil {
			return nil, err
		}
		name := p.FormName()
		if name == "" {
			return nil, errors.New("multipart part without a name")
		}
		v, err := io.ReadAll(p)
		if err != nil {
			return nil, err
		}
		if err := f.set(name, string(v)); err != nil {
			return nil, err
		}
	}
}
