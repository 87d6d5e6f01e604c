package sim

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"net/url"

	"go.uber.org/zap"

	"github.com/callpop/callpop/pbx"
)

// maxRequest caps a request body: 64 KiB, far above any command's fields.
const maxRequest = 64 << 10

// The documented error answers.
var (
	answerInvalidParameters = map[string]string{"error": "Invalid parameters"}
	answerInvalidToken      = map[string]string{"error": "Invalid token"}
)

// ServeHTTP answers one CRM → PBX command. GET (read-only commands) and POST
// are accepted, any other method answers 405. The token is checked first
// (401 {"error":"Invalid token"}), then the command and its fields (400
// {"error":"Invalid parameters"}). Answers are JSON, history's is CSV.
func (p *PBX) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET, POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "Method not allowed"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxRequest)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, answerInvalidParameters)
		return
	}
	f := r.Form
	if subtle.ConstantTimeCompare([]byte(f.Get("token")), []byte(p.cfg.Token)) != 1 {
		writeJSON(w, http.StatusUnauthorized, answerInvalidToken)
		return
	}
	cmd, ok := pbx.CanonicalCommand(f.Get("cmd"))
	if !ok {
		writeJSON(w, http.StatusBadRequest, answerInvalidParameters)
		return
	}
	if r.Method == http.MethodGet && !pbx.IsReadOnly(cmd) {
		w.Header().Set("Allow", "POST")
		writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "Method not allowed"})
		return
	}
	status, answer := p.command(cmd, f)
	p.log.Debug("command", zap.String("cmd", cmd), zap.Int("status", status))
	if status != http.StatusOK {
		writeJSON(w, status, answer)
		return
	}
	if csv, ok := answer.(csvAnswer); ok {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		_ = pbx.WriteHistory(w, csv)
		return
	}
	writeJSON(w, status, answer)
}

// csvAnswer is an answer served as the history CSV.
type csvAnswer []pbx.HistoryRecord

// command runs cmd and returns the status and the answer to encode.
func (p *PBX) command(cmd string, f url.Values) (int, any) {
	switch cmd {
	case pbx.CmdAccounts:
		return p.cmdAccounts()
	case pbx.CmdGroups:
		return p.cmdGroups(f)
	case pbx.CmdMakeCall:
		return p.cmdMakeCall(f)
	case pbx.CmdHistory:
		return p.cmdHistory(f)
	case pbx.CmdSubscribeOnCalls:
		return p.cmdSubscribeOnCalls(f)
	case pbx.CmdSubscriptionStatus:
		return p.cmdSubscriptionStatus(f)
	case pbx.CmdSetDND:
		return p.cmdSetDND(f)
	case pbx.CmdGetDND:
		return p.cmdGetDND(f)
	}
	return http.StatusBadRequest, answerInvalidParameters
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
