package rm

import (
	"strconv"
	"testing"
	"time"
)

func TestRetiredTableExpires(t *testing.T) {
	tab := newRetiredTable(timer64T1)
	now := time.Unix(1000, 0)
	inv := txKey{branch: "z9hG4bK-a", host: "10.0.0.1", port: 5060, method: "INVITE"}
	bye := txKey{branch: "z9hG4bK-b", host: "10.0.0.1", port: 5060, method: "BYE"}
	tab.put(inv, nil, now)
	tab.put(bye, []byte("SIP/2.0 200 OK\r\n"), now.Add(10*time.Second))

	if last, ok := tab.get(inv); !ok || last != nil {
		t.Fatalf("INVITE: %q %v", last, ok)
	}
	if last, ok := tab.get(bye); !ok || string(last) != "SIP/2.0 200 OK\r\n" {
		t.Fatalf("BYE: %q %v", last, ok)
	}
	// Same branch, other method or sent-by: another transaction.
	for _, k := range []txKey{{branch: inv.branch, host: inv.host, port: inv.port, method: "CANCEL"},
		{branch: inv.branch, host: inv.host, port: 5061, method: "INVITE"},
		{branch: inv.branch, host: "10.0.0.2", port: inv.port, method: "INVITE"}} {
		if _, ok := tab.get(k); ok {
			t.Fatalf("%+v found", k)
		}
	}

	tab.expire(now.Add(timer64T1 - time.Millisecond))
	if tab.len() != 2 {
		t.Fatalf("%d entries before their time, want 2", tab.len())
	}
	tab.expire(now.Add(timer64T1))
	if _, ok := tab.get(inv); ok || tab.len() != 1 {
		t.Fatalf("INVITE kept past 64*T1 (%d entries)", tab.len())
	}
	tab.expire(now.Add(10*time.Second + timer64T1))
	if tab.len() != 0 {
		t.Fatalf("%d entries left", tab.len())
	}
}

// TestRetiredTableReclaimsQueue: the expiry queue does not grow with the number of
// transactions ever retired, only with those remembered.
func TestRetiredTableReclaimsQueue(t *testing.T) {
	tab := newRetiredTable(time.Second)
	now := time.Unix(1000, 0)
	for i := 0; i < 100000; i++ {
		at := now.Add(time.Duration(i) * time.Millisecond)
		tab.put(txKey{branch: "z9hG4bK-" + string(rune('a'+i%26)) + time.Duration(i).String(), method: "BYE"}, nil, at)
		if i%100 == 0 {
			tab.expire(at)
		}
	}
	queued := 0
	for i := range tab.shards {
		queued += len(tab.shards[i].queue) - tab.shards[i].head
		if c := cap(tab.shards[i].queue); c > 8192 {
			t.Fatalf("shard %d queue capacity %d", i, c)
		}
	}
	if n := tab.len(); n != queued || n > 1200 {
		t.Fatalf("%d remembered, %d queued; want about one second's worth (1000)", n, queued)
	}
}

// TestRetiredTableReturnsMemory: after a burst, once its transactions expire, the table gives
// its memory back (a Go map alone would keep the room of its largest size).
func TestRetiredTableReturnsMemory(t *testing.T) {
	tab := newRetiredTable(time.Second)
	now := time.Unix(1000, 0)
	before := heapAlloc()
	for i := 0; i < 300000; i++ {
		tab.put(txKey{branch: "z9hG4bK" + strconv.Itoa(i), method: "INVITE"}, nil, now)
	}
	during := heapAlloc()
	tab.expire(now.Add(time.Second))
	after := heapAlloc()
	t.Logf("heap: %d KiB before, %d KiB with 300,000 retired, %d KiB after they expired",
		before>>10, during>>10, after>>10)
	if during < before+4<<20 {
		t.Fatalf("300,000 entries took only %d KiB: the measurement does not work", (during-before)>>10)
	}
	if after > before+512<<10 {
		t.Fatalf("%d KiB still held after every entry expired", (after-before)>>10)
	}
	// And it keeps working.
	tab.put(txKey{branch: "z9hG4bKx", method: "BYE"}, []byte("x"), now)
	if _, ok := tab.get(txKey{branch: "z9hG4bKx", method: "BYE"}); !ok || tab.len() != 1 {
		t.Fatal("table unusable after shrinking")
	}
}
