package webhook_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/callpop/callpop/broker/memory"
	"github.com/callpop/callpop/event"
	"github.com/callpop/callpop/webhook"
)

// answerCase is one request and the answer it must get.
type answerCase struct {
	name       string
	req        request
	wantStatus int
	wantBody   string // "" = any JSON object
}

// form is a form-urlencoded request of f.
func form(f fields) request { return request{contentType: formType, body: f.form()} }

// rawForm is a form-urlencoded request of a body written by hand.
func rawForm(body string) request { return request{contentType: formType, body: body} }

func jsonReq(f fields) request {
	return request{contentType: "application/json", body: f.json()}
}

func multipartReq(f fields) request {
	body, ct := f.multipart()
	return request{contentType: ct, body: body}
}

func withHeader(rq request, kv ...string) request {
	rq.header = map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		rq.header[kv[i]] = kv[i+1]
	}
	return rq
}

func wantOK(name string, rq request) answerCase {
	return answerCase{name: name, req: rq, wantStatus: http.StatusOK}
}

func wantInvalid(name string, rq request) answerCase {
	return answerCase{name: name, req: rq, wantStatus: http.StatusBadRequest, wantBody: invalidParams}
}

func wantUnauthorized(name string, rq request) answerCase {
	return answerCase{name: name, req: rq, wantStatus: http.StatusUnauthorized, wantBody: invalidToken}
}

func runAnswerCases(t *testing.T, cases []answerCase) {
	t.Helper()
	srv, _ := newTestServer(t)
	seen := map[string]bool{}
	for _, tc := range cases {
		if seen[tc.name] {
			t.Fatalf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			checkAnswer(t, do(t, srv, tc.req), tc.wantStatus, tc.wantBody)
		})
	}
}

func TestRequiredFieldMissingIsInvalid(t *testing.T) {
	t.Parallel()
	var cases []answerCase
	for _, c := range []struct {
		cmd      string
		base     fields
		required []string
	}{
		{"Event", eventFields("req-event"), []string{"type", "phone", "user", "callid"}},
		{"Contact", contactFields("req-contact"), []string{"phone", "callid"}},
		{"History", historyFields("req-history"), []string{"type", "phone", "start", "duration", "callid", "status"}},
	} {
		cases = append(cases, wantOK(c.cmd+"/CompleteFormIsAccepted", form(c.base)))
		for _, k := range c.required {
			cases = append(cases,
				wantInvalid(c.cmd+"/Missing_"+k+"_IsInvalid", form(c.base.without(k))),
				wantInvalid(c.cmd+"/Empty_"+k+"_IsInvalid", form(c.base.with(k, ""))),
				wantInvalid(c.cmd+"/Blank_"+k+"_IsInvalid", form(c.base.with(k, "  \t "))),
				wantInvalid(c.cmd+"/JSONMissing_"+k+"_IsInvalid", jsonReq(c.base.without(k))),
			)
		}
	}
	runAnswerCases(t, cases)
}

func TestEnums(t *testing.T) {
	t.Parallel()
	ev, hi := eventFields("enum-event"), historyFields("enum-history")
	cases := []answerCase{
		wantInvalid("Event/UnknownTypeIsInvalid", form(ev.with("type", "RINGING"))),
		wantInvalid("Event/HistoryDirectionAsTypeIsInvalid", form(ev.with("type", "in"))),
		wantInvalid("Event/TypeWithSuffixIsInvalid", form(ev.with("type", "INCOMING2"))),
		wantInvalid("Event/UnknownDirectionIsInvalid", form(ev.with("direction", "sideways"))),
		wantInvalid("Event/SpelledOutDirectionIsInvalid", form(ev.with("direction", "incoming"))),
		wantInvalid("History/UnknownTypeIsInvalid", form(hi.with("type", "both"))),
		wantInvalid("History/EventTypeAsTypeIsInvalid", form(hi.with("type", "INCOMING"))),
		wantInvalid("History/UnknownStatusIsInvalid", form(hi.with("status", "Answered"))),
		wantInvalid("History/StatusWithSpaceInsideIsInvalid", form(hi.with("status", "Not Available"))),

		wantOK("Event/LowerCaseTypeIsAccepted", form(ev.with("type", "incoming"))),
		wantOK("Event/MixedCaseTypeIsAccepted", form(ev.with("type", "Completed"))),
		wantOK("Event/UpperCaseDirectionIsAccepted", form(ev.with("direction", "IN"))),
		wantOK("Event/MixedCaseDirectionIsAccepted", form(ev.with("direction", "Out"))),
		wantOK("Event/SpacesAroundTypeAreTrimmed", form(ev.with("type", " INCOMING "))),
		wantOK("History/UpperCaseTypeIsAccepted", form(hi.with("type", "IN"))),
		wantOK("History/CapitalisedMissedIsAccepted", form(hi.with("status", "Missed"))),
		wantOK("History/LowerCaseMissedIsAccepted", form(hi.with("status", "missed"))),
		wantOK("History/UpperCaseStatusIsAccepted", form(hi.with("status", "NOTAVAILABLE"))),
		wantOK("Cmd/UpperCaseCmdIsAccepted", form(ev.with("cmd", "EVENT"))),
		wantOK("Cmd/CapitalisedCmdIsAccepted", form(hi.with("cmd", "History"))),
	}
	for _, typ := range []string{"INCOMING", "ACCEPTED", "COMPLETED", "CANCELLED", "OUTGOING", "TRANSFERRED"} {
		cases = append(cases, wantOK("Event/Type_"+typ+"_IsAccepted", form(ev.with("type", typ, "callid", "enum-"+typ))))
	}
	for _, st := range []string{"Success", "Missed", "Cancel", "Busy", "NotAvailable", "NotAllowed", "NotFound"} {
		cases = append(cases, wantOK("History/Status_"+st+"_IsAccepted", form(hi.with("status", st, "callid", "enum-"+st))))
	}
	runAnswerCases(t, cases)
}

func TestToken(t *testing.T) {
	t.Parallel()
	ev := eventFields("token-event")
	noToken := ev.without("crm_token")
	big := ev.with("pad", strings.Repeat("a", webhook.DefaultMaxBody+1))
	runAnswerCases(t, []answerCase{
		wantOK("RightBodyTokenIsAccepted", form(ev)),
		wantUnauthorized("WrongBodyTokenIsRefused", form(ev.with("crm_token", "wrong"))),
		wantUnauthorized("MissingBodyTokenIsRefused", form(noToken)),
		wantUnauthorized("EmptyBodyTokenIsRefused", form(ev.with("crm_token", ""))),
		wantUnauthorized("BodyTokenOtherCaseIsRefused", form(ev.with("crm_token", strings.ToUpper(testToken)))),
		wantUnauthorized("BodyTokenPrefixIsRefused", form(ev.with("crm_token", testToken[:5]))),
		wantUnauthorized("BodyTokenWithSuffixIsRefused", form(ev.with("crm_token", testToken+"x"))),
		wantUnauthorized("WrongJSONTokenIsRefused", jsonReq(ev.with("crm_token", "wrong"))),
		wantUnauthorized("WrongMultipartTokenIsRefused", multipartReq(ev.with("crm_token", "wrong"))),

		wantOK("RightXCRMTokenHeaderIsAccepted", withHeader(form(noToken), "X-CRM-Token", testToken)),
		wantOK("RightBearerHeaderIsAccepted", withHeader(form(noToken), "Authorization", "Bearer "+testToken)),
		wantOK("LowerCaseBearerIsAccepted", withHeader(form(noToken), "Authorization", "bearer "+testToken)),
		wantOK("RightHeaderTokenWinsOverWrongBodyToken",
			withHeader(form(ev.with("crm_token", "wrong")), "X-CRM-Token", testToken)),
		wantUnauthorized("WrongXCRMTokenHeaderIsRefused", withHeader(form(noToken), "X-CRM-Token", "wrong")),
		wantUnauthorized("WrongBearerHeaderIsRefused", withHeader(form(noToken), "Authorization", "Bearer wrong")),
		wantUnauthorized("WrongXCRMTokenWithRightBodyTokenIsRefused", withHeader(form(ev), "X-CRM-Token", "wrong")),
		wantUnauthorized("WrongBearerWithRightBodyTokenIsRefused", withHeader(form(ev), "Authorization", "Bearer wrong")),
		wantUnauthorized("WrongXCRMTokenWithRightBearerIsRefused",
			withHeader(form(noToken), "X-CRM-Token", "wrong", "Authorization", "Bearer "+testToken)),
		wantUnauthorized("BasicAuthorizationIsNotAToken", withHeader(form(noToken), "Authorization", "Basic "+testToken)),

		// The token is checked before any field.
		wantUnauthorized("WrongTokenWithMissingFieldsIsRefused", rawForm("cmd=event&crm_token=wrong")),
		wantUnauthorized("NoTokenWithMissingFieldsIsRefused", rawForm("cmd=event")),
		wantUnauthorized("NoTokenWithEmptyBodyIsRefused", rawForm("")),
		wantUnauthorized("WrongTokenWithBadEnumIsRefused", form(ev.with("crm_token", "wrong", "type", "RINGING"))),
		wantUnauthorized("WrongTokenWithUnknownCmdIsRefused", form(ev.with("crm_token", "wrong", "cmd", "call"))),
		wantUnauthorized("WrongTokenOnRatingIsRefused", rawForm("cmd=rating&crm_token=wrong")),
		wantUnauthorized("WrongTokenOnWebhookIsRefused", rawForm("cmd=webhook&type=sipregs_error&crm_token=wrong")),
		// A header token is checked before the body is even read.
		wantUnauthorized("WrongHeaderTokenWithOversizedBodyIsRefused",
			withHeader(form(big), "X-CRM-Token", "wrong")),
		wantUnauthorized("WrongHeaderTokenWithUnparseableBodyIsRefused",
			withHeader(request{contentType: "text/plain", body: "hello"}, "X-CRM-Token", "wrong")),
		wantInvalid("RightHeaderTokenWithMissingFieldsIsInvalid",
			withHeader(rawForm("cmd=event"), "X-CRM-Token", testToken)),
		wantInvalid("RightHeaderTokenWithEmptyBodyIsInvalid", withHeader(rawForm(""), "X-CRM-Token", testToken)),
	})
}

func TestHistoryStartAndDuration(t *testing.T) {
	t.Parallel()
	hi := historyFields("start-duration")
	var cases []answerCase
	for name, start := range map[string]string{
		"ISO8601WithDashes":  "2017-07-03T12:11:10Z",
		"NoZone":             "20170703T121110",
		"NumericOffset":      "20170703T121110+0300",
		"NumericOffsetAndZ":  "20170703T121110+0000Z",
		"SpaceForT":          "20170703 121110Z",
		"UnixSeconds":        "1499083870",
		"NoSeconds":          "20170703T1211Z",
		"MonthOutOfRange":    "20171303T121110Z",
		"DayOutOfRange":      "20170732T121110Z",
		"HourOutOfRange":     "20170703T251110Z",
		"RFC3339WithOffset":  "2017-07-03T15:11:10+03:00",
		"RFC1123":            "Mon, 03 Jul 2017 12:11:10 GMT",
		"TrailingGarbage":    "20170703T121110Zabc",
		"DateOnly":           "20170703",
		"TwoDigitYear":       "170703T121110Z",
		"ZoneNameInsteadOfZ": "20170703T121110UTC",
	} {
		cases = append(cases, wantInvalid("Start_"+name+"_IsInvalid", form(hi.with("start", start))))
	}
	for name, d := range map[string]string{
		"Negative":     "-1",
		"Fractional":   "1.5",
		"NonNumeric":   "abc",
		"Exponent":     "1e3",
		"PlusSign":     "+5",
		"Hex":          "0x10",
		"InnerSpace":   "1 000",
		"ArabicDigits": "١٢",
		"Huge":         "99999999999999999999999",
		"WithUnit":     "124s",
		"GoDuration":   "2m4s",
	} {
		cases = append(cases, wantInvalid("Duration_"+name+"_IsInvalid", form(hi.with("duration", d))))
	}
	cases = append(cases,
		wantOK("StartOfExampleIsAccepted", form(hi.with("start", "20170703T121110Z"))),
		wantOK("LeapDayIsAccepted", form(hi.with("start", "20240229T235959Z"))),
		wantOK("DurationZeroIsAccepted", form(hi.with("duration", "0"))),
		wantOK("DurationWithLeadingZeroIsAccepted", form(hi.with("duration", "007"))),
		wantOK("DurationWithSurroundingSpacesIsAccepted", form(hi.with("duration", " 124 "))),
		wantOK("JSONNumberDurationIsAccepted", request{contentType: "application/json",
			body: `{"cmd":"history","type":"out","status":"Success","phone":"79101234567","user":"andy",` +
				`"start":"20170703T121110Z","duration":124,"callid":"json-number","crm_token":"` + testToken + `"}`}),
		wantOK("JSONZeroDurationIsAccepted", request{contentType: "application/json",
			body: `{"cmd":"history","type":"out","status":"Busy","phone":"79101234567","user":"andy",` +
				`"start":"20170703T121110Z","duration":0,"callid":"json-zero","crm_token":"` + testToken + `"}`}),
		wantInvalid("JSONNegativeDurationIsInvalid", request{contentType: "application/json",
			body: `{"cmd":"history","type":"out","status":"Success","phone":"79101234567","user":"andy",` +
				`"start":"20170703T121110Z","duration":-1,"callid":"json-neg","crm_token":"` + testToken + `"}`}),
		wantInvalid("JSONFractionalDurationIsInvalid", request{contentType: "application/json",
			body: `{"cmd":"history","type":"out","status":"Success","phone":"79101234567","user":"andy",` +
				`"start":"20170703T121110Z","duration":1.5,"callid":"json-frac","crm_token":"` + testToken + `"}`}),
	)
	runAnswerCases(t, cases)
}

func TestBodyLimitsAndTypes(t *testing.T) {
	t.Parallel()
	ev := eventFields("body-event")
	hi := historyFields("body-history")
	// atLimit pads ev to exactly n bytes of form body.
	atLimit := func(n int) request {
		body := ev.form() + "&pad="
		return rawForm(body + strings.Repeat("a", n-len(body)))
	}
	runAnswerCases(t, []answerCase{
		wantOK("BodyAtLimitIsAccepted", atLimit(webhook.DefaultMaxBody)),
		{name: "BodyOneByteOverLimitIsTooLarge", req: atLimit(webhook.DefaultMaxBody + 1),
			wantStatus: http.StatusRequestEntityTooLarge},
		{name: "MegabyteBodyIsTooLarge", req: form(ev.with("pad", strings.Repeat("a", 1<<20))),
			wantStatus: http.StatusRequestEntityTooLarge},
		{name: "OversizedJSONIsTooLarge", req: jsonReq(ev.with("pad", strings.Repeat("a", 70<<10))),
			wantStatus: http.StatusRequestEntityTooLarge},
		{name: "OversizedBodyWithoutTokenIsTooLarge",
			req:        form(ev.without("crm_token").with("pad", strings.Repeat("a", 70<<10))),
			wantStatus: http.StatusRequestEntityTooLarge},

		wantOK("FormWithoutContentTypeIsAccepted", request{body: ev.form()}),
		wantOK("FormWithCharsetIsAccepted", request{contentType: formType + "; charset=UTF-8", body: ev.form()}),
		wantOK("JSONEventIsAccepted", jsonReq(ev)),
		wantOK("JSONHistoryIsAccepted", jsonReq(hi)),
		wantOK("JSONWithCharsetIsAccepted", request{contentType: "application/json; charset=utf-8", body: ev.json()}),
		wantOK("JSONSuffixTypeIsAccepted", request{contentType: "application/vnd.pbx+json", body: ev.json()}),
		wantOK("JSONWithNullOptionalFieldIsAccepted", request{contentType: "application/json",
			body: strings.TrimSuffix(ev.without("diversion").json(), "}") + `,"diversion":null}`}),
		wantOK("JSONWithBooleanExtraIsAccepted", request{contentType: "application/json",
			body: strings.TrimSuffix(ev.json(), "}") + `,"z-flag":true,"wait":12}`}),
		wantOK("MultipartEventIsAccepted", multipartReq(ev)),
		wantOK("MultipartHistoryIsAccepted", multipartReq(hi)),

		wantInvalid("TextPlainIsInvalid", request{contentType: "text/plain", body: ev.form()}),
		wantInvalid("XMLIsInvalid", request{contentType: "application/xml", body: "<event/>"}),
		wantInvalid("MalformedContentTypeIsInvalid", request{contentType: "application/", body: ev.form()}),
		wantInvalid("MultipartWithoutBoundaryIsInvalid", request{contentType: "multipart/form-data", body: ev.form()}),
		// Without its boundary a multipart body reads as no fields at all.
		wantInvalid("MultipartWithWrongBoundaryIsInvalid", withHeader(request{
			contentType: "multipart/form-data; boundary=nope", body: multipartReq(ev).body}, "X-CRM-Token", testToken)),
		wantInvalid("JSONArrayIsInvalid", request{contentType: "application/json", body: `[` + ev.json() + `]`}),
		wantInvalid("JSONNestedObjectIsInvalid", request{contentType: "application/json",
			body: strings.TrimSuffix(ev.json(), "}") + `,"extra":{"a":1}}`}),
		wantInvalid("JSONNestedArrayIsInvalid", request{contentType: "application/json",
			body: strings.TrimSuffix(ev.json(), "}") + `,"extra":[1]}`}),
		wantInvalid("JSONTrailingDataIsInvalid", request{contentType: "application/json", body: ev.json() + `{}`}),
		wantInvalid("TruncatedJSONIsInvalid", request{contentType: "application/json", body: ev.json()[:20]}),
		wantInvalid("JSONStringIsInvalid", request{contentType: "application/json", body: `"cmd=event"`}),
		wantInvalid("FormWithSemicolonsIsInvalid", rawForm(strings.ReplaceAll(ev.form(), "&", ";"))),
		wantInvalid("FormWithBadEscapeIsInvalid", rawForm(ev.form()+"&x=%zz")),
	})
}

func TestDuplicatedKeyIsInvalid(t *testing.T) {
	t.Parallel()
	ev := eventFields("dup-event")
	mp := multipartReq(ev)
	// A second "cmd" part, spliced in before the closing boundary.
	i := strings.LastIndex(mp.body, "\r\n--")
	boundary := mp.body[:strings.Index(mp.body, "\r\n")]
	mp.body = mp.body[:i] + "\r\n" + boundary + "\r\nContent-Disposition: form-data; name=\"cmd\"\r\n\r\nevent" + mp.body[i:]
	runAnswerCases(t, []answerCase{
		wantInvalid("RepeatedUnknownFormFieldIsInvalid", rawForm(ev.form()+"&a=1&a=2")),
		wantInvalid("RepeatedEqualFormFieldIsInvalid", rawForm(ev.form()+"&a=1&a=1")),
		wantInvalid("RepeatedCmdIsInvalid", rawForm(ev.form()+"&cmd=event")),
		wantInvalid("RepeatedTokenIsInvalid", rawForm(ev.form()+"&crm_token="+testToken)),
		wantInvalid("RepeatedPhoneIsInvalid", rawForm(ev.form()+"&phone=79990000000")),
		wantInvalid("RepeatedJSONKeyIsInvalid", request{contentType: "application/json",
			body: `{"cmd":"event","cmd":"event","type":"INCOMING","phone":"79101234567","user":"andy",` +
				`"callid":"dup-json","crm_token":"` + testToken + `"}`}),
		wantInvalid("RepeatedJSONKeyWithOtherValueIsInvalid", request{contentType: "application/json",
			body: strings.TrimSuffix(ev.json(), "}") + `,"phone":"79990000000"}`}),
		wantInvalid("RepeatedMultipartPartIsInvalid", mp),
		wantOK("SameNameInOtherCaseIsNotARepeat", rawForm(ev.form()+"&PHONE=79990000000")),
	})
}

func TestEncodingAndControlCharacters(t *testing.T) {
	t.Parallel()
	ev := eventFields("enc-event")
	hi := historyFields("enc-history")
	runAnswerCases(t, []answerCase{
		wantInvalid("EscapedInvalidUTF8InPhoneIsInvalid", rawForm(ev.without("phone").form()+"&phone=7910%FF")),
		wantInvalid("RawInvalidUTF8InUserIsInvalid", rawForm(ev.without("user").form()+"&user=and\xffy")),
		wantInvalid("InvalidUTF8InUnknownFieldIsInvalid", rawForm(ev.form()+"&telnum_name=%C3%28")),
		wantInvalid("InvalidUTF8InKeyIsInvalid", rawForm(ev.form()+"&%FF=1")),
		wantInvalid("TruncatedUTF8IsInvalid", rawForm(ev.without("groupRealName").form()+"&groupRealName=%D0")),
		wantInvalid("InvalidUTF8InJSONIsInvalid", request{contentType: "application/json",
			body: strings.TrimSuffix(ev.json(), "}") + ",\"wait\":\"\xff\"}"}),
		wantInvalid("InvalidUTF8InMultipartIsInvalid", multipartReq(ev.with("user", "and\xffy"))),

		wantInvalid("NULInPhoneIsInvalid", form(ev.with("phone", "7910\x00123"))),
		wantInvalid("ControlInUserIsInvalid", form(ev.with("user", "an\x01dy"))),
		wantInvalid("NewlineInsideCallIDIsInvalid", form(ev.with("callid", "abc\ndef"))),
		wantInvalid("TabInsideUserIsInvalid", form(ev.with("user", "an\tdy"))),
		wantInvalid("EscapeInGroupNameIsInvalid", form(ev.with("groupRealName", "Sales\x1b[31m"))),
		wantInvalid("DELInDiversionIsInvalid", form(ev.with("diversion", "7495\x7f"))),
		wantInvalid("C1ControlInTelnumIsInvalid", form(ev.with("telnum", "74\u008595"))),
		wantInvalid("ControlInContactPhoneIsInvalid", form(contactFields("enc-contact").with("phone", "7910\x00"))),
		wantInvalid("ControlInHistoryLinkIsInvalid", form(hi.with("link", "https://link/\x00file.mp3"))),
		wantInvalid("ControlInHistoryStatusIsInvalid", form(hi.with("status", "Miss\x00ed"))),
		wantInvalid("ControlInJSONEscapeIsInvalid", request{contentType: "application/json",
			body: strings.TrimSuffix(ev.without("user").json(), "}") + `,"user":"an\u0000dy"}`}),
		wantOK("TrailingNewlineIsTrimmed", form(ev.with("user", "andy\r\n"))),
		wantOK("CyrillicGroupNameIsAccepted", form(ev.with("groupRealName", "Отдел продаж"))),
		wantOK("ControlInUnknownFieldIsIgnored", form(ev.with("telnum_name", "x\x00y"))),
	})
}

func TestCommands(t *testing.T) {
	t.Parallel()
	ev := eventFields("cmd-event")
	hi := historyFields("cmd-history")
	extras := []string{
		"second_callid", "B10D0EB124F4E64AF4EA-1512", "telnum_name", "Main line", "group", "sales",
		"wait", "12", "missedStatus", "NoAnswer", "rating", "5", "z-flag", "1",
	}
	runAnswerCases(t, []answerCase{
		wantInvalid("UnknownCmdIsInvalid", form(ev.with("cmd", "call"))),
		wantInvalid("CRMToPBXCmdIsInvalid", form(ev.with("cmd", "makeCall"))),
		wantInvalid("MissingCmdIsInvalid", form(ev.without("cmd"))),
		wantInvalid("EmptyCmdIsInvalid", form(ev.with("cmd", ""))),
		wantInvalid("TokenOnlyIsInvalid", rawForm("crm_token="+testToken)),

		wantOK("RatingWithAllFieldsIsAcknowledged", rawForm("cmd=rating&callid=cmd-rating&rating=5&phone=79101234567&user=andy&crm_token="+testToken)),
		wantOK("RatingWithMissingFieldsIsAcknowledged", rawForm("cmd=rating&crm_token="+testToken)),
		wantOK("RatingWithControlCharactersIsAcknowledged", rawForm("cmd=rating&callid=a%00b&rating=5&crm_token="+testToken)),
		wantOK("RatingInOtherCaseIsAcknowledged", rawForm("cmd=Rating&crm_token="+testToken)),
		wantOK("WebhookSIPAlertIsAcknowledged", rawForm("cmd=webhook&type=sipregs_error&user=andy&crm_token="+testToken)),
		wantOK("WebhookWithoutFieldsIsAcknowledged", rawForm("cmd=webhook&crm_token="+testToken)),
		wantOK("WebhookAsJSONIsAcknowledged", jsonReq(fields{"cmd": "webhook", "type": "sipregs_error", "crm_token": testToken})),

		wantOK("EventWithExtraFieldsIsAccepted", form(ev.with(extras...))),
		wantOK("HistoryWithExtraFieldsIsAccepted", form(hi.with(extras...))),
		{name: "ContactWithExtraFieldsIsAnswered", req: form(contactFields("cmd-contact").with(append(extras, "diversion", "74950000001")...)),
			wantStatus: http.StatusOK, wantBody: knownAnswer},
		wantOK("EventWithoutDirectionIsAccepted", form(ev.without("direction"))),
		wantOK("OutgoingWithoutDirectionIsAccepted", form(ev.without("direction").with("type", "OUTGOING", "callid", "cmd-out"))),
		wantOK("EventWithOnlyRequiredFieldsIsAccepted", rawForm("cmd=event&type=INCOMING&phone=79101234567&user=andy&callid=cmd-min&crm_token="+testToken)),
		wantOK("EventForGroupLoginIsAccepted", form(ev.with("user", "g_5f1c@acme"))),
		wantInvalid("EventForDomainOnlyUserIsInvalid", form(ev.with("user", "@acme"))),
		wantOK("HistoryWithoutUserIsAccepted", form(hi.without("user"))),
		wantOK("HistoryForPBXIsAccepted", form(hi.with("user", "pbx"))),
		wantOK("HistoryWithoutLinkIsAccepted", form(hi.without("link"))),
		wantOK("HistoryWithHTTPLinkIsAccepted", form(hi.with("link", "http://link/file.mp3"))),
		wantInvalid("HistoryWithJavaScriptLinkIsInvalid", form(hi.with("link", "javascript:alert(1)"))),
		wantInvalid("HistoryWithFTPLinkIsInvalid", form(hi.with("link", "ftp://link/file.mp3"))),
		wantOK("SpacesAroundFieldsAreTrimmed", form(ev.with("phone", "  79101234567 ", "user", " andy "))),
		wantOK("PhoneAtLengthLimitIsAccepted", form(ev.with("phone", strings.Repeat("7", 64)))),
		wantInvalid("PhoneOverLengthLimitIsInvalid", form(ev.with("phone", strings.Repeat("7", 65)))),
		wantInvalid("CallIDOverLengthLimitIsInvalid", form(ev.with("callid", strings.Repeat("c", 257)))),
		wantInvalid("LinkOverLengthLimitIsInvalid", form(hi.with("link", "https://link/"+strings.Repeat("a", 2048)))),
	})
}

func TestMethodOtherThanPOSTIsNotAllowed(t *testing.T) {
	t.Parallel()
	srv, _ := newTestServer(t)
	for _, m := range []string{http.MethodGet, http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions} {
		t.Run(m, func(t *testing.T) {
			t.Parallel()
			r := do(t, srv, request{method: m, contentType: formType, body: eventFields("method").form()})
			checkAnswer(t, r, http.StatusMethodNotAllowed, "")
			if got := r.header.Get("Allow"); got != http.MethodPost {
				t.Errorf("Allow %q, want POST", got)
			}
		})
	}
}

func TestContactAnswer(t *testing.T) {
	t.Parallel()
	c := contactFields("contact")
	runAnswerCases(t, []answerCase{
		{name: "InternationalFormIsKnown", req: form(c.with("phone", "79101234567")), wantStatus: 200, wantBody: knownAnswer},
		{name: "TrunkPrefixFormIsKnown", req: form(c.with("phone", "89101234567")), wantStatus: 200, wantBody: knownAnswer},
		{name: "PlusFormIsKnown", req: form(c.with("phone", "+79101234567")), wantStatus: 200, wantBody: knownAnswer},
		{name: "JSONContactIsKnown", req: jsonReq(c.with("phone", "+79101234567")), wantStatus: 200, wantBody: knownAnswer},
		{name: "OtherKnownNumber", req: form(c.with("phone", "74950000000")), wantStatus: 200,
			wantBody: `{"contact_name":"Globex","responsible":"mike"}`},
		{name: "UnknownNumberIsEmptyObject", req: form(c.with("phone", "79990000000")), wantStatus: 200, wantBody: `{}`},
		{name: "InternalNumberIsEmptyObject", req: form(c.with("phone", "101")), wantStatus: 200, wantBody: `{}`},
		{name: "AnonymousIsEmptyObject", req: form(c.with("phone", "anonymous")), wantStatus: 200, wantBody: `{}`},
	})
}

func TestContactWithoutDirectoryIsEmptyObject(t *testing.T) {
	t.Parallel()
	srv := serve(t, webhook.Config{}, memory.New(memory.Config{}), nil)
	checkAnswer(t, post(t, srv, contactFields("nodir")), http.StatusOK, `{}`)
	checkAnswer(t, post(t, srv, eventFields("nodir")), http.StatusOK, "")
}

func TestContactWithFailingDirectoryIsEmptyObject(t *testing.T) {
	t.Parallel()
	b := memory.New(memory.Config{})
	srv := serve(t, webhook.Config{}, b, failingDirectory{})
	checkAnswer(t, post(t, srv, contactFields("faildir")), http.StatusOK, `{}`)
	checkAnswer(t, post(t, srv, eventFields("faildir")), http.StatusOK, "")
	snap, err := b.Snapshot(t.Context(), "andy", event.ID{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Active) != 1 || snap.Active[0].Contact != nil {
		t.Errorf("active %+v, want one call without a contact", snap.Active)
	}
}

func TestContactOverBudgetIsEmptyObject(t *testing.T) {
	t.Parallel()
	const budget = 50 * time.Millisecond
	dir := newBlockingDirectory()
	b := memory.New(memory.Config{})
	srv := serve(t, webhook.Config{ContactBudget: budget}, b, dir)

	start := time.Now()
	checkAnswer(t, post(t, srv, contactFields("slow")), http.StatusOK, `{}`)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("contact answered after %v with a %v budget", d, budget)
	}

	// The popup does not wait for the directory either: it opens without
	// the contact.
	start = time.Now()
	checkAnswer(t, post(t, srv, eventFields("slow")), http.StatusOK, "")
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("event answered after %v with a %v budget", d, budget)
	}
	snap, err := b.Snapshot(t.Context(), "andy", event.ID{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Active) != 1 || snap.Active[0].Contact != nil {
		t.Errorf("active %+v, want one call without a contact", snap.Active)
	}

	// Both look-ups reached the directory, each with a deadline. The
	// answers do not wait for the look-up goroutines, so wait for them here.
	for i := range 2 {
		select {
		case hasDeadline := <-dir.started:
			if !hasDeadline {
				t.Errorf("look-up %d: context without a deadline", i+1)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("look-up %d never reached the directory", i+1)
		}
	}
}

func TestNewRequiresCRMToken(t *testing.T) {
	t.Parallel()
	h, err := webhook.New(webhook.Config{}, memory.New(memory.Config{}), nil, zaptest.NewLogger(t), nil)
	if err == nil {
		t.Errorf("New without CRMToken = %v, want an error", h)
	}
}
