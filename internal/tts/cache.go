package tts

import (
	"container/list"
	"sync"
)

// audioEntryOverhead is the bytes charged per cached audio on top of its
// samples and key.
const audioEntryOverhead = 128

type audioEntry struct {
	key  promptKey
	a    *Audio
	size int64
}

// audioCache is a byte-bounded LRU of synthesized audio.
type audioCache struct {
	mu       sync.Mutex
	max      int64
	bytes    int64
	ll       list.List
	items    map[promptKey]*list.Element
	onChange func(bytes int64, entries int)
}

func newAudioCache(maxBytes int64, onChange func(int64, int)) *audioCache {
	return &audioCache{max: maxBytes, items: make(map[promptKey]*list.Element), onChange: onChange}
}

func (c *audioCache) get(key promptKey) *Audio {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[key]
	if !ok {
		return nil
	}
	c.ll.MoveToFront(el)
	return el.Value.(*audioEntry).a
}

func (c *audioCache) put(key promptKey, a *Audio) {
	size := int64(2*len(a.Samples)+key.size()) + audioEntryOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
	if size <= c.max {
		c.items[key] = c.ll.PushFront(&audioEntry{key: key, a: a, size: size})
		c.bytes += size
		for c.bytes > c.max {
			c.remove(c.ll.Back())
		}
	}
	if c.onChange != nil {
		c.onChange(c.bytes, len(c.items))
	}
}

func (c *audioCache) remove(el *list.Element) {
	e := c.ll.Remove(el).(*audioEntry)
	delete(c.items, e.key)
	c.bytes -= e.size
}

func (c *audioCache) stats() (int64, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes, len(c.items)
}
