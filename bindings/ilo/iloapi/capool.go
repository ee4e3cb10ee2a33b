package iloapi

import (
	"crypto/x509"
	"os"
	"sync"
	"time"
)

// maxCAPools bounds the CA files CAPools keeps parsed (a process uses a
// handful: [ilo] ca_file and the nodes' ilo_verify_ca).
const maxCAPools = 64

// CAPools shares the parsed CA bundle of each ilo_verify_ca file between
// transports: without it every run's transport read, decoded and parsed
// the same PEM file and kept its own copy (about 10 KB per node in a fleet
// inspection, held as long as the node's shared Redfish session). A file
// is parsed again when its size or modification time changes; a directory
// is read for every transport (its files may change without its mtime).
// The zero value is ready; it is safe for concurrent use.
type CAPools struct {
	mu sync.Mutex
	m  map[string]caPool
}

type caPool struct {
	size  int64
	mtime time.Time
	pool  *x509.CertPool
}

// Get returns the pool of path's certificates.
func (c *CAPools) Get(path string) (*x509.CertPool, error) {
	if c == nil {
		return loadCAs(path)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return loadCAs(path)
	}
	c.mu.Lock()
	e, ok := c.m[path]
	c.mu.Unlock()
	if ok && e.size == st.Size() && e.mtime.Equal(st.ModTime()) {
		return e.pool, nil
	}
	pool, err := loadCAs(path)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]caPool{}
	}
	if _, ok := c.m[path]; !ok && len(c.m) >= maxCAPools {
		for k := range c.m { // drop any one: they are cheap to parse again
			delete(c.m, k)
			break
		}
	}
	c.m[path] = caPool{size: st.Size(), mtime: st.ModTime(), pool: pool}
	return pool, nil
}

// Len is the number of CA files kept parsed.
func (c *CAPools) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}
