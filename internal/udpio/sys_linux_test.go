package udpio

import "testing"

// On Linux both kinds of socket take the raw path (the net package is only the fallback).
func TestRawPathInUse(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"udp4", "127.0.0.1:0"}, {"udp6", "[::1]:0"}, {"udp", "[::]:0"}} {
		u := listen(t, tc.network, tc.addr)
		if u.sys.fd < 0 {
			t.Errorf("%s %s: raw sendto not in use", tc.network, tc.addr)
		}
		if r := u.NewReader(make([]byte, 64)); r.sys.rc == nil {
			t.Errorf("%s %s: raw recvfrom not in use", tc.network, tc.addr)
		}
	}
}
