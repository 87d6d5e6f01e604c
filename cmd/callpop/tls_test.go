package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T) (cert, key string, pool *x509.CertPool) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "callpop test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	parsed, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(parsed)
	return cert, key, pool
}

// TestServeHTTPSDirectly: with --tls-cert and --tls-key a single node serves
// the PBX's webhooks over HTTPS (the PBX API expects HTTPS on both sides).
func TestServeHTTPSDirectly(t *testing.T) {
	t.Parallel()
	cert, key, pool := selfSigned(t)
	n := startNode(t, testConfig(t, "--tls-cert", cert, "--tls-key", key), nil)
	base := strings.Replace(n.base, "http://", "https://", 1)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	resp, err := c.Post(base+"/webhook", "application/x-www-form-urlencoded",
		strings.NewReader("cmd=event&type=INCOMING&user=andy&callid=t1&phone=1&crm_token="+testCRMToken))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.TLS == nil {
		t.Fatalf("HTTPS webhook: %d tls=%v", resp.StatusCode, resp.TLS != nil)
	}
	if resp, err := http.Get(n.base + "/healthz"); err == nil { // plain HTTP to a TLS port gets no answer of ours
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("plain HTTP served on the TLS port")
		}
	}

	// A widget over wss://: TLS sockets are read by a goroutine of their own
	// (the poller cannot see TLS records), so this is that path end to end:
	// hello, a live frame, and the server answering a ping.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(base, "https", "wss", 1)+"/ws?token="+n.token("andy"),
		&websocket.DialOptions{HTTPClient: c})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	frames := make(chan map[string]any, 8)
	go func() {
		defer close(frames)
		for {
			_, data, err := ws.Read(context.Background())
			if err != nil {
				return
			}
			var f map[string]any
			_ = json.Unmarshal(data, &f)
			frames <- f
		}
	}()
	next := func() map[string]any {
		select {
		case f := <-frames:
			return f
		case <-ctx.Done():
			t.Fatal("no frame over wss")
		}
		return nil
	}
	if f := next(); f["type"] != "hello" {
		t.Fatalf("first wss frame %v", f)
	}
	resp, err = c.Post(base+"/webhook", "application/x-www-form-urlencoded",
		strings.NewReader("cmd=event&type=INCOMING&user=andy&callid=t2&phone=2&crm_token="+testCRMToken))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if f := next(); f["callid"] != "t2" {
		t.Fatalf("wss frame %v, want call t2", f)
	}
	if err := ws.Ping(ctx); err != nil {
		t.Fatalf("ping over wss: %v", err)
	}
}
