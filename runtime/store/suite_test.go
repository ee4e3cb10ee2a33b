package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/lightsout/lightsout/runtime/secrets"
	"github.com/lightsout/lightsout/runtime/store"
	"github.com/lightsout/lightsout/runtime/store/storetest"
	"github.com/lightsout/lightsout/runtime/testenv"
)

// TestSQLiteStore runs the store suite against SQLite.
func TestSQLiteStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		path := filepath.Join(t.TempDir(), "lightsout.db")
		return opener(func(ctx context.Context, c *secrets.Cipher) (store.Store, error) { return store.Open(ctx, path, c) })
	})
}

// TestPostgresStore runs the store suite against PostgreSQL 15 (a
// throw-away server started by testdata/tools/pg.sh, a new database per
// test).
func TestPostgresStore(t *testing.T) {
	testenv.Postgres(t) // skip (or fail under make test) before any subtest
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		url := testenv.Postgres(t)
		return opener(func(ctx context.Context, c *secrets.Cipher) (store.Store, error) { return store.OpenURL(ctx, url, c) })
	})
}

func opener(open func(ctx context.Context, c *secrets.Cipher) (store.Store, error)) storetest.Opener {
	return func(t testing.TB, c *secrets.Cipher) store.Store {
		t.Helper()
		s, err := open(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}
